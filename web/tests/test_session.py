"""The browser's session cookie (web.session): encrypted and authenticated, so a tampered or
foreign cookie is an empty session; each session carries its CSRF token and flashes."""

from __future__ import annotations

import time

from web.session import Session, SessionCodec

TOKENS = {
    "access_token": "acc-1",
    "refresh_token": "ref-1",
    "expires_in": 900,
    "user": {"id": "u1", "role": "owner"},
}


def signed_in_session() -> Session:
    session = Session()
    session.sign_in(TOKENS)
    session.set_me(
        {
            "user": {"id": "u1", "role": "owner", "phone": "13800000001"},
            "organization": {
                "id": "o1",
                "name": "广西示范制造有限公司",
                "capabilities": ["enterprise", "provider"],
            },
        }
    )
    return session


def test_round_trip_keeps_the_tokens_the_user_and_the_csrf_token() -> None:
    codec = SessionCodec("a secret", max_age=3600)
    session = signed_in_session()
    session.flash("登录成功")
    cookie = codec.dumps(session)
    assert "acc-1" not in cookie and "ref-1" not in cookie  # unreadable without the secret
    back = codec.loads(cookie)
    assert back.signed_in and back.access_token == "acc-1" and back.refresh_token == "ref-1"
    assert back.access_expires_at > time.time() + 800
    assert back.csrf == session.csrf and not back.modified
    assert back.role == "owner" and not back.is_staff
    assert back.capable("provider") and not back.capable("staff")
    assert back.organization == {
        "id": "o1",
        "name": "广西示范制造有限公司",
        "capabilities": ["enterprise", "provider"],
    }
    assert back.take_flashes() == [("success", "登录成功")] and back.modified
    assert back.take_flashes() == []


def test_a_tampered_cookie_is_an_empty_session() -> None:
    codec = SessionCodec("a secret", max_age=3600)
    cookie = codec.dumps(signed_in_session())
    flipped = cookie[:20] + ("A" if cookie[20] != "A" else "B") + cookie[21:]
    for bad in (flipped, cookie[:-4], "not-a-cookie", "", None):
        session = codec.loads(bad)
        assert not session.signed_in and session.access_token is None and session.user == {}
        assert session.modified  # a new session: a new CSRF token to write back


def test_another_secret_cannot_read_the_cookie() -> None:
    cookie = SessionCodec("a secret", max_age=3600).dumps(signed_in_session())
    assert not SessionCodec("another secret", max_age=3600).loads(cookie).signed_in


def test_an_expired_cookie_is_an_empty_session() -> None:
    codec = SessionCodec("a secret", max_age=1)
    cookie = codec.dumps(signed_in_session())
    time.sleep(2.1)
    assert not codec.loads(cookie).signed_in


def test_csrf_token_checks() -> None:
    session = Session()
    token = session.csrf
    assert len(token) >= 24
    assert session.csrf_ok(token)
    assert not session.csrf_ok(None) and not session.csrf_ok("") and not session.csrf_ok(token + "x")
    assert not session.csrf_ok(Session().csrf)  # another session's token


def test_sign_out_forgets_the_user_and_changes_the_csrf_token() -> None:
    session = signed_in_session()
    before = session.csrf
    session.sign_out()
    assert not session.signed_in and session.user == {} and session.organization is None
    assert session.csrf != before and session.modified


def test_staff_roles() -> None:
    for role, staff in (
        ("reviewer", True),
        ("finance", True),
        ("administrator", True),
        ("owner", False),
        ("agent", False),
    ):
        session = Session()
        session.set_me({"user": {"role": role}, "organization": None})
        assert session.is_staff is staff

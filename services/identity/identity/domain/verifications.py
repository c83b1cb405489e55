"""Rules of identity verification (人脸认证): pure functions, no I/O."""

from __future__ import annotations

from datetime import datetime

from common.crypto import blind_index
from common.rules import Refusal

# --- identity verification (人脸认证) -------------------------------------------------------------


def check_object(purpose: str, object_id: str | None) -> None:
    """A contract's signature is verified for one contract; a seal for none: a
    ``validation_error`` of ``object_id``."""
    if purpose == "sign_contract" and not object_id:
        raise Refusal("validation_error", detail="签署合同的人脸认证须指明合同编号", field="object_id")
    if purpose == "seal" and object_id:
        raise Refusal("validation_error", detail="制作签章的人脸认证无需指定认证对象", field="object_id")


def verification_token_life(
    *, state: str, decided_at: datetime | None, now: datetime, ttl_seconds: int
) -> int | None:
    """Seconds a passed check's token may still live (its TTL runs from the moment it passed);
    ``None`` when there is no token to give (pending, failed); 0 when it has expired."""
    if state != "passed" or decided_at is None:
        return None
    left = ttl_seconds - (now - decided_at).total_seconds()
    return max(0, int(left))


def vendor_decision(
    *,
    outcome: str,
    verification_id: str,
    echoed_id: str | None,
    expected_name: str | None,
    expected_id_number: str | None,
    result_name: str | None,
    result_id_number: str | None,
    echoes_subject: bool = True,
    started_for: str | None = None,
    now_for: str | None = None,
) -> tuple[str | None, str]:
    """What the vendor's word on a face check makes of *this* verification: ``(state, why)``,
    state ``None`` while the vendor has no result yet. The vendor's "passed" passes it only for
    the same check (the verification id the vendor echoes) and the same person (the name and ID
    number the verification is bound to); anything else fails it for good.

    ``started_for`` is the digest (:func:`subject_digest`) of the person the check was started
    for, ``now_for`` that of the person it is bound to now. A vendor that does not echo the person (``echoes_subject`` False: Aliyun) compared
    the face with that person: it passes only when that is still the person the verification
    is bound to (an agent designated again with another ID in between fails it)."""
    if outcome == "pending":
        return None, "pending"
    if outcome != "passed":
        return "failed", "vendor_failed"
    if not expected_id_number or not expected_name:
        return "failed", "no_subject"
    if started_for is not None and started_for != now_for:
        return "failed", "another_person"
    if not echoes_subject:
        # The result came under the vendor's reference kept on this verification only.
        return ("passed", "passed") if started_for is not None else ("failed", "no_subject")
    if echoed_id != verification_id:
        return "failed", "another_check"
    if _id(result_id_number) != _id(expected_id_number) or _name(result_name) != _name(expected_name):
        return "failed", "another_person"
    return "passed", "passed"


def subject_digest(name: str, id_number: str, key: str) -> str:
    """What identifies the person a check is for (the name and ID number, as compared), without
    either: a keyed hash (identity's hash key; an ID number has too few possible values for a
    plain one) of the normalised pair, kept on the verification at its start."""
    return blind_index(f"face_subject\x1f{_name(name)}\x1f{_id(id_number)}", key)


def _id(value: str | None) -> str:
    return (value or "").strip().upper()


def _name(value: str | None) -> str:
    return "".join((value or "").split())

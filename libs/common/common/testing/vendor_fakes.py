"""A stand-in for a vendor's HTTP API on 127.0.0.1: the real SDK sends real requests to it, the
test reads what was sent and says what to answer (in order; the last answer repeats).

Shared by identity's vendor tests and the portal's (where identity runs as its own process
against a fake started by the test): :class:`Cloudauth` plays Aliyun's real-person
verification."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def action(self) -> str | None:
        """Tencent names the action in X-TC-Action, Aliyun (ACS3 signature) in x-acs-action."""
        return self.headers.get("x-tc-action") or self.headers.get("x-acs-action")

    def aliyun_signed_by(self, key_id: str, secret: str) -> bool:
        """Whether Aliyun's ACS3-HMAC-SHA256 signature of the request (the one its API checks:
        method, path, parameters, the signed headers and the body's hash) is the one the key
        ``key_id`` / ``secret`` makes, so the fake refuses what the real API would refuse."""
        scheme, _, fields = self.headers.get("authorization", "").partition(" ")
        parts = dict(part.split("=", 1) for part in fields.split(",") if "=" in part)
        if scheme != "ACS3-HMAC-SHA256" or parts.get("Credential") != key_id:
            return False
        if self.headers.get("x-acs-content-sha256") != hashlib.sha256(self.body).hexdigest():
            return False
        signed = parts.get("SignedHeaders", "").split(";")
        canonical = "\n".join(
            [
                self.method,
                self.path,
                "&".join(f"{_pct(k)}={_pct(v)}" for k, v in sorted(self.query.items())),
                "".join(f"{name}:{self.headers.get(name, '').strip()}\n" for name in signed),
                ";".join(signed),
                hashlib.sha256(self.body).hexdigest(),
            ]
        )
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        expected = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts.get("Signature", ""))


def _pct(value: str) -> str:
    return quote(value, safe="-_.~")


@dataclass
class Reply:
    status: int
    body: Any
    content_type: str = "application/json"


Answer = Reply | Callable[[Seen], Reply]


@dataclass
class FakeVendor:
    answers: list[Answer] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def answer(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.seen.clear()

    def _next(self, request: Seen) -> Reply:
        self.seen.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request) if callable(answer) else answer


def _handler(vendor: FakeVendor) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._answer()

        def do_GET(self) -> None:
            self._answer()

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            request = Seen(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            reply = vendor._next(request)
            payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the timeout tests)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve() -> Iterator[FakeVendor]:
    """A fake vendor listening on 127.0.0.1 (a free port) until the block ends."""
    vendor = FakeVendor()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(vendor))
    server.daemon_threads = True
    vendor.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield vendor
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- Aliyun real-person verification (cloudauth 2019-03-07) --------------------------------------

ALIYUN_KEY_ID, ALIYUN_SECRET = "LTAI-face-key", "aliyun-face-secret"
CERTIFY_URL = "https://m.alicdn.com/cloudauth/h5/index.html?certifyId={}"


class Cloudauth:
    """What a fake cloudauth answers: InitFaceVerify gives CertifyId ``c-<n>``;
    DescribeFaceVerify gives ``self.results[certify_id]`` (``(passed, sub_code)`` or a body
    Code), pending when there is none. A request not signed with ``key_id`` / ``secret`` is
    refused as the real API refuses it."""

    def __init__(self, key_id: str = ALIYUN_KEY_ID, secret: str = ALIYUN_SECRET) -> None:
        self.key_id, self.secret = key_id, secret
        self.results: dict[str, tuple[str, str] | str] = {}
        self.started = 0

    def __call__(self, request: Seen) -> Reply:
        if not request.aliyun_signed_by(self.key_id, self.secret):
            return Reply(400, {"Code": "SignatureDoesNotMatch", "Message": "x", "RequestId": "r"})
        if request.headers.get("x-acs-version") != "2019-03-07":
            return Reply(400, {"Code": "InvalidVersion", "Message": "x", "RequestId": "r"})
        if request.action == "InitFaceVerify":
            self.started += 1
            certify_id = f"c-{self.started}"
            found = {"CertifyId": certify_id, "CertifyUrl": CERTIFY_URL.format(certify_id)}
            return Reply(200, {"Code": "200", "Message": "success", "RequestId": "r", "ResultObject": found})
        if request.action != "DescribeFaceVerify":
            return Reply(400, {"Code": "InvalidAction.NotFound", "Message": "x", "RequestId": "r"})
        result = self.results.get(request.query.get("CertifyId", ""))
        if isinstance(result, str):  # a Code of the body
            return Reply(200, {"Code": result, "Message": "x", "RequestId": "r"})
        if result is None:  # not finished on the phone yet
            return Reply(200, {"Code": "200", "Message": "success", "RequestId": "r", "ResultObject": {}})
        passed, sub_code = result
        found = {"Passed": passed, "SubCode": sub_code, "MaterialInfo": "{}"}
        return Reply(200, {"Code": "200", "Message": "success", "RequestId": "r", "ResultObject": found})

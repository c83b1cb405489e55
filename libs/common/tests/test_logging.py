"""Logs carry request and correlation ids and never an ID number, SMS code, password or token."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from common.context import tracking
from common.logging import configure_logging, scrub


@pytest.fixture
def lines():  # type: ignore[no-untyped-def]
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)

    def read() -> list[dict[str, object]]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]

    yield read
    structlog.reset_defaults()


def test_every_line_carries_the_tracking_ids(lines) -> None:  # type: ignore[no-untyped-def]
    with tracking(request_id="req-1", correlation_id="corr-1", causation_id="evt-1"):
        structlog.get_logger("t").info("did_something", order="ORD1")
        logging.getLogger("uvicorn.error").info("from the standard library")
    got = lines()
    assert [(g["request_id"], g["correlation_id"], g["causation_id"]) for g in got] == [
        ("req-1", "corr-1", "evt-1")
    ] * 2


def test_sensitive_values_are_redacted(lines) -> None:  # type: ignore[no-untyped-def]
    token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl"
    structlog.get_logger("t").info(
        "login",
        password="hunter2-secret",
        sms_code="123456",
        body={"legal_rep_id_number": "450102198001011237", "refresh_token": "abc.def"},
        note=f"user 450102198001011237 sent Bearer {token}",
    )
    line = lines()[0]
    text = json.dumps(line, ensure_ascii=False)
    for secret in ("hunter2-secret", "123456", "450102198001011237", "abc.def", token):
        assert secret not in text
    assert line["password"] == "[redacted]" and line["body"]["legal_rep_id_number"] == "[redacted]"


def test_scrub_leaves_order_numbers_alone() -> None:
    assert scrub("ORD240813163303211 paid") == "ORD240813163303211 paid"
    assert scrub("id 45010219800101123X") == "id [id-number]"


def test_uvicorns_own_level_does_not_hide_its_lines() -> None:
    """uvicorn sets ``uvicorn.error``'s level from its ``--log-level`` (process-wide, a test
    serving with log_level="warning" did it to every later test in the worker): our level
    decides, not uvicorn's."""
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    try:
        logging.getLogger("uvicorn.error").info("Started server process")
    finally:
        structlog.reset_defaults()
    assert "Started server process" in stream.getvalue()

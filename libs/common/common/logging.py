"""structlog logs (JSON, or readable lines in a terminal) with request and correlation ids;
personal data never reaches them.

Every line carries the request id and correlation id from the context. A redaction processor
replaces the values of sensitive keys (passwords, SMS codes, tokens, ID numbers) and scrubs
anything shaped like an ID number, a bearer token or a JWT from every string it logs.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

from common.context import causation_id_var, correlation_id_var, request_id_var

SENSITIVE_KEYS = frozenset(
    {
        "password",
        "old_password",
        "new_password",
        "password_hash",
        "sms_code",
        "code",
        "captcha_answer",
        "answer",
        "token",
        "access_token",
        "refresh_token",
        "verification_token",
        "authorization",
        "id_number",
        "legal_rep_id_number",
        "secret",
        "private_key",
        "account_number",
    }
)
REDACTED = "[redacted]"

# 18-digit resident ID (last may be X), 15-digit old IDs, JWTs, bearer tokens.
_SCRUB = [
    (re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])"), "[id-number]"),
    (re.compile(r"(?<![0-9A-Za-z])\d{15}(?![0-9A-Za-z])"), "[id-number]"),
    (re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*"), "[jwt]"),
    (re.compile(r"(?i)bearer\s+[\w.~+/=-]+"), "Bearer [token]"),
]


def scrub(text: str) -> str:
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    return text


def _redact(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return value
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and k.lower() in SENSITIVE_KEYS else _redact(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(v, depth + 1) for v in value]
    if isinstance(value, str):
        return scrub(value)
    return value


def redact_processor(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return _redact(event_dict)


def add_tracking_ids(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    if (rid := request_id_var.get()) and "request_id" not in event_dict:
        event_dict["request_id"] = rid
    if (cid := correlation_id_var.get()) and "correlation_id" not in event_dict:
        event_dict["correlation_id"] = cid
    if (caus := causation_id_var.get()) and "causation_id" not in event_dict:
        event_dict["causation_id"] = caus
    return event_dict


_configured = False


def configure_logging(
    level: str = "INFO", *, json: bool | None = None, service: str | None = None, stream: Any = None
) -> None:
    """Route structlog and the standard library (uvicorn, sqlalchemy) through one pipeline.

    ``json=None`` decides by the stream: readable coloured lines (structlog's console
    renderer) in a terminal, so ``make run`` is easy to read; JSON lines anywhere else (a
    container, a file, a pipe), and always with ``LOG_JSON=true``.
    """
    global _configured
    out = stream or sys.stdout
    if json is None:
        json = not (hasattr(out, "isatty") and out.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_tracking_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_processor,
    ]
    if service:
        shared.insert(0, _bind_service(service))
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        # a call below the level is dropped first, before the processors do any work for it
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
        lg.setLevel(logging.NOTSET)  # our level decides, not uvicorn's --log-level
    # Our own middleware logs each request with its ids; uvicorn's access line would repeat it.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
    _configured = True


def _bind_service(service: str) -> Any:
    def processor(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    return processor

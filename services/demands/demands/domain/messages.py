"""我要留言 (manual chapter 10): a user writes to the platform; any staff member replies or
closes it; the user reads the reply.

    open (待回复) ──reply──> replied (已回复) ──close──> closed (已关闭)
      └──────────────────────────close──────────────────┘
"""

from __future__ import annotations

from enum import StrEnum

from common.rules import Refusal

CONTENT_MAX = 500


class Status(StrEnum):
    OPEN = "open"
    REPLIED = "replied"
    CLOSED = "closed"


LABELS: dict[str, str] = {Status.OPEN: "待回复", Status.REPLIED: "已回复", Status.CLOSED: "已关闭"}
TABS: tuple[str, ...] = ("all", *LABELS)


def check_content(content: str) -> None:
    if not content.strip():
        raise Refusal("message_empty")
    if len(content) > CONTENT_MAX:
        raise Refusal("message_too_long", length=len(content))


def after_reply(status: str) -> Status:
    """A reply to an open message, or a corrected reply to a replied one; never to a closed one."""
    if status == Status.CLOSED:
        raise Refusal("message_closed")
    return Status.REPLIED


def after_close(status: str) -> Status:
    if status == Status.CLOSED:
        raise Refusal("message_closed")
    return Status.CLOSED

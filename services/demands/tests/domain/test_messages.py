"""The pure rules of messages: demands.domain.messages."""

from __future__ import annotations

from demands.domain import messages as m

from .samples import refused


def test_messages() -> None:
    m.check_content("留" * 500)
    refused("message_too_long", m.check_content, "留" * 501)
    refused("message_empty", m.check_content, "   ")
    assert m.after_reply("open") == m.Status.REPLIED
    assert m.after_reply("replied") == m.Status.REPLIED
    refused("message_closed", m.after_reply, "closed")
    refused("message_closed", m.after_close, "closed")

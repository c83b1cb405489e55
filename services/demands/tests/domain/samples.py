"""What the domain tests of several modules share."""

from __future__ import annotations

import pytest

from common.rules import Refusal


def refused(code: str, call, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """``call`` says no with ``code``."""
    with pytest.raises(Refusal) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code

"""Small helpers shared by the tests."""

from __future__ import annotations

from django_tilestatus.status import get_recent


def recorded_messages() -> list[str]:
    """This process's recorded messages, oldest first (flushes the queue)."""
    _, messages = get_recent()
    return [message for _, _, message in reversed(messages)]

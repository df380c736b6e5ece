"""tilestatus.W004: gunicorn's ``--timeout`` in GUNICORN_CMD_ARGS comes before BUSY_AFTER."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks


def messages(
    settings: Any, monkeypatch: pytest.MonkeyPatch, args: str | None, **changes: Any
) -> Any:
    if args is None:
        monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    else:
        monkeypatch.setenv("GUNICORN_CMD_ARGS", args)
    settings.TILESTATUS = {**settings.TILESTATUS, **changes}
    return [m for m in run_checks() if m.id and m.id.startswith("tilestatus.")]


@pytest.mark.parametrize(
    "args",
    [
        "--timeout 5",
        "--timeout=5",
        "-t 5",
        "-t5",
        "--bind 127.0.0.1:8000 --workers 2 --timeout 5 --log-level info",
        "--timeout 30 -t 5",  # the last one counts, as in gunicorn
        "-k sync --threads 1 --timeout 5",
        "--worker-class=sync -t 5",
    ],
)
def test_a_timeout_at_or_below_busy_after_is_w004(
    settings: Any, monkeypatch: pytest.MonkeyPatch, args: str
) -> None:
    found = messages(settings, monkeypatch, args)  # BUSY_AFTER: the default, 10

    assert [m.id for m in found] == ["tilestatus.W004"]
    assert found[0].msg == (
        "Stack snapshots are taken after BUSY_AFTER seconds (10), but gunicorn kills a "
        "request after 5 (--timeout in GUNICORN_CMD_ARGS), so none is ever taken."
    )
    assert found[0].hint == (
        "Set TILESTATUS['BUSY_AFTER'] below 5 (e.g. 2.5), or raise gunicorn's --timeout "
        "above BUSY_AFTER."
    )


def test_busy_after_equal_to_the_timeout_is_w004(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = messages(settings, monkeypatch, "--timeout 10")

    assert [m.id for m in found] == ["tilestatus.W004"]


@pytest.mark.parametrize(
    ("args", "busy_after"),
    [
        (None, 10),  # no GUNICORN_CMD_ARGS: the timeout is not known
        ("", 10),
        ("--workers 2", 10),  # gunicorn's default timeout, 30
        ("--timeout 30", 10),
        ("--timeout 5", 2),
        ("--timeout 5", 4.5),
        ("--timeout 0", 10),  # no timeout at all
        ("--timeout soon", 10),
        ("--timeout 'unbalanced", 10),
        ("-k gthread --timeout 5", 10),  # other workers keep notifying while a request runs
        ("--worker-class=uvicorn_worker.UvicornWorker -t 5", 10),
        ("--threads 4 --timeout 5", 10),  # sync with threads is gthread
    ],
)
def test_no_w004_when_snapshots_can_be_taken_or_the_timeout_is_unknown(
    settings: Any, monkeypatch: pytest.MonkeyPatch, args: str | None, busy_after: float
) -> None:
    assert messages(settings, monkeypatch, args, BUSY_AFTER=busy_after) == []


def test_a_wrong_busy_after_is_left_to_e005(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    found = messages(settings, monkeypatch, "--timeout 5", BUSY_AFTER="10")

    assert [m.id for m in found] == ["tilestatus.E005"]

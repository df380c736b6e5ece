"""Told to stop, a process records ``Destroyed`` once, after its last request in flight;
an aborted request is counted as a server error with its seconds."""

from __future__ import annotations

import signal
import threading
from typing import Any

import pytest

from django_tilestatus.recording import inflight, recorder, termination
from django_tilestatus.recording.recorder import Recorder
from django_tilestatus.statistics.schema import RequestCount, ResponseSeconds

from .test_recorder import FlakyStore


@pytest.fixture
def store() -> FlakyStore:
    return FlakyStore()


@pytest.fixture
def writer(store: FlakyStore) -> Any:
    made = Recorder(lambda: store, "web1", 4242, interval=3600)
    yield made
    made.stop(flush=False)
    for request in inflight.requests():
        inflight.end(request)


def test_destroyed_follows_the_last_request_in_flight(writer: Recorder, store: FlakyStore) -> None:
    request = writer.begin_request("/demo/1/0/0.png")
    writer.terminating = True
    writer.flush()
    assert "Destroyed" not in store.messages  # still serving
    writer.finish_request(request, 0.01, 200)
    assert store.messages[-2:] == ["Finished /demo/1/0/0.png in 0.010 seconds", "Destroyed"]
    writer.say_destroyed()  # at exit: said already
    writer.flush()
    assert store.messages.count("Destroyed") == 1


def test_an_aborted_request_counts_as_a_server_error_with_its_seconds(
    writer: Recorder, store: FlakyStore
) -> None:
    request = writer.begin_request("/demo/2/1/1.png")
    writer.abort_request(request, SystemExit(1), 5.1)
    writer.flush()
    assert store.messages[-1] == "Error: SystemExit: 1 after 5.100 seconds"
    [deltas] = store.stats
    [counts] = deltas.counts.values()
    requests = [record for record in counts if isinstance(record, RequestCount)]
    assert [(record.outcome, counts[record]) for record in requests] == [("server_error", 1)]
    [sums] = deltas.sums.values()
    [seconds] = [value for record, value in sums.items() if isinstance(record, ResponseSeconds)]
    assert seconds == pytest.approx(5.1)
    assert [slow.seconds for slow in deltas.slowest] == [pytest.approx(5.1)]


def test_the_handler_chains_a_server_handler_and_says_terminating(monkeypatch: Any) -> None:
    called: list[int] = []
    told: list[str] = []
    monkeypatch.setattr(recorder, "say_terminating", lambda: told.append("terminating"))
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: called.append(signum))
    try:
        assert termination.install()
        assert termination.install()  # once: not chained to itself
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        handler(signal.SIGTERM, None)
        assert called == [signal.SIGTERM] and told == ["terminating"]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_an_ignored_sigterm_stays_ignored(monkeypatch: Any) -> None:
    told: list[str] = []
    monkeypatch.setattr(recorder, "say_destroyed_now", lambda: told.append("destroyed"))
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        termination.install()
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        handler(signal.SIGTERM, None)  # nothing happens, and the test goes on
        assert told == []
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_only_the_main_thread_installs() -> None:
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(termination.install()))
    thread.start()
    thread.join()
    assert results == [False]


def test_at_exit_an_aborted_request_is_put_back_as_what_the_process_died_on(
    writer: Recorder, store: FlakyStore
) -> None:
    request = writer.begin_request("/hang/1/0/0.png")
    writer.abort_request(request, SystemExit(1), 3.0)
    writer.say_destroyed(stop=True)
    assert store.messages[-1] == "Destroyed"
    assert [r.path for r in inflight.requests()] == ["/hang/1/0/0.png"]


def test_told_to_stop_with_nothing_in_flight_it_says_destroyed_at_once(
    writer: Recorder, store: FlakyStore, monkeypatch: Any
) -> None:
    writer.begin_request("/demo/1/0/0.png")  # a process that served tiles
    for request in inflight.requests():
        writer.finish_request(request, 0.01, 200)
    monkeypatch.setattr(recorder, "existing_recorder", lambda: writer)
    recorder.say_terminating()
    assert writer.terminating and store.messages[-1] == "Destroyed"
    recorder.say_destroyed_now()  # at exit: said already
    assert store.messages.count("Destroyed") == 1


def test_with_the_default_action_it_says_destroyed_then_dies_as_it_would_have(
    monkeypatch: Any,
) -> None:
    told: list[str] = []
    raised: list[int] = []
    monkeypatch.setattr(recorder, "say_destroyed_now", lambda: told.append("destroyed"))
    monkeypatch.setattr(signal, "raise_signal", raised.append)
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        termination.install()
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        handler(signal.SIGTERM, None)
        assert told == ["destroyed"] and raised == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)

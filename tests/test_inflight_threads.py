"""Each request in flight names its thread, so a process's interleaved requests stay apart;
a request put back at exit after its abort was counted says so."""

from __future__ import annotations

import json
import threading

from django_tilestatus.reading.report import request_rows
from django_tilestatus.recording import inflight


def test_a_request_names_the_thread_serving_it() -> None:
    encoded: list[str] = []

    def serve() -> None:
        request = inflight.begin("/demo/1/0/0.png", 100.0)
        encoded.append(request.encode())  # the writer encodes while the request runs
        inflight.end(request)

    thread = threading.Thread(target=serve, name="ThreadPoolExecutor-0_3")
    thread.start()
    thread.join()
    value = json.loads(encoded[0])
    assert value["thread"] == "ThreadPoolExecutor-0_3"
    assert "counted" not in value
    [row] = request_rows(encoded, now=104.0, busy_after=10.0, gone=False)
    assert row.thread == "ThreadPoolExecutor-0_3"
    assert row.text == "/demo/1/0/0.png, starting for 4 s, running 4 s, in ThreadPoolExecutor-0_3"
    assert row.as_dict()["thread"] == "ThreadPoolExecutor-0_3"


def test_a_thread_that_has_gone_is_named_by_nothing() -> None:
    request = inflight.Request(ident=-1, path="/x", started=1.0)
    assert "thread" not in json.loads(request.encode())
    [row] = request_rows([request.encode()], now=2.0, busy_after=10.0, gone=True)
    assert row.text == "gone while busy on /x"  # the words of a death stay as they were


def test_an_ended_request_put_back_at_exit_is_marked_counted() -> None:
    request = inflight.Request(ident=-1, path="/hang/1/0/0.png", started=1.0)
    request.status = 500  # aborted: counted as a server error when it ended
    entry = inflight.decode(request.encode())
    assert entry is not None and entry.counted
    assert (
        inflight.decode(json.dumps({"path": "/x", "started": 1, "counted": "yes"})).counted is False
    )
    hostile = json.dumps({"path": "/x", "started": 1, "thread": ["not", "text"]})
    assert inflight.decode(hostile).thread == ""

"""The one HTTP client of the tests and benchmarks: one connection per request, every
wait bounded, and what came back (or why nothing did) in an ``Answer``."""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import WaitTimeoutError, wait_until


@dataclass
class Answer:
    """What one request got: status 0 and ``error`` set when it got no answer."""

    path: str
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    seconds: float = 0.0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error


def request(
    base: str,
    path: str,
    method: str = "GET",
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
) -> Answer:
    """Send ``path`` as it is (already percent-encoded) and read the whole answer.

    Redirects are not followed (a test sees the ``location`` header); header names
    are lower-cased. Never raises for a refused, reset or timed-out connection.
    """
    host, port = base.removeprefix("http://").rsplit(":", 1)
    answer = Answer(path)
    start = time.monotonic()
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        answer.body = response.read()
        answer.status = response.status
        answer.headers = {name.lower(): value for name, value in response.getheaders()}
    except (OSError, http.client.HTTPException) as exc:
        answer.error = f"{type(exc).__name__}: {exc}"
    finally:
        answer.seconds = time.monotonic() - start
        connection.close()
    return answer


def raw_exchange(
    base: str, method: str, target: bytes, timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    """Send ``<method> <target>`` byte for byte over a plain socket and read to the end.

    No client-side checks or parsing rules apply: a target http.client would refuse
    goes out as it is, and a body sent where none belongs (after HEAD) is seen.
    """
    host, port = base.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(
            method.encode() + b" " + target + b" HTTP/1.1\r\n"
            b"Host: " + host.encode() + b"\r\nConnection: close\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name: value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def wait_for_answer(
    base: str,
    path: str,
    process: subprocess.Popen[Any],
    seconds: float,
    ready: Callable[[], bool] = lambda: True,
) -> None:
    """Poll until ``path`` answers 200 and ``ready()`` holds.

    Raises RuntimeError at once if ``process`` (the server) exits, or when
    ``seconds`` pass; a server still starting refuses, resets or answers late,
    and that is only waited through.
    """

    def answered() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        return request(base, path, timeout=2).ok and ready()

    try:
        wait_until(answered, seconds)
    except WaitTimeoutError:
        raise RuntimeError(f"{base}{path} did not answer 200 within {seconds:.0f} s") from None


def summary(answers: Iterable[Answer]) -> dict[str, Any]:
    """Requests, failures (no answer, or 5xx) and the slowest, for the figures."""
    answers = list(answers)
    seconds = sorted(answer.seconds for answer in answers)
    return {
        "requests": len(answers),
        "failures": sum(1 for a in answers if a.error or a.status >= 500),
        "slowest_s": round(seconds[-1], 3) if seconds else None,
        "median_s": round(seconds[len(seconds) // 2], 4) if seconds else None,
    }

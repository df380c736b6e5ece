"""A plain HTTP client for the tests: one connection per request, every wait bounded."""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass, field


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
    """Send ``path`` as it is (already percent-encoded) and read the whole answer."""
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

"""Test clients for each way a tile request can be served: through Django, through the fast
path's middleware, and through the fast path's WSGI wrapper.

The wrapper's client sends Django's test-client environ through
``FastPath(WSGIHandler())``, the stack a WSGI server runs, and gives back what
the server would send: status, headers and body as they left the application.
"""

from __future__ import annotations

from typing import Any

from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client

from django_tilestatus.web.fastpath import FastPath

#: The ways a tile request is served, as ``tile_client`` fixture parameters.
PATHS = ("django", "middleware", "wsgi")
MIDDLEWARE = "django_tilestatus.fastpath.FastPathMiddleware"


class WSGIAnswer:
    """An answer as a WSGI server receives it, read like a test-client response."""

    def __init__(self, status: str, headers: list[tuple[str, str]], content: bytes):
        self.status_code = int(status.split(" ", 1)[0])
        self.reason_phrase = status.split(" ", 1)[1]
        self.header_list = headers
        self.headers = {name.lower(): value for name, value in headers}
        self.content = content

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]

    def __contains__(self, name: str) -> bool:
        return name.lower() in self.headers

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


class FastPathClient(Client):
    """Django's test client, each request going through ``FastPath(WSGIHandler())``.

    The application is built at the first request, so settings changed by the
    test before it (``MIDDLEWARE``...) are in force, as in a fresh process.
    """

    def __init__(self, **defaults: Any):
        super().__init__(**defaults)
        self.application: FastPath | None = None
        #: How many requests reached Django (the wrapped application).
        self.django_requests = 0

    def _django(self, environ: Any, start_response: Any) -> Any:
        self.django_requests += 1
        return self._handler(environ, start_response)

    def request(self, **request: Any) -> Any:  # type: ignore[override]
        if self.application is None:
            self._handler = WSGIHandler()
            self.application = FastPath(self._django)
        environ = self._base_environ(**request)
        started: list[tuple[str, list[tuple[str, str]]]] = []

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            started.append((status, list(headers)))

        # As Django's test client does: the test's database connection must survive
        # the request signals.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            answer = self.application(environ, start_response)
            try:
                content = b"".join(answer)
            finally:
                close = getattr(answer, "close", None)
                if close is not None:
                    close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        status, headers = started[-1]
        return WSGIAnswer(status, headers, content)


def make_client(path: str, settings: Any, **kwargs: Any) -> Any:
    """A client for ``path`` (one of ``PATHS``); the middleware path lists it first."""
    if path == "wsgi":
        return FastPathClient(**kwargs)
    if path == "middleware" and MIDDLEWARE not in settings.MIDDLEWARE:
        settings.MIDDLEWARE = [MIDDLEWARE, *settings.MIDDLEWARE]
    return Client(**kwargs)

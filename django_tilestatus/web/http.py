"""What every HTTP adapter of the app does the same way: HEAD, 503 and plain text.

The tile view, the fast path, the status page and the metrics endpoint each
answer HEAD with the GET's headers and no body, and answer 503 with a short
text when the store cannot be reached; both rules live here once.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse

from ..storage import StoreUnavailable

#: The content type of every plain-text answer.
TEXT = "text/plain; charset=utf-8"


def body_to_send(method: str, body: bytes) -> bytes:
    """The body as sent: none for HEAD (its ``Content-Length`` is still the GET's)."""
    return b"" if method == "HEAD" else body


def without_body_for_head(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """HEAD gets the GET's headers and no body (gunicorn sends what it is given)."""
    if request.method == "HEAD":
        length = len(response.content)
        response.content = b""
        response["Content-Length"] = str(length)
    return response


def unavailable_text(what: str) -> str:
    """``<what> unavailable``, in the words every 503 of the app uses."""
    return f"{what} unavailable: Redis cannot be reached. Tiles are still served."


def log_unavailable(logger: logging.Logger, what: str, exc: StoreUnavailable) -> None:
    """Log that ``what`` could not read the store, naming only the cause's type: its
    text may hold the server's address or password."""
    cause = type(exc.__cause__ or exc).__name__
    logger.warning("%s: Redis cannot be reached (%s).", what, cause)


def text_response(text: str, status: int = 200) -> HttpResponse:
    return HttpResponse(
        text if text.endswith("\n") else text + "\n", status=status, content_type=TEXT
    )

"""A middleware that marks every answer it sees, to tell which requests passed through it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: The dotted path to list in ``MIDDLEWARE``.
MARKING = "tests.support.middleware.Marking"
#: The header it adds.
MARK = "X-Seen-By-Middleware"


class Marking:
    def __init__(self, get_response: Callable[[Any], Any]):
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        response[MARK] = "yes"
        return response

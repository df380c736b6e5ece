"""Shims for the Django versions we support."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

try:  # Django 5.1+: LoginRequiredMiddleware honours this marker.
    from django.contrib.auth.decorators import login_not_required
except ImportError:  # pragma: no cover - older Django has no such middleware

    def login_not_required(view_func: F) -> F:
        return view_func


__all__ = ["login_not_required"]

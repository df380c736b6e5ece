"""Who may see the status page, in which format, with which method, and its headers.

Written against the public contract: anyone who is not an active staff user
is redirected to the admin login with ``next``, and that answer carries no
status content; staff get every format; the page is never cached and is
served with ``X-Content-Type-Options: nosniff``; tiles stay public. No Redis
URL or password ever appears in a page, an INFO log line or an error.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from django_tilestatus.status import update_status

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.django_db,
    pytest.mark.timeout(120),
]

FORMATS = {"html": "", "json": "?format=json", "text": "?format=text"}
USERS = {
    "anonymous": None,
    "inactive staff": {"is_staff": True, "is_active": False},
    "active non-staff": {"is_staff": False, "is_active": True},
    "staff": {"is_staff": True, "is_active": True},
    "superuser": {"is_staff": True, "is_active": True, "is_superuser": True},
}
ALLOWED = {"staff", "superuser"}


def client_for(who: str) -> Client:
    client = Client()
    flags = USERS[who]
    if flags is not None:
        user = get_user_model().objects.create_user(f"u-{uuid.uuid4().hex[:8]}", **flags)
        client.force_login(user)
    return client


def status_url(fmt: str) -> str:
    return reverse("tilestatus:status") + FORMATS[fmt]


def assert_never_cached(response: Any) -> None:
    cache_control = response.get("Cache-Control", "")
    assert "no-store" in cache_control or (
        "no-cache" in cache_control
        and "must-revalidate" in cache_control
        and "max-age=0" in cache_control
    ), cache_control


@pytest.fixture(autouse=True)
def _no_security_middleware(settings: Any) -> None:
    """The page must send nosniff itself, not rely on SecurityMiddleware doing it."""
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("SecurityMiddleware")]


@pytest.mark.parametrize("method", ["get", "head", "post"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("who", USERS)
def test_access_matrix(who: str, fmt: str, method: str) -> None:
    secret = f"sentinel-{uuid.uuid4().hex}"
    update_status(secret)
    client = client_for(who)
    url = status_url(fmt)
    response = getattr(client, method)(url)
    if who not in ALLOWED:
        assert response.status_code == 302, response.status_code
        location = urllib.parse.urlsplit(response["Location"])
        assert location.path == reverse("admin:login")
        assert urllib.parse.parse_qs(location.query)["next"] == [url]
        assert secret.encode() not in response.content
        return
    if method == "post":
        assert response.status_code == 405
        assert secret.encode() not in response.content
        return
    assert response.status_code == 200
    assert_never_cached(response)
    assert response["X-Content-Type-Options"] == "nosniff"
    if method == "head":
        return
    assert secret.encode() in response.content
    kind = response["Content-Type"]
    if fmt == "json":
        assert kind.startswith("application/json")
        data = json.loads(response.content)
        assert set(data) >= {"now", "processes", "messages"}
        for item in data["processes"] + data["messages"]:
            assert set(item) >= {"host", "pid", "elapsed", "message"}
    elif fmt == "text":
        assert kind.startswith("text/plain")
    else:
        assert kind.startswith("text/html")


def test_the_tile_view_stays_public_under_login_required_middleware(settings: Any) -> None:
    from django.contrib.auth import middleware

    if not hasattr(middleware, "LoginRequiredMiddleware"):
        pytest.skip("LoginRequiredMiddleware is new in Django 5.1")
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]
    client = Client()
    assert client.get("/tiles/solid/1/1/1.png").status_code == 200
    assert client.head("/tiles/solid/1/1/1.png").status_code == 200
    assert client.get("/tiles/").status_code == 200
    response = client.get(status_url("json"))
    assert response.status_code == 302
    assert urllib.parse.urlsplit(response["Location"]).path in (
        reverse("admin:login"),
        settings.LOGIN_URL,
    )
    staff = client_for("staff")
    assert staff.get(status_url("json")).status_code == 200


def test_no_redis_url_or_password_in_pages_logs_or_errors(
    settings: Any, redis_server, app_on_redis, caplog: Any
) -> None:
    """With Redis up, then down: every format, every log record at INFO and above."""
    client = client_for("staff")
    password = redis_server.password
    secrets = [password, redis_server.url, f":{password}@"]
    answers = []
    with caplog.at_level(logging.INFO):
        Client().get("/tiles/solid/1/0/0.png")
        for fmt in FORMATS:
            answers.append(client.get(status_url(fmt)))
        redis_server.kill()
        Client().get("/tiles/solid/1/0/1.png")
        for fmt in FORMATS:
            answers.append(client.get(status_url(fmt)))
    assert [a.status_code for a in answers] == [200] * 3 + [503] * 3
    for answer in answers:
        for secret in secrets:
            assert secret.encode() not in answer.content
    for record in caplog.records:
        text = record.getMessage() + (
            logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        )
        for secret in secrets:
            assert secret not in text, record

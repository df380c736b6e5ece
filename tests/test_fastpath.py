"""The fast path answers tile paths before Django, and leaves everything else to Django.

That its answers equal the tile view's is shown by the tile view's own suite,
which runs through every path (``tile_client``); these tests show what each
path skips, how the prefix is found, and how it is turned off.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.checks import run_checks
from django.core.signals import request_started
from django.test import AsyncClient, Client

from .support.clients import MIDDLEWARE, FastPathClient
from .support.middleware import MARK, MARKING
from .support.status import recorded_messages


@pytest.fixture
def django_requests() -> Iterator[list[str]]:
    """The paths of the requests that reached Django's request handling."""
    seen: list[str] = []

    def receiver(*, environ: Any = None, scope: Any = None, **kwargs: Any) -> None:
        seen.append(environ["PATH_INFO"] if environ else "")

    request_started.connect(receiver)
    yield seen
    request_started.disconnect(receiver)


def test_the_wsgi_wrapper_answers_tiles_without_django(django_requests: list[str]) -> None:
    client = FastPathClient()
    assert client.get("/tiles/solid/1/0/0.png").status_code == 200
    assert client.get("/tiles/solid/preview.html").status_code == 200
    assert client.get("/tiles/nowhere/1/0/0.png").status_code == 404
    assert client.post("/tiles/solid/1/0/0.png").status_code == 405
    assert client.django_requests == 0
    assert django_requests == []
    assert recorded_messages()[1] == "Started /solid/1/0/0.png"


def test_the_wsgi_wrapper_leaves_everything_else_to_django(django_requests: list[str]) -> None:
    client = FastPathClient()
    status = client.get("/tiles/status/")
    assert status.status_code == 302
    assert status["Location"].startswith("/admin/login/?next=/tiles/status/")
    assert client.get("/tiles/status")["Location"] == "/tiles/status/"  # the include's redirect
    assert client.get("/admin/").status_code == 302
    assert client.get("/elsewhere/").status_code == 404
    assert django_requests == ["/tiles/status/", "/tiles/status", "/admin/", "/elsewhere/"]


def test_the_middleware_skips_the_middleware_after_it(settings: Any) -> None:
    settings.MIDDLEWARE = [MIDDLEWARE, *settings.MIDDLEWARE, MARKING]
    client = Client()
    assert MARK not in client.get("/tiles/solid/1/0/0.png")
    assert client.get("/tiles/status/")[MARK] == "yes"


def test_middleware_before_it_still_sees_tiles(settings: Any) -> None:
    settings.MIDDLEWARE = [MARKING, MIDDLEWARE, *settings.MIDDLEWARE]
    assert Client().get("/tiles/solid/1/0/0.png")[MARK] == "yes"


def test_the_middleware_serves_tiles_under_asgi_too(settings: Any) -> None:
    settings.MIDDLEWARE = [MIDDLEWARE, *settings.MIDDLEWARE, MARKING]

    async def requests() -> tuple[Any, Any]:
        client = AsyncClient()
        return await client.get("/tiles/solid/1/0/0.png"), await client.get("/tiles/status/")

    tile, status = async_to_sync(requests)()
    assert tile.status_code == 200 and tile["Content-Type"] == "image/png"
    assert MARK not in tile  # the middleware after it was skipped
    assert status.status_code == 302 and status[MARK] == "yes"
    assert recorded_messages()[1] == "Started /solid/1/0/0.png"


def test_fast_path_false_sends_tiles_through_django(
    settings: Any, django_requests: list[str]
) -> None:
    settings.TILESTATUS = {**settings.TILESTATUS, "FAST_PATH": False}
    settings.MIDDLEWARE = [MIDDLEWARE, *settings.MIDDLEWARE]
    client = FastPathClient()
    tile = client.get("/tiles/solid/1/0/0.png")
    assert tile.status_code == 200
    assert tile["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware saw it
    assert django_requests == ["/tiles/solid/1/0/0.png"]


def test_the_prefix_comes_from_the_urlconf(settings: Any, django_requests: list[str]) -> None:
    settings.ROOT_URLCONF = "tests.urls_other_prefix"
    client = FastPathClient()
    tile = client.get("/maps/v1/solid/1/0/0.png")
    assert tile.status_code == 200 and tile["Content-Type"] == "image/png"
    redirect = client.get("/maps/v1/solid/2/1/1.jpeg?style=a")
    assert redirect["Location"] == "/maps/v1/solid/2/1/1.png?style=a"
    assert client.get("/tiles/solid/1/0/0.png").status_code == 404  # not a tile path here
    assert django_requests == ["/tiles/solid/1/0/0.png"]


def test_a_non_tile_view_under_the_include_stays_in_django(
    settings: Any, django_requests: list[str]
) -> None:
    settings.ROOT_URLCONF = "tests.urls_other_prefix"
    answer = FastPathClient().get("/maps/v1/metrics")
    assert answer.content == b"the project's own view"
    assert django_requests == ["/maps/v1/metrics"]


def test_a_script_name_is_kept_in_redirects_as_django_keeps_it(
    django_requests: list[str],
) -> None:
    fast = FastPathClient().get("/tiles/solid/2/1/1.jpeg", SCRIPT_NAME="/app")
    settings_free = Client().get("/tiles/solid/2/1/1.jpeg", SCRIPT_NAME="/app")
    assert fast["Location"] == settings_free["Location"] == "/app/tiles/solid/2/1/1.png"
    assert django_requests == ["/tiles/solid/2/1/1.jpeg"]  # the second, through Django


def test_without_the_tile_urls_everything_goes_to_django_and_a_warning_says_why(
    settings: Any, caplog: Any
) -> None:
    settings.ROOT_URLCONF = "tests.urls_without_tiles"
    client = FastPathClient()
    with caplog.at_level(logging.WARNING, logger="django_tilestatus.web.fastpath"):
        assert client.get("/tiles/solid/1/0/0.png").status_code == 404
        assert client.get("/tiles/solid/1/0/1.png").status_code == 404
    assert client.django_requests == 2
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "django_tilestatus.web.fastpath"
    ]
    assert len(warnings) == 1
    assert "reverse('tilestatus:tile') fails" in warnings[0]


def _check_ids(**kwargs: Any) -> list[str]:
    return [m.id for m in run_checks(**kwargs) if m.id and m.id.startswith("tilestatus.")]


def test_checks_pass_for_the_usual_wiring(settings: Any) -> None:
    settings.MIDDLEWARE = [MIDDLEWARE, *settings.MIDDLEWARE]
    assert _check_ids() == []


def test_check_e008_the_middleware_is_listed_but_there_are_no_tile_urls(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.urls_without_tiles"
    assert "tilestatus.E010" not in _check_ids()  # not wired: nothing to say
    settings.MIDDLEWARE = [MIDDLEWARE, *settings.MIDDLEWARE]
    messages = [m for m in run_checks() if m.id == "tilestatus.E010"]
    assert len(messages) == 1
    assert "reverse('tilestatus:tile') fails" in messages[0].msg


def test_check_w002_a_project_view_shadows_a_tile_path(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.urls_shadowed"
    messages = [m for m in run_checks() if m.id == "tilestatus.W002"]
    assert len(messages) == 1
    assert "/tiles/solid/0/0/0.png" in messages[0].msg
    settings.TILESTATUS = {**settings.TILESTATUS, "FAST_PATH": False}
    assert "tilestatus.W002" not in _check_ids()


def test_check_w003_names_the_middleware_tiles_skip(settings: Any) -> None:
    django_own = list(settings.MIDDLEWARE)
    settings.MIDDLEWARE = [MIDDLEWARE, *django_own]
    assert "tilestatus.W003" not in _check_ids()  # Django's own: nothing a tile misses
    settings.MIDDLEWARE = [MARKING, MIDDLEWARE, *django_own]
    assert "tilestatus.W003" not in _check_ids()  # before it: it sees tiles
    settings.MIDDLEWARE = [
        MIDDLEWARE,
        *django_own,
        MARKING,
        "django.middleware.gzip.GZipMiddleware",
    ]
    [message] = [m for m in run_checks() if m.id == "tilestatus.W003"]
    assert message.msg == (
        "Tile requests skip these middleware, listed after FastPathMiddleware: "
        "tests.support.middleware.Marking, django.middleware.gzip.GZipMiddleware."
    )
    settings.TILESTATUS = {**settings.TILESTATUS, "FAST_PATH": False}
    assert "tilestatus.W003" not in _check_ids()


def test_check_e007_fast_path_must_be_a_bool(settings: Any) -> None:
    settings.TILESTATUS = {**settings.TILESTATUS, "FAST_PATH": "yes"}
    messages = [m for m in run_checks() if m.id == "tilestatus.E007"]
    assert [m.msg for m in messages] == [
        "TILESTATUS['FAST_PATH'] must be True or False, not 'yes'."
    ]


# -- what Django's middleware would enforce, kept by the fast path ------------------

SECURITY = "django.middleware.security.SecurityMiddleware"
XFRAME = "django.middleware.clickjacking.XFrameOptionsMiddleware"
COMMON = "django.middleware.common.CommonMiddleware"


def both_paths(settings: Any) -> list[Client]:
    """A client through the WSGI wrapper, and one through the middleware listed first."""
    settings.MIDDLEWARE = [MIDDLEWARE, *settings.MIDDLEWARE]
    return [FastPathClient(), Client()]


@pytest.mark.parametrize("host", ["evil.example", "testserver.evil.example", "", "a b"])
def test_a_host_django_refuses_is_400_on_both_paths(
    settings: Any, host: str, django_requests: list[str]
) -> None:
    for client in both_paths(settings):
        answer = client.get("/tiles/solid/1/0/0.png", headers={"host": host})
        assert answer.status_code == 400, (client, host)
        assert answer["Content-Type"].startswith("text/html")
    assert recorded_messages() == []  # refused before the tile was asked for


def test_allowed_hosts_and_forwarded_hosts_are_served(settings: Any) -> None:
    settings.ALLOWED_HOSTS = [".example.org"]
    settings.USE_X_FORWARDED_HOST = True
    for client in both_paths(settings):
        assert (
            client.get("/tiles/solid/1/0/0.png", headers={"host": "tiles.example.org"}).status_code
            == 200
        )
        forwarded = {"host": "internal", "x-forwarded-host": "a.example.org:8443"}
        assert client.get("/tiles/solid/1/0/0.png", headers=forwarded).status_code == 200
        refused = {"host": "tiles.example.org", "x-forwarded-host": "evil.example"}
        assert client.get("/tiles/solid/1/0/0.png", headers=refused).status_code == 400


def test_debug_allows_local_names_when_allowed_hosts_is_empty(settings: Any) -> None:
    settings.ALLOWED_HOSTS = []
    settings.DEBUG = True
    for client in both_paths(settings):
        assert (
            client.get("/tiles/solid/1/0/0.png", headers={"host": "localhost:8000"}).status_code
            == 200
        )
        assert (
            client.get("/tiles/solid/1/0/0.png", headers={"host": "evil.example"}).status_code
            == 400
        )


def test_tiles_carry_the_security_middleware_headers_it_skips(settings: Any) -> None:
    settings.MIDDLEWARE = [MIDDLEWARE, SECURITY, XFRAME]
    settings.SECURE_REFERRER_POLICY = ["origin", "strict-origin"]
    for client in (FastPathClient(), Client()):
        tile = client.get("/tiles/solid/1/0/0.png")
        assert tile.status_code == 200
        assert tile["X-Content-Type-Options"] == "nosniff"
        assert tile["Referrer-Policy"] == "origin,strict-origin"
        assert tile["Cross-Origin-Opener-Policy"] == "same-origin"
        assert tile["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in tile  # plain HTTP


def test_headers_follow_the_settings_and_the_middleware_listed(settings: Any) -> None:
    settings.MIDDLEWARE = [MIDDLEWARE, XFRAME]
    settings.X_FRAME_OPTIONS = "sameorigin"
    tile = FastPathClient().get("/tiles/solid/1/0/0.png")
    assert tile["X-Frame-Options"] == "SAMEORIGIN"
    assert "X-Content-Type-Options" not in tile  # no SecurityMiddleware listed
    settings.MIDDLEWARE = [MIDDLEWARE, SECURITY]
    settings.SECURE_CONTENT_TYPE_NOSNIFF = False
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    for client in (FastPathClient(), Client()):
        secure = client.get("/tiles/solid/1/0/0.png", secure=True)
        assert "X-Content-Type-Options" not in secure
        assert "X-Frame-Options" not in secure
        assert secure["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"


def test_ssl_redirect_and_refused_user_agents_are_left_to_django(
    settings: Any, django_requests: list[str]
) -> None:
    settings.MIDDLEWARE = [MIDDLEWARE, SECURITY, COMMON]
    settings.SECURE_SSL_REDIRECT = True
    for client in (FastPathClient(), Client()):
        redirect = client.get("/tiles/solid/1/0/0.png")
        assert redirect.status_code == 301
        assert redirect["Location"] == "https://testserver/tiles/solid/1/0/0.png"
        assert client.get("/tiles/solid/1/0/0.png", secure=True).status_code == 200
    settings.SECURE_SSL_REDIRECT = False
    settings.DISALLOWED_USER_AGENTS = [re.compile(r"BadBot")]
    for client in (FastPathClient(), Client()):
        assert (
            client.get("/tiles/solid/1/0/0.png", headers={"user-agent": "BadBot/1"}).status_code
            == 403
        )
        assert (
            client.get("/tiles/solid/1/0/0.png", headers={"user-agent": "Firefox"}).status_code
            == 200
        )

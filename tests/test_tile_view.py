"""The tile view answers as TileStache's WSGI server does, and records each request.

Every test runs three times (``tile_client``): through Django, through the fast
path's middleware and through its WSGI wrapper; the answers must be the same.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.test import Client
from PIL import Image

from .support.cold import cold_tile
from .support.status import recorded_messages


@pytest.fixture
def client(tile_client: Any) -> Client:
    return tile_client()


def test_tile_is_a_png_with_cors_and_cache_headers(client: Client) -> None:
    response = client.get("/tiles/solid/1/0/1.png")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (256, 256)
    assert response["Content-Length"] == str(len(response.content))
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Cache-Control"] == "public, max-age=300"
    assert response["Expires"].endswith(" GMT")


def test_preview_page(client: Client) -> None:
    response = client.get("/tiles/solid/preview.html")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html"
    assert b"<html" in response.content.lower()


def test_extension_redirect_keeps_prefix_and_query(client: Client) -> None:
    response = client.get("/tiles/solid/2/1/1.jpeg?style=a")
    assert response.status_code == 302
    assert response["Location"] == "/tiles/solid/2/1/1.png?style=a"
    assert response.content == b"You are being redirected to /tiles/solid/2/1/1.png?style=a\n"


def test_index_text_for_the_empty_path(client: Client) -> None:
    response = client.get("/tiles/")
    assert response.status_code == 200
    assert response.content == b"TileStache bellows hello."  # TileStache's default index


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/tiles/solid/zz/0/0.png", 400),
        ("/tiles/solid/1/0/0.gif", 400),
        ("/tiles/just-a-word", 400),
        ("/tiles/unknown/1/0/0.png", 404),
        ("/tiles/café/1/0/0.png", 404),
        ("/tiles/favicon.ico", 404),
        ("/tiles/solid/33/0/0.png", 404),  # deeper than any layer
        ("/tiles/solid/1/2/0.png", 404),  # zoom 1 has columns and rows 0 and 1
        ("/tiles/solid/1/0/2.png", 404),
        ("/tiles/solid/1/-1/0.png", 404),
        ("/tiles/solid/1/0/-4294967296.png", 404),
        ("/tiles/solid/0/-4258557161/1049203985.png", 404),
        ("/tiles/solid/1/" + "9" * 400 + "/0.png", 404),  # a file name too long for the cache
        ("/tiles/solid/1/0/" + "9" * 5000 + ".png", 400),  # past int()'s 4,300 digits
        ("/tiles/unknown/" + "9" * 5000 + "/0/0.png", 400),
    ],
)
def test_bad_requests_get_short_answers(client: Client, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/plain")
    assert len(response.content) < 200  # no "Known unknown" ASCII art


def test_the_deepest_zoom_and_the_farthest_tiles_are_still_served(client: Client) -> None:
    assert client.get("/tiles/solid/32/4294967295/4294967295.png").status_code == 200
    assert client.get("/tiles/solid/1/1/1.png").status_code == 200


def test_jsonp_wraps_json_with_a_valid_callback(client: Client) -> None:
    response = client.get("/tiles/points/1/0/1.json?callback=map.show_1")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/javascript; charset=utf-8"
    assert response.content == b'map.show_1({"z": 1, "x": 0, "y": 1})'


@pytest.mark.parametrize("callback", ["alert(1)//", "a b", "1abc", "x" * 200, "<script>", "é"])
def test_jsonp_rejects_callbacks_that_are_not_identifiers(client: Client, callback: str) -> None:
    response = client.get("/tiles/points/1/0/1.json", {"callback": callback})
    assert response.status_code == 400
    assert callback.encode() not in response.content


def test_plain_json_without_callback(client: Client) -> None:
    response = client.get("/tiles/points/1/0/1.json")
    assert response["Content-Type"] == "application/json"
    assert response.content == b'{"z": 1, "x": 0, "y": 1}'


def test_head_has_the_get_headers_and_no_body(client: Client) -> None:
    get = client.get("/tiles/solid/3/1/1.png")
    head = client.head("/tiles/solid/3/1/1.png")
    assert head.status_code == 200
    assert head.content == b""
    assert head["Content-Length"] == get["Content-Length"] == str(len(get.content))
    assert head["Content-Type"] == get["Content-Type"]


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch", "options"])
def test_other_methods_get_405_not_a_csrf_403(method: str, tile_client: Any) -> None:
    client = tile_client(enforce_csrf_checks=True)
    response = getattr(client, method)("/tiles/solid/1/0/0.png")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_provider_error_is_500_with_a_short_text_and_recorded(client: Client, caplog: Any) -> None:
    response = client.get("/tiles/broken/1/0/0.png")
    assert response.status_code == 500
    assert b"Traceback" not in response.content
    assert b"data source is down" not in response.content
    messages = recorded_messages()
    assert messages[-1].startswith("Error: the data source is down after ")
    assert messages[-1].endswith(" seconds")
    assert any(r.levelname == "ERROR" and r.exc_info for r in caplog.records)


def test_upstream_error_is_502(client: Client) -> None:
    assert client.get("/tiles/upstream/1/0/0.png").status_code == 502


def test_a_request_records_created_started_finished(client: Client) -> None:
    client.get("/tiles/nocache/1/0/0.png")
    client.get("/tiles/unknown/1/0/0.png")
    messages = recorded_messages()
    assert messages[0] == "Created"
    assert messages[1] == "Started /nocache/1/0/0.png"
    assert messages[2].startswith("Finished /nocache/1/0/0.png in ")
    assert messages[3:5] == ["Started /unknown/1/0/0.png", messages[4]]
    assert messages[4].startswith("Finished /unknown/1/0/0.png in ")
    assert messages.count("Created") == 1


def test_cold_tile_records_cache_lock_and_warm_tile_does_not(client: Client) -> None:
    path = cold_tile(20)
    client.get("/tiles" + path)
    cold = recorded_messages()
    assert cold[1:3] == [f"Started {path}", "Attempted cache lock"]
    assert cold[3].startswith("Got cache lock in ")
    client.get("/tiles" + path)
    warm = recorded_messages()[len(cold) :]
    assert warm[0] == f"Started {path}"
    assert warm[1].startswith(f"Finished {path} in ")
    assert len(warm) == 2


def test_long_and_control_character_paths_are_cut_and_escaped(client: Client) -> None:
    client.get("/tiles/" + "a" * 500 + "%0Aforged")
    started = recorded_messages()[1]
    assert started == "Started /" + "a" * 199 + "..."
    client.get("/tiles/x%0Ay/1/2/3.png")
    assert recorded_messages()[-2] == "Started /x\\x0ay/1/2/3.png"


def test_format_and_unassigned_characters_are_escaped_too(client: Client) -> None:
    # A right-to-left override would make the status line read "/xpng.exe/...".
    client.get("/tiles/x%E2%80%AEexe.png/1/2/3.png")
    assert recorded_messages()[1] == "Started /x\\u202eexe.png/1/2/3.png"
    client.get("/tiles/%CD%B8%C2%A0caf%C3%A9/1/2/3.png")  # unassigned, no-break space
    assert recorded_messages()[-2] == "Started /\\u0378\\xa0café/1/2/3.png"


def test_disabled_recording_serves_tiles_and_records_nothing(client: Client, settings: Any) -> None:
    settings.TILESTATUS = {**settings.TILESTATUS, "ENABLED": False}
    assert client.get("/tiles/solid/1/1/1.png").status_code == 200
    # Read while still disabled: changing the settings would drop whatever a
    # recorder had queued, and hide events that should never have been recorded.
    assert recorded_messages() == []
    # The same request with recording on is seen, so the read above can see one.
    settings.TILESTATUS = {**settings.TILESTATUS, "ENABLED": True}
    assert client.get("/tiles/solid/1/1/1.png").status_code == 200
    assert [message.split(" in ")[0] for message in recorded_messages()] == [
        "Created",
        "Started /solid/1/1/1.png",
        "Finished /solid/1/1/1.png",
    ]


def test_host_setting_names_the_process(client: Client, settings: Any) -> None:
    from django_tilestatus.status import get_recent

    settings.TILESTATUS = {**settings.TILESTATUS, "HOST": "tiles-7"}
    client.get("/tiles/solid/1/1/1.png")
    processes, _ = get_recent()
    assert [p.host for p in processes] == ["tiles-7"]


def test_tiles_stay_public_under_login_required_middleware(client: Client, settings: Any) -> None:
    pytest.importorskip("django.contrib.auth.middleware", reason="Django 5.1+")
    from django.contrib.auth import middleware

    if not hasattr(middleware, "LoginRequiredMiddleware"):
        pytest.skip("LoginRequiredMiddleware is new in Django 5.1")
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]
    assert client.get("/tiles/solid/1/1/1.png").status_code == 200
    assert client.get("/tiles/status/").status_code == 302

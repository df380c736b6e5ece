"""The tile view returns what TileStache's own request handler returns for the same request."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from django_tilestatus.tilestache import build_configuration, import_tilestache


@pytest.fixture(scope="module")
def tilestache_answer() -> Any:
    """``requestHandler2`` on its own copy of the config, bodies as bytes."""
    ts = import_tilestache()
    config = build_configuration(settings.TILESTACHE_CONFIG)

    def answer(path: str, query: str = "") -> tuple[int, dict[str, str], bytes]:
        with warnings.catch_warnings():
            # TileStache dates Expires with datetime.utcnow(), deprecated on 3.12+.
            warnings.simplefilter("ignore", DeprecationWarning)
            status, headers, body = ts.requestHandler2(config, path, query, "/tiles")
        body = body.encode("utf-8") if isinstance(body, str) else body
        return status, dict(headers.items()), body

    return answer


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/solid/0/0/0.png", ""),
        ("/solid/5/17/9.png", ""),
        ("/nocache/2/1/3.png", ""),
        ("/solid/preview.html", ""),
        ("/solid/", ""),
        ("/solid/3/2/1.jpeg", ""),
        ("/solid/3/2/1.jpeg", "a=1&b=2"),
        ("/points/2/1/1.json", ""),
    ],
)
def test_same_status_type_body_and_headers(tilestache_answer: Any, path: str, query: str) -> None:
    status, headers, body = tilestache_answer(path, query)
    response = Client().get("/tiles" + path, QUERY_STRING=query)
    assert response.status_code == status
    assert response["Content-Type"] == headers["Content-Type"]
    assert response.content == body
    for name in ("Location", "Access-Control-Allow-Origin", "Cache-Control"):
        assert response.get(name) == headers.get(name), name
    assert ("Expires" in response) == ("Expires" in headers)

"""The metrics endpoint's access and formats, and the settings' checks."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from .support.status import flush_events
from .test_status_page import NEVER_CACHED, client_for

pytestmark = pytest.mark.django_db

URL = "/tiles/metrics"
TOKEN = "t" * 40


@pytest.fixture
def with_token(settings: Any) -> str:
    settings.TILESTATUS = {**settings.TILESTATUS, "METRICS_TOKEN": TOKEN}
    return TOKEN


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_the_token_opens_the_metrics_and_they_count_what_was_served(
    client: Client, with_token: str
) -> None:
    for _ in range(3):
        assert client.get("/tiles/solid/3/1/2.png").status_code == 200
    assert client.get("/tiles/nowhere/3/1/2.png").status_code == 404
    flush_events()
    response = client.get(URL, headers={"Authorization": f"Bearer {with_token}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert set(response["Cache-Control"].replace(" ", "").split(",")) >= NEVER_CACHED
    found = samples(response.content)
    requests = {
        labels: value
        for (name, labels), value in found.items()
        if name == "tilestatus_tile_requests_total"
    }
    assert sum(v for labels, v in requests.items() if ("layer", "solid") in labels) == 3
    assert requests[(("layer", "(other)"), ("outcome", "client_error"), ("zoom", "none"))] == 1
    count = {
        labels: value
        for (name, labels), value in found.items()
        if name == "tilestatus_tile_response_seconds_count"
    }
    assert sum(v for labels, v in count.items() if ("layer", "solid") in labels) == 3
    idle = [
        v
        for (name, labels), v in found.items()
        if name == "tilestatus_processes" and ("state", "idle") in labels
    ]
    assert idle == [1]


def test_openmetrics_when_the_scraper_asks(client: Client, with_token: str) -> None:
    response = client.get(
        URL,
        headers={
            "Authorization": f"Bearer {with_token}",
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        },
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert response.content.endswith(b"# EOF\n")


@pytest.mark.parametrize(
    ("kind", "authorization", "status"),
    [
        ("anonymous", None, 401),
        ("anonymous", "Bearer " + "x" * 40, 403),
        ("anonymous", f"Basic {TOKEN}", 401),
        ("anonymous", "Bearer ", 403),
        ("non-staff", None, 403),
        ("inactive staff", None, 401),  # logged out by the session's check
        ("staff", None, 200),
        ("non-staff", f"Bearer {TOKEN}", 200),
    ],
)
def test_only_the_token_or_a_staff_session_sees_figures(
    django_user_model: Any, with_token: str, kind: str, authorization: str | None, status: int
) -> None:
    client = client_for(django_user_model, kind)
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(URL, headers=headers)
    assert response.status_code == status
    assert set(response["Cache-Control"].replace(" ", "").split(",")) >= NEVER_CACHED
    if status != 200:
        assert b"tilestatus_" not in response.content
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_without_a_token_setting_no_bearer_is_accepted(client: Client) -> None:
    assert client.get(URL, headers={"Authorization": "Bearer "}).status_code == 403
    assert client.get(URL, headers={"Authorization": "Bearer None"}).status_code == 403


def test_metrics_refuse_writes(client: Client, with_token: str) -> None:
    headers = {"Authorization": f"Bearer {with_token}"}
    assert client.post(URL, headers=headers).status_code == 405
    head = client.head(URL, headers=headers)
    assert head.status_code == 200 and head.content == b"" and int(head["Content-Length"]) > 0


@pytest.mark.parametrize("token", ["short", 12345, " " + "t" * 40])
def test_a_weak_metrics_token_is_an_error(settings: Any, token: Any) -> None:
    settings.TILESTATUS = {**settings.TILESTATUS, "METRICS_TOKEN": token}
    assert "tilestatus.E008" in [message.id for message in run_checks()]


def test_a_short_token_opens_nothing(client: Client, settings: Any) -> None:
    settings.TILESTATUS = {**settings.TILESTATUS, "METRICS_TOKEN": "short"}
    assert client.get(URL, headers={"Authorization": "Bearer short"}).status_code == 403


def test_a_good_token_passes_the_checks(settings: Any, with_token: str) -> None:
    assert not [m for m in run_checks() if m.id.startswith("tilestatus.")]


@pytest.mark.parametrize("name", ["status", "metrics"])
def test_a_layer_cannot_take_the_name_of_a_page(settings: Any, name: str) -> None:
    config = dict(settings.TILESTATUS["CONFIG"])
    config["layers"] = {**config["layers"], name: config["layers"]["solid"]}
    settings.TILESTATUS = {**settings.TILESTATUS, "CONFIG": config}
    errors = [message for message in run_checks() if message.id == "tilestatus.E009"]
    assert len(errors) == 1 and repr(name) in errors[0].msg

"""Hostile tile paths on the status page: escaped in HTML, valid in JSON, harmless in text."""

from __future__ import annotations

import json
import urllib.parse
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from django_tilestatus.recording.vocabulary import path_label

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.redis,
    pytest.mark.django_db,
    pytest.mark.timeout(300),
]

#: Paths under the include that the app answers with other views than the tile view.
NOT_TILES = ("status", "metrics")

payloads = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=400),
    st.sampled_from(
        [
            "<script>alert(1)</script>",
            '"><img src=x onerror=alert(1)>',
            "&amp;&lt;",
            "{{ request }}",
            "{% debug %}",
            "\u202eexe.png",
            "a\nb\rc\x00d",
            "'; --",
            "</textarea><svg/onload=alert(1)>",
            "\\u003cscript\\u003e",
        ]
    ),
)


def test_every_payload_is_escaped_in_html_valid_in_json_and_plain_in_text(
    figures: dict, use_real_redis: str
) -> None:
    # On the real Redis: what a site stores is what its page shows, and each page's
    # pipelines cost a round trip there instead of fakeredis's Python per command.
    staff = Client()
    staff.force_login(
        get_user_model().objects.create_user(f"s-{uuid.uuid4().hex[:6]}", is_staff=True)
    )
    anyone = Client()
    url = reverse("tilestatus:status")
    seen = {"examples": 0}

    @hypothesis_settings(
        max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(payload=payloads)
    def check(payload: str) -> None:
        # The app's own pages under the include are not tiles: nothing is recorded for them.
        assume(payload.rstrip("/") not in NOT_TILES)
        anyone.get("/tiles/" + urllib.parse.quote(payload, safe=""))
        message = "Started " + path_label(payload)
        seen["examples"] += 1

        html = staff.get(url).content.decode()
        assert escape(message) in html
        if any(c in message for c in "<>\"'&"):
            assert message not in html.replace(escape(message), "")

        data = json.loads(staff.get(url + "?format=json").content)
        assert message in [m["message"] for m in data["messages"]]

        text = staff.get(url + "?format=text")
        assert text["Content-Type"].startswith("text/plain")
        assert text["X-Content-Type-Options"] == "nosniff"
        body = text.content.decode()
        assert message in body
        assert all(c.isprintable() or c == "\n" for c in body)

    check()
    figures.update(seen)

"""A known mix of tile requests, counted alike by the page, the JSON, tilestatus_top and a
real Prometheus scraping the example project (gunicorn, two workers, a real Redis).

Prometheus is Debian's package (``/usr/bin/prometheus``, ``/usr/bin/promtool``),
which ``.ci/run`` installs; without it these tests skip, except under CI.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from .support import ROOT, free_port, wait_until
from .support.example_project import STAFF_PASSWORD as PASSWORD
from .support.example_project import STAFF_USERNAME as USERNAME
from .support.gunicorn import GunicornServer
from .support.real_redis import IN_CI, REAL_REDIS_URL

pytestmark = [pytest.mark.redis, pytest.mark.e2e, pytest.mark.timeout(300)]

TOKEN = "metrics-test-token-" + "x" * 24
RULES = ROOT / "docs" / "alerting-rules.yml"
T = TypeVar("T")

#: The known mix: layer -> outcome -> requests (zoom 12 tiles, each cold at first).
RENDERS = {"demo": 6, "streets": 4}
HITS = {"demo": 5, "streets": 3}  # the first tiles of each layer asked again
BAD_PATHS = {"demo": 2}  # 400: a zoom that is not a number
UNKNOWN_LAYER = 3  # 404, counted under the layer "(other)"
EXPECTED = {
    ("demo", "rendered"): 6,
    ("demo", "hit"): 5,
    ("demo", "client_error"): 2,
    ("streets", "rendered"): 4,
    ("streets", "hit"): 3,
    ("(other)", "client_error"): 3,
}


def tool(name: str) -> str:
    path = shutil.which(name) or f"/usr/bin/{name}"
    if not os.access(path, os.X_OK):
        message = f"{name} is not installed (apt-get install prometheus)"
        if IN_CI:
            pytest.fail(message + "; .ci/run installs it")
        pytest.skip(message)
    return path


def poll(what: str, probe: Callable[[], T | None], seconds: float = 60.0) -> T:
    """``probe()`` once it is not None (a server not up yet counts as not yet)."""
    return wait_until(probe, seconds, interval=0.2, what=what, ignore=(OSError, ValueError))


def get(url: str, headers: dict[str, str] | None = None, opener: Any = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "example_project/manage.py", *args],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "example_project.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def example_env(
    real_redis: Any, real_prefix: str, tmp_path: Path, example_database: Path
) -> dict[str, str]:
    """Two layers, a tile cache and a database of the test's own, a staff user, the token."""
    config = {
        "cache": {"name": "Disk", "path": str(tmp_path / "tiles")},
        "layers": {
            name: {"provider": {"class": "example_project.demo_provider:DemoProvider"}}
            for name in RENDERS
        },
    }
    (tmp_path / "tilestache.cfg").write_text(json.dumps(config))
    env = {
        "TILESTATUS_REDIS_URL": REAL_REDIS_URL,
        "TILESTATUS_KEY_PREFIX": real_prefix,
        "TILESTATUS_CONFIG": str(tmp_path / "tilestache.cfg"),
        "TILESTATUS_METRICS_TOKEN": TOKEN,
        "DJANGO_SQLITE_PATH": str(example_database),
        "DJANGO_DEBUG": "0",
    }
    return env


@pytest.fixture
def served(example_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """The example project with the known mix of requests made; yields its base URL."""
    with GunicornServer(example_env, tmp_path / "gunicorn.log", workers=2) as server:
        base = server.base
        paths = []
        for layer, count in RENDERS.items():
            paths += [f"/tiles/{layer}/12/{x}/7.png" for x in range(count)]
        for layer, count in HITS.items():
            paths += [f"/tiles/{layer}/12/{x}/7.png" for x in range(count)]
        for layer, count in BAD_PATHS.items():
            paths += [f"/tiles/{layer}/zz/{x}/7.png" for x in range(count)]
        paths += [f"/tiles/nowhere/12/{x}/7.png" for x in range(UNKNOWN_LAYER)]
        statuses = [get(base + path)[0] for path in paths]
        assert statuses.count(200) == sum(RENDERS.values()) + sum(HITS.values())
        assert statuses.count(400) == sum(BAD_PATHS.values())
        assert statuses.count(404) == UNKNOWN_LAYER
        yield base


@pytest.fixture
def prometheus(served: str, tmp_path: Path) -> Iterator[str]:
    """Debian's Prometheus scraping the metrics every second, with the token and without."""
    target = urllib.parse.urlsplit(served).netloc
    config = f"""
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: tiles
    metrics_path: /tiles/metrics
    authorization: {{type: Bearer, credentials: {TOKEN}}}
    static_configs: [{{targets: ['{target}']}}]
  - job_name: tiles-without-token
    metrics_path: /tiles/metrics
    static_configs: [{{targets: ['{target}']}}]
"""
    (tmp_path / "prometheus.yml").write_text(config)
    port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def query(prometheus: str, expression: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    status, body = get(url)
    answer = json.loads(body)
    assert status == 200 and answer["status"] == "success", answer
    return list(answer["data"]["result"])


def by_layer_and_outcome(result: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    return {
        (item["metric"]["layer"], item["metric"]["outcome"]): int(float(item["value"][1]))
        for item in result
        if item["metric"]["layer"] != "(other)" or item["metric"]["outcome"] != "rendered"
    }  # (other) rendered: the launcher's polls of the tile index, not part of the mix


def test_prometheus_scrapes_the_known_mix_with_the_token(
    prometheus: str, served: str, tmp_path: Path
) -> None:
    def totals(expression: str) -> dict[tuple[str, str], int] | None:
        found = by_layer_and_outcome(query(prometheus, expression))
        return found if found == EXPECTED else None

    poll(
        "requests total by layer and outcome",
        lambda: totals("sum by (layer, outcome) (tilestatus_tile_requests_total)"),
    )
    poll(
        "histogram count by layer and outcome",
        lambda: totals("sum by (layer, outcome) (tilestatus_tile_response_seconds_count)"),
    )
    # The process gauges come from the status report: the workers that served, idle now.
    idle = query(prometheus, 'sum(tilestatus_processes{state="idle"})')
    assert 1 <= int(float(idle[0]["value"][1])) <= 2

    def refused() -> str | None:
        _, body = get(f"{prometheus}/api/v1/targets")
        for target in json.loads(body)["data"]["activeTargets"]:
            if target["labels"]["job"] == "tiles-without-token" and target["lastError"]:
                return str(target["lastError"])
        return None

    assert "401" in poll("the scrape without the token being refused", refused)
    assert query(prometheus, 'up{job="tiles-without-token"}')[0]["value"][1] == "0"


def test_the_exposition_passes_promtool_and_refuses_the_wrong_token(served: str) -> None:
    hits = b'tilestatus_tile_requests_total{layer="demo",outcome="hit",zoom="12"} 5.0'

    def exposition() -> bytes | None:
        status, body = get(served + "/tiles/metrics", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200
        return body if hits in body else None  # once the writers have sent their counts

    body = poll("the hits reaching the metrics", exposition, seconds=30)
    checked = subprocess.run(
        [tool("promtool"), "check", "metrics"], input=body, capture_output=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    for headers, expected in [({}, 401), ({"Authorization": "Bearer " + "y" * 43}, 403)]:
        status, body = get(served + "/tiles/metrics", headers)
        assert status == expected and b"tilestatus_" not in body


def staff_opener(base: str) -> Any:
    """An opener holding a staff session, logged in through the admin's form."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    _, form = get(base + "/admin/login/", opener=opener)
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert match is not None
    data = urllib.parse.urlencode(
        {
            "csrfmiddlewaretoken": match.group(1).decode(),
            "username": USERNAME,
            "password": PASSWORD,
            "next": "/tiles/status/",
        }
    ).encode()
    request = urllib.request.Request(
        base + "/admin/login/", data=data, headers={"Referer": base + "/admin/login/"}
    )
    with opener.open(request, timeout=30) as response:
        assert response.url.endswith("/tiles/status/")
    return opener


def test_the_page_the_json_and_tilestatus_top_show_the_same_counts(
    served: str, example_env: dict[str, str]
) -> None:
    opener = staff_opener(served)

    def tiles() -> dict[str, Any] | None:
        _, body = get(served + "/tiles/status/?format=json", opener=opener)
        data = json.loads(body)["tiles"]
        hour = {layer["layer"]: layer["windows"][-1] for layer in data["layers"]}
        done = sum(figures["requests"] for name, figures in hour.items() if name != "(other)")
        return data if done == sum(RENDERS.values()) + sum(HITS.values()) + 2 else None

    data = poll("the statistics reaching Redis", tiles, seconds=30)
    hour = {layer["layer"]: layer["windows"][-1] for layer in data["layers"]}
    for layer in RENDERS:
        assert hour[layer]["rendered"] == RENDERS[layer]
        assert hour[layer]["hits"] == HITS[layer]
        assert hour[layer]["client_errors"] == BAD_PATHS.get(layer, 0)
        ratio = HITS[layer] / (HITS[layer] + RENDERS[layer])
        assert hour[layer]["hit_ratio_text"] == f"{ratio * 100:.0f} %"
    assert hour["(other)"]["client_errors"] == UNKNOWN_LAYER
    assert len(data["slowest"]) == 10
    assert all(slow["url"].startswith("/tiles/") for slow in data["slowest"])

    # The page: the Tiles section, with the same figures.
    status, html = get(served + "/tiles/status/", opener=opener)
    assert status == 200
    section = html.decode().split('id="tilestatus-tiles"', 1)[1]
    for layer in RENDERS:
        row = re.search(
            rf'data-layer="{layer}" data-minutes="60">.*?class="tilestatus-requests">(\d+)<',
            section,
            re.S,
        )
        assert row is not None
        assert int(row.group(1)) == RENDERS[layer] + HITS[layer] + BAD_PATHS.get(layer, 0)
    assert "<svg" in section and "<polyline" in section

    # The terminal view: one screen, 80 columns, the same hit ratios.
    top = manage(example_env, "tilestatus_top", "--once")
    assert top.returncode == 0, top.stderr
    lines = top.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    assert re.search(r"\b[12] idle\b", lines[0])  # the workers that served
    for layer in RENDERS:
        hour_line = next(line for line in lines if line.startswith(layer) and " 60m " in line)
        assert f"{HITS[layer] / (HITS[layer] + RENDERS[layer]) * 100:.0f} %" in hour_line


def test_the_shipped_alerting_rules_pass_promtool() -> None:
    checked = subprocess.run(
        [tool("promtool"), "check", "rules", str(RULES)], capture_output=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert b"SUCCESS: 2 rules found" in checked.stdout
    # docs/metrics.md shows the very rules that were checked.
    assert RULES.read_text() in (ROOT / "docs" / "metrics.md").read_text()

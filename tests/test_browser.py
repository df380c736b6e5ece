"""A staff user in headless Chromium: admin login, "Tile status", live updates, a screenshot.

The example project runs under gunicorn with two workers on the real Redis,
with a database of its own. Chromium is Debian's (/usr/bin/chromium), driven
by Playwright's Python package; no browser is downloaded. Set
``TILESTATUS_UPDATE_SCREENSHOT=1`` to copy the screenshot to docs/.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from django_tilestatus.inflight import Request
from django_tilestatus.store import InFlightUpdate, RedisStore

from .conftest import IN_CI, REAL_REDIS_URL
from .servers import ROOT, gunicorn

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("TILESTATUS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "tests" / "artifacts"
USERNAME, PASSWORD = "browser-staff", "a-long-test-only-password"
HOSTILE = "<img src=x onerror=alert(1)>"
#: Milliseconds Playwright waits for something to appear: several refreshes.
PATIENCE = 20_000


def require(condition: bool, reason: str) -> None:
    """Skip without a browser, except under CI, where the test must run."""
    if not condition:
        if IN_CI:
            pytest.fail(reason + " (CI must run the browser test; .ci/run installs chromium)")
        pytest.skip(reason)


@pytest.fixture
def sync_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "Playwright is not installed (pip install -e '.[test]')")
    require(os.access(CHROMIUM, os.X_OK), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return sync_playwright


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "example_project/manage.py", *args],
        cwd=ROOT,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "example_project.settings", **env},
        capture_output=True,
        timeout=120,
    )


@pytest.fixture
def example_env(real_redis: Any, real_prefix: str, tmp_path: Path) -> dict[str, str]:
    """The example project on the real Redis, with a staff user in a database of its own."""
    env = {
        "TILESTATUS_REDIS_URL": REAL_REDIS_URL,
        "TILESTATUS_KEY_PREFIX": real_prefix,
        "DJANGO_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        "DJANGO_DEBUG": "0",
    }
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    create = (
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.create_user({USERNAME!r}, password={PASSWORD!r}, is_staff=True)"
    )
    manage(env, "shell", "--verbosity", "0", "-c", create)
    return env


@pytest.fixture
def served(example_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    try:
        with gunicorn(example_env, workers=2, log=tmp_path / "gunicorn.log") as base:
            yield base
    finally:
        shutil.rmtree(ROOT / "example_project" / "var" / "tiles" / "demo" / "9", ignore_errors=True)


def fetch(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def fetch_unfollowed(url: str) -> tuple[int, str, bytes]:
    """Status, Location and body of ``url``, without following a redirect."""
    try:
        with urllib.request.build_opener(_NoRedirects).open(url, timeout=30) as response:
            return int(response.status), response.headers.get("Location", ""), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.headers.get("Location", ""), error.read()


def request_tiles(base: str, count: int, first: int = 0) -> None:
    """Cold tiles from several threads, so both workers serve some."""
    urls = [f"{base}/tiles/demo/9/{x}/{(x * 7) % 512}.png" for x in range(first, first + count)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        assert set(pool.map(fetch, urls)) == {200}


@pytest.fixture
def browser(sync_playwright: Any) -> Iterator[Any]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.mark.e2e
@pytest.mark.redis
def test_staff_follow_the_admin_link_and_watch_events_arrive(
    browser: Any, served: str, real_redis: Any, real_prefix: str
) -> None:
    base = served
    for query in ("", "?format=json", "?format=text"):
        status, location, body = fetch_unfollowed(base + "/tiles/status/" + query)
        assert status == 302 and body == b""
        assert location == "/admin/login/?next=" + urllib.parse.quote("/tiles/status/" + query)
    request_tiles(base, 40)
    assert fetch(base + "/tiles/demo/9/1/" + urllib.request.quote(HOSTILE) + ".png") == 400
    # A worker of another host, stuck on one tile for 25 seconds: the page
    # must single it out.
    stuck = Request(7, "/demo/12/2103/1361.png", time.time() - 25)
    stuck.set_phase("render")
    stuck.stack = [["/srv/tiles/provider.py", 42, "render_slowly", "time.sleep(60)  # <b>"]]
    RedisStore(real_redis, prefix=real_prefix).write(
        "tiles-2",
        4321,
        [(time.time() - 25, "Started /demo/12/2103/1361.png")],
        InFlightUpdate(set={"7": stuck.encode()}, oldest=stuck.started),
    )

    dialogs: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(base + "/admin/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(base + "/admin/")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-index.png"))
    link = page.get_by_role("link", name="Tile status")
    assert link.get_attribute("href") == "/tiles/status/"
    link.click()
    page.wait_for_url(base + "/tiles/status/")
    assert page.title().startswith("Tile status")

    workers = page.locator(f'#tilestatus-processes tr[data-host="{socket.gethostname()}"]')
    assert workers.count() == 2  # both gunicorn workers
    assert page.locator('#tilestatus-processes tr[data-host="tiles-2"]').count() == 1
    slow = page.locator("#tilestatus-processes tr.tilestatus-slow")
    assert slow.count() == 1
    assert "busy on /demo/12/2103/1361.png for" in slow.inner_text()
    assert "/demo/12/2103/1361.png, rendering for" in slow.inner_text()
    stack = slow.locator("details.tilestatus-stack")
    assert not stack.get_attribute("open") and not stack.locator("pre").is_visible()
    stack.locator("summary").click()
    assert 'File "/srv/tiles/provider.py", line 42, in render_slowly' in stack.inner_text()
    assert "time.sleep(60)  # <b>" in stack.locator("pre").inner_text()  # escaped text
    for pid in [row.get_attribute("data-pid") for row in workers.all()]:
        assert page.locator("#tilestatus-messages li", has_text=f"{pid} Finished /demo/9/").count()
    assert page.locator("#tilestatus-messages", has_text=HOSTILE).count() == 1
    assert page.locator("#tilestatus img").count() == 0

    # The same session gets the other two formats.
    data = page.request.get(base + "/tiles/status/?format=json").json()
    assert {(p["host"], p["pid"]) for p in data["processes"]} >= {("tiles-2", 4321)}
    text = page.request.get(base + "/tiles/status/?format=text")
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    stamp, dashes, *lines = text.text().splitlines()
    assert stamp.isdigit() and dashes == "-" * 10
    assert lines[: len(data["processes"])][-1].startswith(f"{len(data['processes']):3d}. ")

    # New events appear without a reload.
    page.evaluate("window.notReloaded = true")
    request_tiles(base, 3, first=100)
    fresh = page.locator("#tilestatus-messages li", has_text="Finished /demo/9/102/")
    fresh.first.wait_for(timeout=PATIENCE)
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#tilestatus-live").inner_text() == "Live"
    # The stack opened before the refresh stays open after it.
    assert page.locator("#tilestatus-processes details.tilestatus-stack[open]").count() == 1

    # A worker killed after the page loaded shows as gone at a refresh, without a reload.
    victim = int(workers.first.get_attribute("data-pid") or 0)
    assert victim > 0
    os.kill(victim, signal.SIGKILL)
    page.locator(f'#tilestatus-processes tr.tilestatus-gone[data-pid="{victim}"]').wait_for(
        timeout=PATIENCE
    )
    assert page.evaluate("window.notReloaded") is True

    # Paused, the page stops asking; resumed, it catches up.
    pause = page.locator("#tilestatus-pause")
    pause.click()
    assert pause.get_attribute("aria-pressed") == "true"
    request_tiles(base, 1, first=200)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.wait_for_timeout(4000)
    assert not [url for url in asked if "format=json" in url]
    pause.click()
    page.locator("#tilestatus-messages li", has_text="/demo/9/200/").first.wait_for(
        timeout=PATIENCE
    )
    page.locator("#tilestatus-processes tr.tilestatus-slow").wait_for(timeout=PATIENCE)

    shot = ARTIFACTS / "status-page.png"
    page.screenshot(path=str(shot), full_page=False)

    assert dialogs == []
    assert shot.stat().st_size > 10_000
    if os.environ.get("TILESTATUS_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "status-page.png")

"""A staff user in headless Chromium: admin login, "Tile status", live updates, a screenshot.

The example project runs under gunicorn with two workers on the real Redis,
with a database of its own. Chromium is Debian's (/usr/bin/chromium), driven
by Playwright's Python package; no browser is downloaded. Set
``TILESTATUS_UPDATE_SCREENSHOT=1`` to copy the screenshot to docs/.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from django_tilestatus.recording.inflight import Request
from django_tilestatus.storage import InFlightUpdate, RedisStore

from .support import ROOT, wait_until
from .support.example_project import STAFF_PASSWORD as PASSWORD
from .support.example_project import STAFF_USERNAME as USERNAME
from .support.example_project import write_tilestache_config
from .support.gunicorn import GunicornServer
from .support.http import request
from .support.real_redis import REAL_REDIS_URL, require

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
HOSTILE = "<img src=x onerror=alert(1)>"
#: Milliseconds Playwright waits for something to appear: several refreshes.
PATIENCE = 20_000


@pytest.fixture
def expect() -> Any:
    try:
        from playwright.sync_api import expect
    except ImportError:
        require(False, "Playwright is not installed (pip install -e '.[test]')")
    return expect


@pytest.fixture
def sync_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "Playwright is not installed (pip install --group pyproject.toml:test)")
    require(
        os.access(CHROMIUM, os.X_OK),
        f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)",
    )
    return sync_playwright


@pytest.fixture
def example_env(real_redis: Any, real_prefix: str, example_database: Path) -> dict[str, str]:
    """The example project on the real Redis, with a staff user in a database of its own."""
    return {
        "TILESTATUS_REDIS_URL": REAL_REDIS_URL,
        "TILESTATUS_KEY_PREFIX": real_prefix,
        "DJANGO_SQLITE_PATH": str(example_database),
        "DJANGO_DEBUG": "0",
    }


@pytest.fixture
def served(example_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    # A tile cache of its own: its tiles are cold, whatever another test served.
    env = {**example_env, "TILESTATUS_CONFIG": str(write_tilestache_config(tmp_path))}
    with GunicornServer(env, tmp_path / "gunicorn.log", workers=2) as server:
        yield server.base


def request_tiles(base: str, count: int, first: int = 0) -> None:
    """Cold tiles from several threads, so both workers serve some."""
    paths = [f"/tiles/demo/9/{x}/{(x * 7) % 512}.png" for x in range(first, first + count)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        assert {a.status for a in pool.map(lambda p: request(base, p, timeout=30), paths)} == {200}


def serve_until_both_workers_recorded(base: str, store: RedisStore) -> set[int]:
    """Cold tiles until both gunicorn workers of this host are in the registry.

    Which worker accepts a connection is up to the kernel, and a worker's
    events reach Redis a moment after its answer: poll, with a deadline.
    """
    batches = itertools.count(400, 6)
    last_batch = [time.monotonic()]

    def both_recorded() -> set[int] | None:
        pids = {pid for host, pid, _ in store.registry().entries if host == socket.gethostname()}
        if len(pids) >= 2:
            return pids
        if time.monotonic() - last_batch[0] > 2:  # a writer sends within a second
            request_tiles(base, 6, first=next(batches))
            last_batch[0] = time.monotonic()
        return None

    return wait_until(both_recorded, 60, what="both gunicorn workers recording a request")


def sign_in(page: Any, base: str) -> None:
    page.goto(base + "/admin/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(base + "/admin/")


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
    browser: Any, expect: Any, served: str, real_redis: Any, real_prefix: str
) -> None:
    base = served
    for query in ("", "?format=json", "?format=text"):
        answer = request(base, "/tiles/status/" + query)
        assert answer.status == 302 and answer.body == b""
        assert answer.headers["location"] == "/admin/login/?next=" + urllib.parse.quote(
            "/tiles/status/" + query
        )
    request_tiles(base, 40)
    store = RedisStore(real_redis, prefix=real_prefix)
    serve_until_both_workers_recorded(base, store)
    # Last, so no later request pushes it out of its worker's KEEP newest messages.
    assert request(base, "/tiles/demo/9/1/" + urllib.parse.quote(HOSTILE) + ".png").status == 400
    # A worker of another host, stuck on one tile for 25 seconds: the page
    # must single it out.
    stuck = Request(7, "/demo/12/2103/1361.png", time.time() - 25)
    stuck.set_phase("render")
    # A deep stack with long lines, the innermost (the useful) frame last.
    outer = [
        [
            f"/srv/tiles/a/very/long/path/to/a/module/number_{n}/of/the/tile/server.py",
            n,
            f"f{n}",
            "x = f()" * 12,
        ]
        for n in range(39)
    ]
    stuck.stack = [*outer, ["/srv/tiles/provider.py", 42, "render_slowly", "time.sleep(60)  # <b>"]]
    store.write(
        "tiles-2",
        4321,
        [(time.time() - 25, "Started /demo/12/2103/1361.png")],
        InFlightUpdate(set={"7": stuck.encode()}, oldest=stuck.started),
    )

    dialogs: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    sign_in(page, base)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-index.png"))
    link = page.get_by_role("link", name="Tile status")
    assert link.get_attribute("href") == "/tiles/status/"
    link.click()
    page.wait_for_url(base + "/tiles/status/")
    assert page.title().startswith("Tile status")

    # The workers' writers may still be sending their last events: what the page
    # shows is awaited (it refreshes itself), not read once.
    workers = page.locator(f'#tilestatus-processes tr[data-host="{socket.gethostname()}"]')
    expect(workers).to_have_count(2, timeout=PATIENCE)  # both gunicorn workers
    expect(page.locator('#tilestatus-processes tr[data-host="tiles-2"]')).to_have_count(1)
    slow = page.locator("#tilestatus-processes tr.tilestatus-slow")
    expect(slow).to_have_count(1)
    expect(slow).to_contain_text("busy on /demo/12/2103/1361.png for")
    expect(slow).to_contain_text("/demo/12/2103/1361.png, rendering for")
    stack = slow.locator("details.tilestatus-stack")
    assert not stack.get_attribute("open") and not stack.locator("pre").is_visible()
    table = page.locator("#tilestatus-processes")
    width = (table.bounding_box() or {})["width"]
    stack.locator("summary").click()
    assert 'File "/srv/tiles/provider.py", line 42, in render_slowly' in stack.inner_text()
    assert "time.sleep(60)  # <b>" in stack.locator("pre").inner_text()  # escaped text
    # Open, the deep stack neither widens the table (Last seen stays in view) nor hides
    # its innermost frame at the bottom of its scroll box.
    assert (table.bounding_box() or {})["width"] <= width + 1
    assert slow.locator(".tilestatus-ago").is_visible()
    ago = slow.locator(".tilestatus-ago").bounding_box() or {}
    assert ago["x"] + ago["width"] <= 1280
    innermost_in_view = stack.locator("pre").evaluate(
        """pre => {
            const text = pre.querySelector("code").firstChild;
            const at = text.data.lastIndexOf("render_slowly");
            const range = document.createRange();
            range.setStart(text, at);
            range.setEnd(text, at + "render_slowly".length);
            const word = range.getBoundingClientRect(), box = pre.getBoundingClientRect();
            return word.top >= box.top && word.bottom <= box.bottom;
        }"""
    )
    assert innermost_in_view
    for pid in [row.get_attribute("data-pid") for row in workers.all()]:
        finished = page.locator("#tilestatus-messages li", has_text=f"{pid} Finished /demo/9/")
        expect(finished.first).to_be_visible(timeout=PATIENCE)
    expect(page.locator("#tilestatus-messages", has_text=HOSTILE)).to_have_count(1)
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


#: Computed styles of the admin's breadcrumbs bar and page heading, whatever their markup.
LOOK = """() => {
    const style = selector => {
        const element = document.querySelector(selector);
        if (!element) return null;
        const s = getComputedStyle(element);
        return {background: s.backgroundColor, color: s.color, fontSize: s.fontSize,
                padding: s.padding, display: s.display, listStyle: s.listStyleType};
    };
    return {breadcrumbs: style("nav .breadcrumbs"), heading: style("#content h1"),
            page: getComputedStyle(document.body).backgroundColor};
}"""

#: Elements sticking out of the viewport, unless inside a box that scrolls sideways
#: and itself fits; and whether the page itself scrolls sideways.
OVERFLOW = """() => {
    const width = document.documentElement.clientWidth;
    const fits = r => r.left >= -0.5 && r.right <= width + 0.5;
    const scroller = element => {
        for (let a = element.parentElement; a; a = a.parentElement) {
            const overflow = getComputedStyle(a).overflowX;
            if (overflow === "auto" || overflow === "scroll") return a;
        }
        return null;
    };
    const out = [];
    for (const element of document.body.querySelectorAll("*")) {
        const r = element.getBoundingClientRect();
        if ((!r.width && !r.height) || fits(r)) continue;
        const box = scroller(element);
        if (box && fits(box.getBoundingClientRect())) continue;
        out.push(`${element.tagName}#${element.id}.${element.className} ` +
                 `${Math.round(r.left)}..${Math.round(r.right)} of ${width}`);
    }
    return {out, pageWidth: document.documentElement.scrollWidth, width};
}"""

#: Words (letters and digits, not paths or other long tokens) drawn on more than one
#: line: a word broken inside itself.
SPLIT_WORDS = """() => {
    const word = /^[\\p{L}\\p{N}][\\p{L}\\p{N}'.,:;()-]*$/u;
    const split = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    let checked = 0;
    while (walker.nextNode()) {
        const node = walker.currentNode;
        const tokens = /\\S+/g;
        let match;
        while ((match = tokens.exec(node.textContent))) {
            if (!word.test(match[0])) continue;
            range.setStart(node, match.index);
            range.setEnd(node, match.index + match[0].length);
            const rects = [...range.getClientRects()].filter(r => r.width > 0 && r.height > 0);
            if (!rects.length) continue;
            checked += 1;
            if (new Set(rects.map(r => Math.round(r.top))).size > 1) split.push(match[0]);
        }
    }
    return {split, checked};
}"""


@pytest.mark.e2e
@pytest.mark.redis
def test_the_page_looks_like_the_admin_and_fits_a_phone(
    browser: Any, expect: Any, served: str, real_redis: Any, real_prefix: str
) -> None:
    """Breadcrumbs and heading styled as on the admin's own pages of the running Django,
    in light and dark; at 390 px no word broken inside itself and nothing sticking out."""
    base = served
    store = RedisStore(real_redis, prefix=real_prefix)
    request_tiles(base, 6, first=300)
    serve_until_both_workers_recorded(base, store)
    now = time.time()
    store.write("tiles-2", 4321, [(now - 25, "Started /demo/12/2103/1361.png")])
    store.write("tiles-2", 4322, [(now - 40, "Started /demo/1/0/0.png"), (now - 39, "Destroyed")])
    long_path = "/demo/19/" + "1" * 60 + "/" + "2" * 60 + ".png"
    store.write("tiles-3", 4323, [(now - 3, f"Finished {long_path} in 0.724 seconds")])
    store.write("tiles-3", 4324, [(now - 48, "Attempted cache lock")])

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, base)
    looks = {}
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for name, path in (("admin", "/admin/auth/user/"), ("status", "/tiles/status/")):
            page.goto(base + path)
            looks[scheme, name] = page.evaluate(LOOK)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"status-page-{scheme}.png"))
    for scheme in ("light", "dark"):
        admin, status = looks[scheme, "admin"], looks[scheme, "status"]
        assert admin["breadcrumbs"] and status["breadcrumbs"], looks
        assert admin["breadcrumbs"]["background"] not in ("rgba(0, 0, 0, 0)", "transparent")
        assert status["breadcrumbs"] == admin["breadcrumbs"], (scheme, looks)
        assert status["heading"] == admin["heading"], (scheme, looks)
    assert looks["light", "admin"]["page"] != looks["dark", "admin"]["page"]  # both were seen

    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(base + "/tiles/status/")
    gone_row = page.locator('#tilestatus-processes tr[data-pid="4322"]')
    expect(gone_row).to_have_count(1, timeout=PATIENCE)
    expect(page.locator('#tilestatus-processes tr[data-pid="4323"]')).to_have_count(1)
    for _ in range(2):  # as first served, and as the script redraws it
        overflow = page.evaluate(OVERFLOW)
        assert overflow["out"] == [], overflow
        assert overflow["pageWidth"] <= overflow["width"], overflow
        words = page.evaluate(SPLIT_WORDS)
        assert words["checked"] > 50 and words["split"] == [], words
        page.wait_for_function("document.querySelector('#tilestatus-live').textContent")
        page.locator("#tilestatus-read-at").evaluate("e => (e.dataset.seen = e.textContent)")
        page.wait_for_function(
            "(() => { const e = document.querySelector('#tilestatus-read-at');"
            " return e.textContent !== e.dataset.seen; })",
            timeout=PATIENCE,
        )
    page.screenshot(path=str(ARTIFACTS / "status-page-390.png"), full_page=True)


#: Seconds of sleep per tile of the seeding job the page watches: two processes do a
#: chunk (about 64 tiles) in a second or so, and the job's 21,845 tiles take minutes.
SEED_SECONDS_PER_TILE = 0.01


@pytest.mark.e2e
@pytest.mark.redis
@pytest.mark.timeout(300)
def test_staff_watch_a_seeding_job_progress_and_cancel_it(
    browser: Any,
    expect: Any,
    served: str,
    example_env: dict[str, str],
    real_redis: Any,
    tmp_path: Path,
) -> None:
    """A real ``tilestatus_seed --processes 2`` on the example project: its bar moves on the
    page without a reload, Cancel (a POST with the CSRF token) cancels it, and the
    seeding process and its workers stop with the cancelled exit status."""
    from django_tilestatus.seeding.jobs import CANCELLED, JobStore

    base = served
    renders = tmp_path / "seed-renders.log"
    renders.touch()
    config = {
        "cache": {"name": "Disk", "path": str(tmp_path / "seed-tiles"), "umask": "0022"},
        "layers": {
            "demo": {
                "provider": {
                    "class": "tests.providers:Counting",
                    "kwargs": {"log": str(renders), "seconds": SEED_SECONDS_PER_TILE},
                }
            }
        },
    }
    config_path = tmp_path / "seed.cfg"
    config_path.write_text(json.dumps(config))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "PYTHONPATH": str(ROOT),
        **example_env,
        "TILESTATUS_CONFIG": str(config_path),
    }
    output = tmp_path / "seed-output.log"
    with output.open("w") as out:
        seeding = subprocess.Popen(
            [sys.executable, "example_project/manage.py", "tilestatus_seed", "demo",
             "--zooms", "0-7", "--processes", "2", "--progress-every", "1"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        store = JobStore(real_redis, example_env["TILESTATUS_KEY_PREFIX"])
        job_id = str(
            wait_until(
                lambda: (jobs := store.recent()) and jobs[0].state == "running" and jobs[0].id,
                60,
                what=lambda: "the seeding job running: " + output.read_text(),
            )
        )

        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        sign_in(page, base)
        page.goto(base + "/tiles/status/")
        job = page.locator(f'#tilestatus-seeding li[data-job="{job_id}"]')
        expect(job).to_have_count(1, timeout=PATIENCE)
        expect(job).to_have_attribute("data-state", "running")
        bar = job.locator("progress.tilestatus-seeding-bar")
        assert int(bar.get_attribute("max") or 0) == 21845
        page.evaluate("window.notReloaded = true")

        # The bar and the figures move, read by the page's own refreshes.
        def progress() -> tuple[float, int]:
            value = float(bar.evaluate("bar => bar.value"))
            figures = job.locator(".tilestatus-seeding-figures").inner_text()
            return value, int(figures.split(": ", 1)[1].split(" rendered", 1)[0])

        first = progress()
        page.wait_for_function(
            f"""() => {{
                const bar = document.querySelector('li[data-job="{job_id}"] progress');
                return bar && bar.value > {first[0]} + 64;
            }}""",
            timeout=PATIENCE,
        )
        second = progress()
        assert second[0] > first[0] and second[1] > first[1], (first, second)
        page.wait_for_function(
            f"""() => document.querySelector('li[data-job="{job_id}"] progress').value
                      > {second[0]}""",
            timeout=PATIENCE,
        )
        assert progress()[1] > second[1]
        expect(job.locator(".tilestatus-seeding-workers")).to_contain_text(
            socket.gethostname(), timeout=PATIENCE
        )
        assert page.evaluate("window.notReloaded") is True
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "seeding-running.png"))

        # Cancel: the form's POST carries the CSRF token; the answer leads back to the page.
        cancel = job.locator("form.tilestatus-seeding-cancel")
        assert cancel.locator("input[name=csrfmiddlewaretoken]").count() == 1
        with page.expect_response(
            lambda answer: answer.request.method == "POST" and "/cancel" in answer.url
        ) as posted:
            cancel.locator("button").click()
        assert posted.value.status == 302
        page.wait_for_url(base + "/tiles/status/#tilestatus-seeding")
        job = page.locator(f'#tilestatus-seeding li[data-job="{job_id}"]')
        expect(job).to_have_attribute("data-state", CANCELLED, timeout=PATIENCE)
        expect(job.locator(".tilestatus-seeding-state")).to_have_text(CANCELLED)

        # The workers stop after their metatile; the command exits as cancelled.
        try:
            returncode = seeding.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the seeding process went on after Cancel: " + output.read_text())
        assert returncode == 4, output.read_text()
        assert f"Job {job_id} was cancelled." in output.read_text()
        rendered = renders.read_text().count("\n")
        assert 0 < rendered < 21845
        time.sleep(1.5)  # a worker left behind would still be drawing
        assert renders.read_text().count("\n") == rendered
        final = store.get(job_id)
        assert final is not None and final.state == CANCELLED
        assert final.chunks_done < final.chunks
        # The page, refreshed, shows nobody working on it and no Cancel any more.
        expect(job.locator(".tilestatus-seeding-workers")).to_contain_text(
            "working: none", timeout=PATIENCE
        )
        expect(job.locator("form.tilestatus-seeding-cancel")).to_have_count(0)
        page.screenshot(path=str(ARTIFACTS / "seeding-cancelled.png"))
        assert dialogs == []
    finally:
        if seeding.poll() is None:
            os.killpg(seeding.pid, signal.SIGKILL)
            seeding.wait(timeout=30)

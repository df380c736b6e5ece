"""Hostile tile paths, property-based: no 5xx, no file outside the cache, bounded messages.

In-process (fast, so many examples) through each way of serving tiles (Django,
the fast path's middleware, its WSGI wrapper: ``tile_client``), with a
Python audit hook that sees every file the request opens, creates, renames
or deletes; then a smaller run over real HTTP against gunicorn, checking the
filesystem from outside.
"""

from __future__ import annotations

import os
import string
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from django_tilestatus import runtime
from django_tilestatus.recording import vocabulary
from django_tilestatus.serving import tile_server as tiles
from django_tilestatus.status import get_recent

from ..support import ROOT
from ..support.http import raw_exchange, request

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

LAYERS = ["solid", "points", "nocache", "missing", "..", ".", "%2e%2e", "sol", "solid/..", ""]
EXTENSIONS = [
    "png",
    "PNG",
    "json",
    "html",
    "jpeg",
    "jpg",
    "gif",
    "",
    "png.",
    "p",
    "png%00",
    "png/../../x",
    "exe",
    "ph\u0070",
    "\u0000png",
]
SECRET = b"secret: never served"

# -- what a request may touch on disk ------------------------------------------

_watch = threading.local()
#: Audit events that write: (event name, index of the path argument).
WRITE_EVENTS = {
    "os.mkdir": 0,
    "os.remove": 0,
    "os.rmdir": 0,
    "os.rename": 0,
    "os.chmod": 0,
    "os.utime": 0,
    "os.truncate": 0,
    "os.symlink": 1,
    "os.link": 1,
    "shutil.rmtree": 0,
}


def _audit(event: str, args: tuple) -> None:
    touched = getattr(_watch, "touched", None)
    if touched is None:
        return
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        )
        touched.append(("write" if writing else "read", path))
    elif event in WRITE_EVENTS:
        touched.append(("write", args[WRITE_EVENTS[event]]))
        if event == "os.rename":
            touched.append(("write", args[1]))


_hook_installed = False


@contextmanager
def watch_files() -> Iterator[list[tuple[str, Any]]]:
    """Collect ``(read|write, path)`` for every file this thread touches meanwhile."""
    global _hook_installed
    if not _hook_installed:  # audit hooks cannot be removed; it does nothing unless watching
        sys.addaudithook(_audit)
        _hook_installed = True
    _watch.touched = touched = []
    try:
        yield touched
    finally:
        _watch.touched = None


def resolved(path: Any) -> Path | None:
    if isinstance(path, int):  # a file descriptor: its path was seen when it opened
        return None
    return Path(os.fsdecode(path)).resolve()


def is_inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


# -- strategies -----------------------------------------------------------------

numbers = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.text(alphabet=string.digits, min_size=300, max_size=6000),  # past int()'s 4,300 digits
    st.sampled_from(["00", "-0", "+1", "1e9", "0x10", "1.5", "", " 1", "\uff11", "\u0661"]),
)
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
small = st.integers(min_value=-3, max_value=40).map(str)
tile_paths = st.one_of(
    st.builds(
        lambda layer, z, x, y, e: f"{layer}/{z}/{x}/{y}.{e}",
        st.sampled_from(["solid", "points"]),
        small,
        small,
        small,
        st.sampled_from(["png", "json", "jpeg", "PNG"]),
    ),
    st.builds(
        lambda layer, z, x, y, e: f"{layer}/{z}/{x}/{y}.{e}",
        st.sampled_from(LAYERS) | any_text,
        numbers,
        numbers,
        numbers,
        st.sampled_from(EXTENSIONS) | any_text,
    ),
    any_text,
    st.text(st.characters(exclude_categories=("Cs",)), min_size=2000, max_size=20000),
    st.lists(
        st.sampled_from(
            [
                "..",
                "%2e%2e",
                "%2F",
                "secret.txt",
                "solid",
                "0",
                "/",
                "\\",
                "%00",
                "%252e",
                "preview.html",
            ]
        ),
        max_size=12,
    ).map("/".join),
    st.binary(max_size=200).map(lambda b: urllib.parse.quote(b, safe="/")),
)
callbacks = st.one_of(
    any_text,
    st.from_regex(tiles.CALLBACK_PATTERN, fullmatch=True),
    st.sampled_from(["alert(1)", "a;b", "</script>", "a.b.c", "$", "_x", "a" * 200, "1a", "a..b"]),
)
queries = st.one_of(
    st.just(""),
    callbacks.map(lambda c: "callback=" + urllib.parse.quote(c)),
    st.binary(max_size=100).map(lambda b: urllib.parse.quote(b, safe="=&")),
)


# -- in process -----------------------------------------------------------------


@pytest.fixture
def hostile_setup(settings: Any, tmp_path: Path) -> Path:
    """Serve from a tile cache in ``tmp_path/cache``, a secret file beside it."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (cache.parent / "solid").mkdir()
    (cache.parent / "solid" / "secret.png").write_bytes(SECRET)
    config = {
        **settings.TILESTACHE_CONFIG,
        "cache": {"name": "Disk", "path": str(cache), "umask": "0022"},
    }
    config["layers"] = {
        k: v for k, v in config["layers"].items() if k in ("solid", "nocache", "points")
    }
    settings.TILESTATUS = {**settings.TILESTATUS, "CONFIG": config}
    runtime.get_server()  # build once, outside the watch: reading the config is expected
    return cache


def test_hostile_paths_in_process(hostile_setup: Path, tile_client: Any, figures: dict) -> None:
    cache = hostile_setup
    client = tile_client()
    allowed_reads = [Path(p).resolve() for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}]
    allowed_reads += [ROOT / "django_tilestatus", ROOT / "tests", Path("/dev/urandom")]
    seen = {
        "examples": 0,
        "statuses": {},
        "longest_path": 0,
        "files_written_in_cache": 0,
        "files_read": 0,
    }

    @hypothesis_settings(
        max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(path=tile_paths, query=queries, method=st.sampled_from(["GET", "HEAD"]))
    def check(path: str, query: str, method: str) -> None:
        url = "/tiles/" + path + ("?" + query if query else "")
        with watch_files() as touched:
            response = client.generic(method, url)
        seen["examples"] += 1
        seen["longest_path"] = max(seen["longest_path"], len(url))
        seen["statuses"][response.status_code] = seen["statuses"].get(response.status_code, 0) + 1
        assert response.status_code < 500, (url, response.content[:200])
        assert SECRET not in response.content
        for kind, raw in touched:
            where = resolved(raw)
            if where is None:
                continue
            seen["files_read" if kind == "read" else "files_written_in_cache"] += 1
            if kind == "write":
                assert is_inside(where, cache), f"{url!r} wrote {where}"
            else:
                assert is_inside(where, cache) or any(is_inside(where, a) for a in allowed_reads), (
                    f"{url!r} read {where}"
                )
        # The request's own Started message: one line, cut to the documented length.
        _, messages = get_recent()
        started = next(s.message for s in messages if s.message.startswith("Started "))
        label = started.removeprefix("Started ")
        assert len(label) <= vocabulary.MAX_PATH_LENGTH + len("...")
        assert label.isprintable(), label
        callback = urllib.parse.parse_qs(query).get("callback", [None])[0]
        if (
            callback is not None
            and response.status_code == 200
            and "json" in response["Content-Type"]
        ):
            assert tiles.CALLBACK_PATTERN.fullmatch(callback) and len(callback) <= 128
            assert response.content.startswith(callback.encode() + b"(")

    check()
    assert seen["files_written_in_cache"] > 0  # the watch does see the cache being written
    stray = [
        p
        for p in cache.parent.rglob("*")
        if not is_inside(p, cache) and p.name not in ("secret.txt", "solid", "secret.png")
    ]
    assert stray == [], stray
    figures.update(seen)


def test_any_jsonp_callback_is_wrapped_only_if_it_is_an_identifier(
    hostile_setup: Path, tile_client: Any, figures: dict
) -> None:
    client = tile_client()
    seen = {"examples": 0, "wrapped": 0, "rejected": 0}

    @hypothesis_settings(max_examples=300, deadline=None)
    @given(callback=callbacks)
    def check(callback: str) -> None:
        response = client.get("/tiles/points/2/1/1.json?callback=" + urllib.parse.quote(callback))
        seen["examples"] += 1
        if callback == "":  # an empty parameter is no parameter, as in TileStache
            assert response.content == b'{"z": 2, "x": 1, "y": 1}'
        elif (
            tiles.CALLBACK_PATTERN.fullmatch(callback)
            and len(callback) <= tiles.MAX_CALLBACK_LENGTH
        ):
            assert response.status_code == 200
            assert response.content == callback.encode() + b'({"z": 2, "x": 1, "y": 1})'
            assert response["Content-Type"] == "application/javascript; charset=utf-8"
            seen["wrapped"] += 1
        else:
            assert response.status_code == 400, callback
            assert response["Content-Type"].startswith("text/plain")
            seen["rejected"] += 1

    check()
    assert seen["wrapped"] and seen["rejected"]
    figures.update(seen)


@pytest.mark.parametrize("callback", ["alert(1)", "a;b", "</script>", "1a", "a..b", "a" * 129, "é"])
def test_a_callback_outside_the_identifier_pattern_is_refused(
    hostile_setup: Path, tile_client: Any, callback: str
) -> None:
    response = tile_client().get("/tiles/points/1/0/0.json", {"callback": callback})
    assert response.status_code == 400
    assert callback.encode() not in response.content


@pytest.mark.parametrize("callback", ["cb", "jQuery.cb_1", "$x", "_"])
def test_a_callback_inside_the_pattern_wraps_the_json(
    hostile_setup: Path, tile_client: Any, callback: str
) -> None:
    response = tile_client().get("/tiles/points/1/0/0.json", {"callback": callback})
    assert response.status_code == 200
    assert response.content.startswith(callback.encode() + b"({") and response.content.endswith(
        b")"
    )


# -- over real HTTP ---------------------------------------------------------------


def files_outside(folder: Path, inside: Path) -> dict[Path, tuple[int, float]]:
    return {
        p: (p.stat().st_size, p.stat().st_mtime)
        for p in folder.rglob("*")
        if p.is_file() and not is_inside(p, inside) and p.suffix != ".log"
    }


def test_hostile_paths_over_http(
    start_server, redis_server, key_prefix, tmp_path: Path, figures: dict
) -> None:
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "secret.png").write_bytes(SECRET)
    cache = tmp_path / "tiles"
    server = start_server(workers=2)
    before = files_outside(tmp_path, cache)
    seen: dict[str, Any] = {"examples": 0, "statuses": {}}

    @hypothesis_settings(
        max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(path=tile_paths, query=queries, raw=st.booleans())
    def check(path: str, query: str, raw: bool) -> None:
        quoted = urllib.parse.quote(path, safe="/%" if raw else "/")
        target = ("/tiles/" + quoted + ("?" + query if query else "")).encode()
        status, _, body = raw_exchange(server.base, "GET", target)
        seen["examples"] += 1
        seen["statuses"][status] = seen["statuses"].get(status, 0) + 1
        assert status < 500, (target[:300], body[:200])
        assert SECRET not in body

    check()
    assert seen["statuses"].get(200), seen  # some were tiles: the app did answer
    assert files_outside(tmp_path, cache) == before
    assert "Traceback" not in server.log_text() and "Internal Server Error" not in server.log_text()
    assert request(server.base, "/tiles/demo/1/0/0.png").ok  # still serving
    client = redis_server.client()
    from ..support.status import read_logs

    messages = [m for log in read_logs(client, key_prefix) for _, m in log.entries]
    assert messages
    for message in messages:
        assert message.isprintable(), message
        if message.startswith("Started "):
            assert len(message) <= len("Started ") + vocabulary.MAX_PATH_LENGTH + len("...")
    figures.update(
        seen, longest_message=max(len(m) for m in messages), files_outside_cache_changed=0
    )


# -- redirects stay on the site ---------------------------------------------------

#: Mount prefixes a proxy could pass as ``SCRIPT_NAME`` to make a redirect leave the site.
HOSTILE_SCRIPT_NAMES = [
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "https:",
    "https://evil.example",
    "javascript:alert(1)//",
    "http:evil.example",
    " //evil.example",
    "\t//evil.example",
    "/%2F/evil.example",
    "/tiles/../..//evil.example",
]


def assert_on_this_site(location: str) -> None:
    """``location`` is a path on this site, as a browser would read it too.

    Browsers drop leading and trailing spaces and controls, ignore tabs and
    newlines anywhere, and read a backslash as a slash in http(s) URLs.
    """
    browser_view = "".join(c for c in location.strip("\x00\x20") if c not in "\t\n\r")
    assert browser_view.startswith("/"), location
    assert browser_view[1:2] not in ("/", "\\"), location
    parts = urllib.parse.urlsplit(location)
    assert (parts.scheme, parts.netloc) == ("", ""), location
    joined = urllib.parse.urlsplit(urllib.parse.urljoin("http://tiles.example/", location))
    assert joined.netloc == "tiles.example", location
    assert location.isascii() and location.isprintable(), location


@pytest.mark.parametrize("script_name", HOSTILE_SCRIPT_NAMES)
def test_a_redirect_stays_on_the_site_whatever_the_script_name(script_name: str) -> None:
    response = Client().get("/tiles/solid/2/1/1.jpeg", {"a": "1"}, SCRIPT_NAME=script_name)
    assert response.status_code == 302
    assert_on_this_site(response["Location"])
    assert response["Location"].endswith("/tiles/solid/2/1/1.png?a=1")
    assert response.content == f"You are being redirected to {response['Location']}\n".encode()


def test_any_script_name_gives_a_redirect_on_the_site(figures: dict) -> None:
    client = Client()
    seen = {"examples": 0}
    script_names = st.one_of(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
        st.lists(st.sampled_from(["/", "\\", "//", ":", "https:", "evil.example", "%2F", " "])).map(
            "".join
        ),
        st.sampled_from(HOSTILE_SCRIPT_NAMES),
    )

    @hypothesis_settings(max_examples=300, deadline=None)
    @given(script_name=script_names, z=st.integers(0, 20), query=st.sampled_from(["", "a=1"]))
    def check(script_name: str, z: int, query: str) -> None:
        path = f"/tiles/solid/{z}/0/0.jpeg"
        # WSGI carries SCRIPT_NAME as its UTF-8 bytes read as Latin-1.
        wsgi_script_name = script_name.encode().decode("latin-1")
        response = client.get(path + ("?" + query if query else ""), SCRIPT_NAME=wsgi_script_name)
        seen["examples"] += 1
        assert response.status_code == 302, (script_name, response.content[:200])
        assert_on_this_site(response["Location"])
        assert response["Location"].split("?")[0].endswith(f"/tiles/solid/{z}/0/0.png")

    check()
    figures.update(seen)


def test_a_script_name_header_through_gunicorn_cannot_redirect_off_site(
    start_server, redis_server, key_prefix
) -> None:
    """gunicorn takes ``SCRIPT_NAME`` from a header sent by an allowed (local) proxy."""
    server = start_server(workers=1)
    for script_name in ("//evil.example", "/\\evil.example", "//evil.example/tiles/.."):
        answer = request(
            server.base,
            urllib.parse.quote(script_name, safe="/:\\") + "/tiles/demo/1/0/0.jpeg",
            headers={"SCRIPT_NAME": script_name},
        )
        assert answer.status == 302, (script_name, answer)
        assert_on_this_site(answer.headers["location"])
        assert answer.headers["location"].endswith("/tiles/demo/1/0/0.png")

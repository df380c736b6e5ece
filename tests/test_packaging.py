"""The package as users get it: built from the tracked files, checked, installed elsewhere.

The sdist and wheel are built with ``python -m build`` from a copy of the files git
tracks, so nothing untracked in a working tree can slip into them. The wheel is then
installed into a fresh virtual environment with the commands docs/getting-started.md
gives, into a project made of that page's files, which must pass ``manage.py check``,
serve a tile under ``runserver`` and show it on the status page to a signed-in staff user,
then serve the page styled under gunicorn (its CSS and JavaScript through WhiteNoise).

``TILESTATUS_PACKAGING_DJANGO`` (e.g. ``Django~=6.1.0``) adds a Django requirement to the
install command, to prove a given Django line; ``TILESTATUS_PACKAGING_PYTHON`` picks the
interpreter of the fresh environment (default: the one running the tests).
"""

from __future__ import annotations

import configparser
import email.parser
import http.cookiejar
import os
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

import django_tilestatus

from .support import free_port, wait_until
from .support.docs import write_documented_files
from .support.http import wait_for_answer
from .support.real_redis import REAL_REDIS_URL

pytestmark = [
    pytest.mark.packaging,
    pytest.mark.redis,
    # On one pytest-xdist worker, so the distributions (a session fixture) are built once.
    pytest.mark.xdist_group("packaging"),
]

ROOT = Path(__file__).resolve().parent.parent
GETTING_STARTED = ROOT / "docs" / "getting-started.md"
#: Top-level files the sdist carries besides the package.
SDIST_EXTRAS = {"README.md", "CHANGELOG.md", "LICENSE", "pyproject.toml", "MANIFEST.in"}
#: Tools of the "test" dependency group that must never reach a user's install.
DEVELOPMENT_TOOLS = {"build", "twine", "playwright", "pytest", "hypothesis", "gunicorn"}
#: What setuptools adds to every sdist.
SDIST_GENERATED = {"PKG-INFO", "setup.cfg"}
#: The commands docs/getting-started.md tells a user to run to install, and for gunicorn.
DOCUMENTED_INSTALL = (
    'python -m pip install -U "pip>=25.3"',
    "printf 'setuptools<81\\n' > build-constraints.txt",
    "python -m pip install --build-constraint build-constraints.txt django-tilestatus",
    "python -m pip install gunicorn whitenoise",
    "python manage.py collectstatic --noinput",
)
#: Variables the test environment may set that a user's shell would not.
FOREIGN_ENV = (
    "PIP_CONSTRAINT",
    "PIP_BUILD_CONSTRAINT",
    "PYTHONPATH",
    "DJANGO_SETTINGS_MODULE",
    "VIRTUAL_ENV",
    "PYTHONDEVMODE",
    "PYTHONWARNINGS",
)


def run(command: list[str], cwd: Path, timeout: float = 300, **env: str) -> str:
    """Run ``command``; fail the test with its output if it does not exit 0."""
    environment = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    result = subprocess.run(
        command,
        cwd=cwd,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def tracked_files() -> list[str]:
    """The repository's files as a clean clone would have them (working-tree content)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("the packaging tests need a git checkout and git")
    listed = run(["git", "ls-files", "-z"], cwd=ROOT).split("\0")
    return sorted(name for name in listed if name and (ROOT / name).is_file())


def package_files() -> set[str]:
    return {name for name in tracked_files() if name.startswith("django_tilestatus/")}


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the sdist and the wheel ``python -m build`` made from tracked files."""
    source = tmp_path_factory.mktemp("source")
    for name in tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], cwd=source)
    return out


def only(folder: Path, pattern: str) -> Path:
    [found] = folder.glob(pattern)
    return found


def test_twine_accepts_both_distributions(dist: Path) -> None:
    files = [str(path) for path in sorted(dist.iterdir())]
    assert len(files) == 2, files
    output = run([sys.executable, "-m", "twine", "check", "--strict", *files], cwd=dist)
    assert output.count("PASSED") == 2, output


def test_sdist_holds_the_package_and_nothing_else(dist: Path) -> None:
    with tarfile.open(only(dist, "*.tar.gz")) as sdist:
        names = {member.name.split("/", 1)[1] for member in sdist.getmembers() if member.isfile()}
    generated = {name for name in names if name.startswith("django_tilestatus.egg-info/")}
    assert names - generated - SDIST_GENERATED == package_files() | SDIST_EXTRAS


def test_wheel_holds_every_package_file(dist: Path) -> None:
    """Code, templates, static files and ``py.typed``: everything git tracks in the package."""
    with zipfile.ZipFile(only(dist, "*.whl")) as wheel:
        names = set(wheel.namelist())
    package = {name for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert package == package_files()
    assert "django_tilestatus/py.typed" in package


def test_metadata_declares_the_version_and_every_supported_pair(dist: Path) -> None:
    with zipfile.ZipFile(only(dist, "*.whl")) as wheel:
        [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(wheel.read(name).decode("utf-8"))
    assert metadata["Version"] == django_tilestatus.__version__
    classifiers = set(metadata.get_all("Classifier") or [])
    pythons, djangos = supported_pairs()
    for python in pythons:
        assert f"Programming Language :: Python :: {python}" in classifiers
    for django in djangos:
        assert f"Framework :: Django :: {django}" in classifiers
    assert "Typing :: Typed" in classifiers
    # Development tools are a dependency group, never an extra users can see.
    assert sorted(metadata.get_all("Provides-Extra") or []) == [
        "composite",
        "example",
        "mapnik",
        "seed",
    ]
    for requirement in map(Requirement, metadata.get_all("Requires-Dist") or []):
        # gunicorn is the example's server too (the README's command), in its extra only.
        example_server = (
            requirement.name.lower() == "gunicorn"
            and str(requirement.marker) == 'extra == "example"'
        )
        assert example_server or requirement.name.lower() not in DEVELOPMENT_TOOLS, requirement
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])
    for label in ("Source", "Documentation", "Changelog"):
        assert urls.get(label, "").startswith("https://"), (label, urls)
    oldest = min(pythons, key=lambda version: tuple(map(int, version.split("."))))
    assert metadata["Requires-Python"] == f">={oldest}"


def supported_pairs() -> tuple[set[str], set[str]]:
    """The Python and Django versions of tox.ini's environments (``py313-dj61``...)."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "tox.ini")
    names = []
    for line in parser["tox"]["env_list"].split():
        head, _, tail = line.partition("{")
        names += [head + option for option in tail.rstrip("}").split(",")] if tail else [line]
    pairs = [re.fullmatch(r"py(\d)(\d+)-dj(\d)(\d)", name) for name in names]
    found = [match.groups() for match in pairs if match]
    assert found, names
    return {f"{a}.{b}" for a, b, _, _ in found}, {f"{c}.{d}" for _, _, c, d in found}


# -- the wheel in a fresh project ---------------------------------------------------


def test_documented_install_commands_are_the_ones_tested() -> None:
    text = GETTING_STARTED.read_text(encoding="utf-8")
    for command in DOCUMENTED_INSTALL:
        assert command in text


@pytest.fixture
def project(dist: Path, tmp_path: Path, real_prefix: str) -> Path:
    """The getting-started project, with the wheel installed into a fresh venv."""
    python = os.environ.get("TILESTATUS_PACKAGING_PYTHON", sys.executable)
    run([python, "-m", "venv", str(tmp_path / "venv")], cwd=tmp_path)
    bin_dir = tmp_path / "venv" / "bin"
    pip = [str(bin_dir / "python"), "-m", "pip"]
    run([*pip, "install", "--quiet", "-U", "pip>=25.3"], cwd=tmp_path)
    (tmp_path / "build-constraints.txt").write_text("setuptools<81\n")
    extra = os.environ.get("TILESTATUS_PACKAGING_DJANGO", "")
    run(
        [
            *pip,
            "install",
            "--quiet",
            "--build-constraint",
            "build-constraints.txt",
            str(only(dist, "*.whl")),
            *([extra] if extra else []),
        ],
        cwd=tmp_path,
        timeout=600,
    )
    # Step 8 of the page: gunicorn, and WhiteNoise for the static files under it.
    run([*pip, "install", "--quiet", "gunicorn", "whitenoise"], cwd=tmp_path)
    if extra:
        installed = run(
            [str(bin_dir / "python"), "-c", "import django; print(django.__version__)"],
            cwd=tmp_path,
        ).strip()
        assert Requirement(extra).specifier.contains(installed), installed

    site = tmp_path / "site"
    site.mkdir()
    run([str(bin_dir / "django-admin"), "startproject", "mysite", "."], cwd=site)
    write_documented_files(GETTING_STARTED, site)
    with open(site / "mysite" / "settings.py", "a", encoding="utf-8") as settings:
        # The tests' Redis, under a prefix of this test's own.
        settings.write(
            f'\nCACHES["default"]["LOCATION"] = {REAL_REDIS_URL!r}\n'
            f'TILESTATUS["KEY_PREFIX"] = {real_prefix!r}\n'
        )
    return site


@contextmanager
def runserver(project: Path) -> Iterator[str]:
    """``manage.py runserver`` on a free port; yields its base URL."""
    python = str(project.parent / "venv" / "bin" / "python")
    port = free_port()
    with serving(project, [python, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def gunicorn(project: Path) -> Iterator[str]:
    """The project under gunicorn, as getting-started's step 8 runs it; yields its base URL."""
    bin_dir = project.parent / "venv" / "bin"
    major = run(
        [str(bin_dir / "python"), "-c", "import gunicorn; print(gunicorn.version_info[0])"], project
    ).strip()
    # gunicorn 27+: no control socket, so this server shares none with others of this user.
    isolation = ["--no-control-socket"] if int(major) >= 27 else []
    port = free_port()
    command = [str(bin_dir / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    with serving(project, [*command, *isolation, "mysite.wsgi:application"]):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def serving(project: Path, command: list[str]) -> Iterator[None]:
    """Run ``command`` in the project until it answers on ``/tiles/``; stop it afterwards."""
    address = next(part for part in command if part.startswith("127.0.0.1:"))
    base = f"http://{address}"
    log_path = project / f"{Path(command[0]).name}-{address.rsplit(':', 1)[1]}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    environment = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    process = subprocess.Popen(
        command, cwd=project, env=environment, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        try:
            wait_for_answer(base, "/tiles/", process, seconds=60)
        except RuntimeError as exc:
            pytest.fail(f"{command[:3]}: {exc}: {log_path.read_text()[-3000:]}")
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch(opener: urllib.request.OpenerDirector, url: str, data: bytes | None = None) -> Any:
    try:
        return opener.open(url, data=data, timeout=30)
    except urllib.error.HTTPError as error:
        return error


def sign_in(base: str, username: str, password: str) -> urllib.request.OpenerDirector:
    """A browser-like session signed in through the admin's login form."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    form = fetch(opener, base + "/admin/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert token, form[:500]
    fields = {
        "csrfmiddlewaretoken": token.group(1),
        "username": username,
        "password": password,
        "next": "/admin/",
    }
    answer = fetch(opener, base + "/admin/login/", urllib.parse.urlencode(fields).encode())
    assert answer.status == 200 and answer.url.endswith("/admin/"), answer.url
    return opener


def manage(project: Path, *args: str, **env: str) -> str:
    """``python manage.py ...`` with the fresh environment's Python."""
    return run(
        [str(project.parent / "venv" / "bin" / "python"), "manage.py", *args], project, **env
    )


def test_wheel_in_a_fresh_project_checks_serves_and_shows_status(project: Path, dist: Path) -> None:
    where = manage(
        project,
        "shell",
        "-v",
        "0",
        "-c",
        "import django_tilestatus; print(django_tilestatus.__file__)",
    )
    assert Path(where.strip()).is_relative_to(project.parent / "venv"), where
    assert "System check identified no issues" in manage(project, "check")
    manage(project, "migrate", "--noinput")
    password = "not-a-secret-1"
    manage(
        project,
        "createsuperuser",
        "--noinput",
        "--username",
        "staff",
        "--email",
        "staff@example.com",
        DJANGO_SUPERUSER_PASSWORD=password,
    )

    with runserver(project) as base:
        anonymous = urllib.request.build_opener(_NoRedirect)
        tile = fetch(anonymous, base + "/tiles/demo/0/0/0.png")
        assert tile.status == 200 and tile.headers["Content-Type"] == "image/png"
        assert tile.read().startswith(b"\x89PNG\r\n\x1a\n")

        refused = fetch(anonymous, base + "/tiles/status/")
        assert refused.status == 302 and "/admin/login/" in refused.headers["Location"]
        assert b"Finished" not in refused.read()

        staff = sign_in(base, "staff", password)
        seen: list[Any] = []

        def finished_shown() -> bool:
            page = fetch(staff, base + "/tiles/status/")
            seen[:] = [page, page.read().decode()]
            return "Finished /demo/0/0/0.png in " in seen[1]

        # Events reach Redis a moment after the response.
        wait_until(finished_shown, seconds=10, interval=0.2)
        page, body = seen
        assert page.status == 200, body[:500]
        assert "Started /demo/0/0/0.png" in body and "Finished /demo/0/0/0.png in " in body

        # Every static file in the wheel is found by the staticfiles finders.
        for name in wheel_files(dist, "static"):
            assert fetch(anonymous, f"{base}/static/{name}").status == 200, name

    # Under gunicorn, the page comes with its CSS and JavaScript (WhiteNoise, step 8).
    manage(project, "collectstatic", "--noinput")
    with gunicorn(project) as base:
        staff = sign_in(base, "staff", password)
        page = fetch(staff, base + "/tiles/status/")
        body = page.read().decode()
        assert page.status == 200, body[:500]
        styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', body)
        scripts = re.findall(r'<script src="([^"]+)"', body)
        assert any(url.endswith("django_tilestatus/status.css") for url in styles), styles
        assert any(url.endswith("django_tilestatus/status.js") for url in scripts), scripts
        for urls, kind, needle in ((styles, "text/css", b"{"), (scripts, "javascript", b"")):
            for url in urls:
                answer = fetch(anonymous, base + url)
                assert answer.status == 200, url
                assert kind in answer.headers["Content-Type"], (url, answer.headers)
                assert needle in answer.read(), url

    # And every template by the template loaders.
    templates = wheel_files(dist, "templates")
    code = (
        f"from django.template.loader import get_template\nfor n in {templates!r}: get_template(n)"
    )
    manage(project, "shell", "-v", "0", "-c", code)


def wheel_files(dist: Path, folder: str) -> list[str]:
    """Names under the wheel's ``templates/`` or ``static/``, as Django looks them up."""
    with zipfile.ZipFile(only(dist, "*.whl")) as wheel:
        marker = f"django_tilestatus/{folder}/"
        return [name.removeprefix(marker) for name in wheel.namelist() if name.startswith(marker)]

"""``scripts/demo.sh``: its port, a clear error when the port is taken, no reinstall on restart.

The script runs for real, with ``VENV`` pointing at a stand-in whose ``python``
only writes down how it was called: so the test sees whether pip would have
run and what runserver was asked to serve, in well under a second, without
touching the real ``.venv``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scripts" / "demo.sh"

#: A python that appends its arguments to $STUB_LOG, one call per line, and succeeds.
STUB = '#!/bin/sh\nprintf "%s\\n" "$*" >> "$STUB_LOG"\n'


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    folder = tmp_path / "venv"
    (folder / "bin").mkdir(parents=True)
    python = folder / "bin" / "python"
    python.write_text(STUB)
    python.chmod(0o755)
    return folder


def run_demo(venv: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], list]:
    log = venv / "calls.log"
    log.unlink(missing_ok=True)
    environment = {k: v for k, v in os.environ.items() if k not in ("PORT", "VENV", "PYTHON")}
    result = subprocess.run(
        ["sh", str(DEMO), *args],
        env={
            **environment,
            "VENV": str(venv),
            "PYTHON": sys.executable,
            "STUB_LOG": str(log),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def installs(calls: list[str]) -> list[str]:
    return [call for call in calls if call.startswith("-m pip install")]


def test_first_start_installs_then_a_restart_does_not(venv: Path) -> None:
    port = free_port()
    first, calls = run_demo(venv, str(port))
    assert first.returncode == 0, first.stderr
    assert any("-e " in call and "[example,mapnik]" in call for call in installs(calls)), calls
    assert calls[-1].endswith(f"manage.py runserver --noreload 127.0.0.1:{port}"), calls

    again, calls = run_demo(venv, str(port))
    assert again.returncode == 0, again.stderr
    assert installs(calls) == [], calls  # the stamp matches: nothing to install
    assert "Installing" not in again.stdout
    assert calls[-1].endswith(f"manage.py runserver --noreload 127.0.0.1:{port}"), calls
    assert f"http://127.0.0.1:{port}/" in again.stdout


def test_a_changed_stamp_installs_again(venv: Path) -> None:
    run_demo(venv, str(free_port()))
    (stamp,) = venv.glob(".django-tilestatus-installed-*")
    stamp.write_text("an older pyproject.toml\n")
    _, calls = run_demo(venv, str(free_port()))
    assert installs(calls), calls


def test_the_port_comes_from_the_environment(venv: Path) -> None:
    port = free_port()
    _, calls = run_demo(venv, PORT=str(port))
    assert calls[-1].endswith(f"runserver --noreload 127.0.0.1:{port}"), calls
    _, calls = run_demo(venv, str(port), PORT="1")  # an argument wins
    assert calls[-1].endswith(f"runserver --noreload 127.0.0.1:{port}"), calls


def test_the_default_port_is_8000(venv: Path) -> None:
    # The stand-in binds nothing; if something else holds 8000, the script says so.
    result, calls = run_demo(venv)
    if result.returncode == 0:
        assert calls[-1].endswith("runserver --noreload 127.0.0.1:8000"), calls
    else:
        assert "port 8000 on 127.0.0.1 is already in use" in result.stderr


def test_a_taken_port_is_one_clear_line_and_nothing_else_runs(venv: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result, calls = run_demo(venv, str(port))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"demo.sh: port {port} on 127.0.0.1 is already in use; "
        f"pick another: ./scripts/demo.sh {port + 1}"
    ]
    assert calls == []  # no install, no migrate, no server


@pytest.mark.parametrize("port", ["http", "80a", "-1"])
def test_a_port_that_is_not_a_number_is_refused(venv: Path, port: str) -> None:
    result, calls = run_demo(venv, port)
    assert result.returncode == 2
    assert "the port must be a number" in result.stderr
    assert calls == []

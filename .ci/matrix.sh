#!/usr/bin/env bash
# The rest of CI, after the default environment: code health (ruff, mypy), then
# every tox environment: the supported Python x Django pairs and the packaging
# test (sdist, wheel, twine, the wheel in a fresh Python 3.13 + Django 6.1
# project). Expects Redis up and .venv made, as .ci/run leaves them.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Code health: ruff check, ruff format --check, mypy"
./scripts/lint.sh

# tox finds an interpreter as python3.X on PATH; put pyenv's there where none runs
# (a pyenv shim for a version that is not selected is found but does not run).
PYENV_ROOT=${PYENV_ROOT:-$HOME/.pyenv}
for minor in 10 11 12 13; do
    if ! "python3.$minor" -c "" >/dev/null 2>&1; then
        found=$(ls -d "$PYENV_ROOT/versions/3.$minor."* 2>/dev/null | sort -V | tail -n 1 || true)
        if [ -z "$found" ]; then
            echo "Python 3.$minor is needed for the matrix and was not found" >&2
            exit 1
        fi
        PATH="$found/bin:$PATH"
    fi
done
export PATH

echo "== tox: $(.venv/bin/python -m pip install --quiet --group pyproject.toml:tox && .venv/bin/tox --version)"
start=$SECONDS
.venv/bin/tox run
echo "== tox took $((SECONDS - start)) seconds"

#!/bin/sh
# Run the code-health checks CI runs: ruff (lint and format) and mypy.
# Arguments pick checks: ruff-check, ruff-format, mypy (default: all three).
#
# The pinned tools (the "lint" dependency group) are installed into .venv with
# the package when they are missing, and always under CI=true, so CI checks
# with exactly the pinned versions while a pre-commit hook stays quick.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-"$ROOT/.venv"}

if [ "${CI:-}" = true ] || [ ! -x "$VENV/bin/ruff" ] || [ ! -x "$VENV/bin/mypy" ]; then
    GROUP=test
    . "$ROOT/scripts/_setup.sh"
    "$VENV/bin/python" -m pip install --quiet --group "$ROOT/pyproject.toml:lint"
fi

cd "$ROOT"
status=0
for check in ${@:-ruff-check ruff-format mypy}; do
    case $check in
        ruff-check) "$VENV/bin/ruff" check . || status=1 ;;
        ruff-format) "$VENV/bin/ruff" format --check . || status=1 ;;
        mypy) "$VENV/bin/mypy" || status=1 ;;
        *) echo "unknown check: $check (ruff-check, ruff-format or mypy)" >&2; exit 2 ;;
    esac
done
exit $status

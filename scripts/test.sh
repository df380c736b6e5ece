#!/bin/sh
# Set up .venv and run the whole test suite on two processes (pytest-xdist; tests
# that must share one carry an xdist_group mark). Extra arguments go to pytest:
# `-n 0` runs everything in this one process.
# Real-Redis tests use TILESTATUS_TEST_REDIS_URL (default redis://127.0.0.1:6379/15);
# they skip when no Redis answers, except under CI=true, where they fail.
EXTRAS=mapnik,composite,seed
GROUP=test
. "$(dirname "$0")/_setup.sh"

cd "$ROOT"
exec "$VENV/bin/python" -m pytest -n 3 --dist loadgroup "$@"

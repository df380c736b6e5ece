#!/bin/sh
# Set up .venv as scripts/test.sh does, then run the benchmarks: a private
# redis-server, every server under gunicorn on loopback, wrk (or a Python load
# generator). Prints the results and writes benchmarks/RESULTS.md.
# Extra arguments go to `python -m benchmarks` (--quick, --output PATH, ...).
EXTRAS=mapnik
GROUP=test
. "$(dirname "$0")/../scripts/_setup.sh"

cd "$ROOT"
exec "$VENV/bin/python" -m benchmarks "$@"

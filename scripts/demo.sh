#!/bin/sh
# Serve the demo at http://127.0.0.1:PORT (default 8000): ./scripts/demo.sh [PORT],
# or PORT=8001 ./scripts/demo.sh. Sets up .venv (once), the example project's
# database and a staff user first. Set TILESTATUS_REDIS_URL to record into a real
# Redis; without it an in-process stand-in is used.
set -eu
PORT=${1:-${PORT:-8000}}
case $PORT in
    '' | *[!0-9]*)
        echo "demo.sh: the port must be a number, not '$PORT' (usage: ./scripts/demo.sh [PORT])" >&2
        exit 2 ;;
esac
# Before anything is installed: say so at once if the port is taken.
if ! "${PYTHON:-python3}" - "$PORT" <<'PY'
import socket, sys
with socket.socket() as sock:
    try:
        sock.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(1)
PY
then
    echo "demo.sh: port $PORT on 127.0.0.1 is already in use; pick another: ./scripts/demo.sh $((PORT + 1))" >&2
    exit 1
fi

EXTRAS=example,mapnik
. "$(dirname "$0")/_setup.sh"

PY="$VENV/bin/python"
MANAGE="$ROOT/example_project/manage.py"
# One process for both steps: each Django start-up costs about a second.
"$PY" "$MANAGE" shell --verbosity 0 -c '
from django.contrib.auth import get_user_model
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
User = get_user_model()
if not User.objects.filter(username="admin").exists():
    User.objects.create_superuser("admin", "admin@example.com", "admin")
'
cat <<MSG

  django_tilestatus demo: http://127.0.0.1:$PORT/
  Sign in as staff at http://127.0.0.1:$PORT/admin/ with user "admin", password "admin"
  (a demo account: never use it anywhere else), then open "Tile status".

MSG
# --noreload: one Django start-up instead of two (the reloader's parent and its
# child), so a restart serves in a moment; a demo needs no code reloading.
exec "$PY" "$MANAGE" runserver --noreload "127.0.0.1:$PORT"

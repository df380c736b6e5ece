#!/bin/sh
# Set up .venv, the example project's database and a staff user, then serve the
# demo at http://127.0.0.1:8000. Set TILESTATUS_REDIS_URL to record into a real
# Redis; without it an in-process stand-in is used.
EXTRAS=example,mapnik
. "$(dirname "$0")/_setup.sh"

PY="$VENV/bin/python"
MANAGE="$ROOT/example_project/manage.py"
"$PY" "$MANAGE" migrate --noinput --verbosity 0
"$PY" "$MANAGE" shell --verbosity 0 -c '
from django.contrib.auth import get_user_model
User = get_user_model()
if not User.objects.filter(username="admin").exists():
    User.objects.create_superuser("admin", "admin@example.com", "admin")
'
cat <<MSG

  django_tilestatus demo: http://127.0.0.1:8000/
  Sign in as staff at http://127.0.0.1:8000/admin/ with user "admin", password "admin"
  (a demo account: never use it anywhere else), then open "Tile status".

MSG
exec "$PY" "$MANAGE" runserver 127.0.0.1:8000

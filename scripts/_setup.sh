# Sourced by demo.sh, test.sh and lint.sh: make .venv and install the project
# into it, with the extras named in EXTRAS (e.g. "example") and the dependency
# group named in GROUP (e.g. "test", the development tools; pip 25.1+ installs
# groups, and the pip installed below is newer).
#
# TileStache 1.51.14 builds only with setuptools < 81, which a package cannot
# declare for pip, so the install passes constraints/build.txt as a build
# constraint. That needs pip 25.3 or newer, which is installed first.
#
# The install is editable, so code changes need no reinstall; only a change to
# pyproject.toml, the constraints or the extras does. A stamp in .venv holds a
# hash of those, and the install is skipped while it matches.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
VENV=${VENV:-"$ROOT/.venv"}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "django_tilestatus needs Python 3.10 or newer; set PYTHON=/path/to/python3.x" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "Creating $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
fi
EXTRAS=${EXTRAS:-}
GROUP=${GROUP:-}
# A stamp of what was installed, so a restart with an up-to-date .venv installs nothing.
STAMP="$VENV/.django-tilestatus-installed-$(echo "$EXTRAS-$GROUP" | tr ',' '-')"
WANTED=$("$PYTHON" - "$ROOT" "$EXTRAS" "$GROUP" <<'PY'
import hashlib, pathlib, sys
root, extras, group = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
digest = hashlib.sha256(f"{extras}|{group}".encode())
for path in [root / "pyproject.toml", *sorted((root / "constraints").glob("*.txt"))]:
    digest.update(path.name.encode() + b"\0" + path.read_bytes())
print(digest.hexdigest())
PY
)
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANTED" ]; then
    echo "Installing django_tilestatus${EXTRAS:+[$EXTRAS]}${GROUP:+ and the $GROUP group} into $VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade "pip>=25.3"
    "$VENV/bin/python" -m pip install --quiet --build-constraint "$ROOT/constraints/build.txt" \
        -e "$ROOT${EXTRAS:+[$EXTRAS]}" ${GROUP:+--group "$ROOT/pyproject.toml:$GROUP"}
    echo "$WANTED" > "$STAMP"
fi

# Sourced by demo.sh, test.sh and lint.sh: make .venv and install the project
# into it, with the extras named in EXTRAS (e.g. "example") and the dependency
# group named in GROUP (e.g. "test", the development tools; pip 25.1+ installs
# groups, and the pip installed below is newer).
#
# TileStache 1.51.14 builds only with setuptools < 81, which a package cannot
# declare for pip, so the install passes constraints/build.txt as a build
# constraint. That needs pip 25.3 or newer, which is installed first.
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
echo "Installing django_tilestatus${EXTRAS:+[$EXTRAS]}${GROUP:+ and the $GROUP group} into $VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade "pip>=25.3"
"$VENV/bin/python" -m pip install --quiet --build-constraint "$ROOT/constraints/build.txt" \
    -e "$ROOT${EXTRAS:+[$EXTRAS]}" ${GROUP:+--group "$ROOT/pyproject.toml:$GROUP"}

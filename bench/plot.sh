#!/usr/bin/env bash
# Draws harmony-bench's plots from DIR/data.json into DIR: installs matplotlib (from PyPI) into a
# virtualenv cached in ~/.cache/harmony/bench-venv on first use. Usage: bench/plot.sh DIR
set -euo pipefail
venv="${HOME}/.cache/harmony/bench-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import matplotlib" 2>/dev/null; then
  echo "installing matplotlib into $venv (one time)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet matplotlib==3.9.2
fi
exec "$venv/bin/python" "$(dirname "$0")/plot.py" "$1"

#!/usr/bin/env bash
# Refresh requirements/test.lock (the exact versions scripts/test.sh installs) from pyproject.toml.
# Run after changing a dependency; commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${AFFECTSTREAM_VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade uv
"$venv/bin/python" -m uv pip compile --quiet --universal --python-version 3.11 \
  --extra test --output-file requirements/test.lock pyproject.toml
echo "requirements/test.lock refreshed; run bash scripts/test.sh"

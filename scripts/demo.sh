#!/usr/bin/env bash
# Install affectstream into a virtual environment (.venv beside this repository, or
# $AFFECTSTREAM_VENV) and run the main job: `affectstream demo` on emulated wearables.
# Arguments go to the demo, e.g. `bash scripts/demo.sh --duration 60 --json`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
venv=${AFFECTSTREAM_VENV:-.venv}
make_venv "$venv"
"$venv/bin/python" -m uv pip install --quiet --python "$venv/bin/python" -e .
echo "affectstream is installed in $venv: 'source $venv/bin/activate' to use the affectstream command" >&2
exec "$venv/bin/affectstream" demo "$@"

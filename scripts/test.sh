#!/usr/bin/env bash
# Install everything the test suite needs into a virtual environment, then lint, type-check
# and run the whole suite. The real servers the suite talks to (InfluxDB 1.6.7,
# VictoriaMetrics) come from Debian packages; the suite's fixtures start them on loopback
# ports and stop them when it ends.
#
#   bash scripts/test.sh [PYTEST ARGS...]            the locked versions (requirements/test.lock)
#   bash scripts/test.sh --latest [PYTEST ARGS...]   the newest releases pyproject allows
#
# The environment is .venv (.venv-latest with --latest) beside this repository, or
# $AFFECTSTREAM_VENV; a system Python that refuses `pip install` (PEP 668) is never touched.
# Refresh the lock after changing dependencies: bash scripts/lock.sh
set -euo pipefail
cd "$(dirname "$0")/.."

latest=0
if [ "${1:-}" = "--latest" ]; then
  latest=1
  shift
fi
venv=${AFFECTSTREAM_VENV:-$([ "$latest" = 1 ] && echo .venv-latest || echo .venv)}

source scripts/venv.sh
make_venv "$venv"
py="$venv/bin/python"
if [ "$latest" = 1 ]; then
  "$py" -m uv pip install --quiet --python "$py" --upgrade --refresh -e '.[test]'
else
  "$py" -m uv pip sync --quiet --python "$py" requirements/test.lock
  "$py" -m uv pip install --quiet --python "$py" --no-deps -e .
fi

need=()
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
# npm for the test tools in tests/package.json (axe-core, the BIDS validator); Debian's
# Chromium for the dashboard's browser tests, with fonts so text has real metrics.
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
[ -x /usr/bin/chromium ] || need+=(chromium fonts-dejavu-core)
# PostgreSQL for the service's metadata tests (tests/api/test_postgres.py).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${need[@]}" >/dev/null
  else
    echo "note: ${need[*]} not installed and not root: the tests that need them will skip" >&2
  fi
fi

# The pinned test tools from npm (tests/package.json), installed beside the tests, never
# globally. Without npm the tests that need them skip, saying so.
if command -v npm >/dev/null 2>&1; then
  npm install --prefix tests --no-audit --no-fund --silent >/dev/null ||
    echo "note: npm install in tests/ failed: the browser and BIDS validator tests will skip" >&2
else
  echo "note: npm not found: the browser and BIDS validator tests will skip" >&2
fi

"$py" -m uv pip list --python "$py" --format freeze 2>/dev/null \
  | grep -iE '^(numpy|pandas|scipy|scikit-learn|lightgbm|mne|neurokit2|bleak|bumble)==' \
  | tr '\n' ' '
echo
"$py" -m ruff check .
"$py" -m ruff format --check .
"$py" -m mypy
exec "$py" -m pytest "$@"

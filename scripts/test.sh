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

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || {
    echo "error: could not create a virtual environment; on Debian/Ubuntu: apt-get install python3-venv" >&2
    exit 1
  }
fi
py="$venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check --upgrade pip uv
if [ "$latest" = 1 ]; then
  "$py" -m uv pip install --quiet --python "$py" --upgrade --refresh -e '.[test]'
else
  "$py" -m uv pip sync --quiet --python "$py" requirements/test.lock
  "$py" -m uv pip install --quiet --python "$py" --no-deps -e .
fi

need=()
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
# The dashboard's browser tests drive Debian's Chromium (tests/dashboard; they skip without it).
# and axe-core from npm; fonts so text has real metrics in the layout checks.
[ -x /usr/bin/chromium ] || need+=(chromium fonts-dejavu-core)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${need[@]}" >/dev/null
  else
    echo "note: ${need[*]} not installed and not root: the tests that need them will skip" >&2
  fi
fi

# axe-core for the dashboard's accessibility checks (tests/dashboard/package.json).
if command -v npm >/dev/null 2>&1; then
  npm install --prefix tests/dashboard --no-audit --no-fund --silent ||
    echo "note: npm install in tests/dashboard failed: the browser tests will skip" >&2
else
  echo "note: npm not found: the dashboard's browser tests (axe-core) will skip" >&2
fi

"$py" -m uv pip list --python "$py" --format freeze 2>/dev/null \
  | grep -iE '^(numpy|pandas|scipy|scikit-learn|lightgbm|mne|neurokit2|bleak|bumble)==' \
  | tr '\n' ' '
echo
"$py" -m ruff check .
"$py" -m ruff format --check .
"$py" -m mypy
exec "$py" -m pytest "$@"

#!/usr/bin/env bash
# Install everything the test suite needs, then lint, type-check and run the whole suite.
# The real time-series servers (InfluxDB 1.6.7, VictoriaMetrics) come from Debian packages;
# the suite's fixtures start them on loopback ports and stop them when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'

if ! command -v influxd >/dev/null 2>&1 || ! command -v victoria-metrics >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      influxdb victoria-metrics >/dev/null
  else
    echo "note: influxd/victoria-metrics not installed and not root: server tests will skip" >&2
  fi
fi

python3 -m ruff check .
python3 -m ruff format --check .
python3 -m mypy
python3 -m pytest "$@"

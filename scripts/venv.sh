# Sourced by demo.sh and test.sh: make_venv DIR creates a virtual environment at DIR (if absent)
# with pip and uv in it, so nothing is ever installed into the system Python (PEP 668).
make_venv() {
  local dir=$1
  if [ ! -x "$dir/bin/python" ]; then
    if ! python3 -m venv "$dir" 2>/dev/null; then
      rm -rf "$dir"
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        # Debian/Ubuntu ship venv (ensurepip) separately from python3.
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
          python3-venv >/dev/null
        python3 -m venv "$dir"
      else
        echo "error: python3 cannot create a virtual environment; on Debian/Ubuntu run" \
          "'sudo apt-get install python3-venv', then this command again" >&2
        return 1
      fi
    fi
  fi
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip uv
}

#!/usr/bin/env bash
# Starts the MongoDB-wire test server (mongoeco 4.11.0, memory engine, 127.0.0.1 only) that the
# MongoDB backend's tests run against; see scripts/mongo-test-server.py for what it patches.
#
#   scripts/mongo-test-server.sh [--port N]     prepare the venv if needed, then exec the server;
#                                               it prints "mongoeco listening on 127.0.0.1:PORT"
#                                               and serves until SIGTERM/SIGINT (--port 0 = any)
#   scripts/mongo-test-server.sh --install-only just prepare the venv and exit 0
#
# The venv lives at ${HTSPREP_MONGO_VENV:-$HOME/.cache/htsprep/mongoeco-venv} and needs
# Python >= 3.13 (pyenv's /root/.pyenv/versions/3.13.0, else python3.13 on PATH).
# Creating it takes about 10 s (pip install from PyPI); afterwards this is a no-op.
# Progress messages go to stderr, so stdout carries only the server's "listening" line.
set -euo pipefail

MONGOECO_VERSION=4.11.0
here="$(cd "$(dirname "$0")" && pwd)"
venv="${HTSPREP_MONGO_VENV:-$HOME/.cache/htsprep/mongoeco-venv}"

install_only=0
if [ "${1:-}" = "--install-only" ]; then
  install_only=1
  shift
fi

venv_ready() {
  [ -x "$venv/bin/python" ] &&
    "$venv/bin/python" - "$MONGOECO_VERSION" >/dev/null 2>&1 <<'EOF'
import sys
import bson, mongoeco, mongoeco.wire  # mongoeco[wire] brings pymongo's bson
sys.exit(0 if sys.version_info >= (3, 13) and mongoeco.__version__ == sys.argv[1] else 1)
EOF
}

if ! venv_ready; then
  py=""
  if [ -x /root/.pyenv/versions/3.13.0/bin/python3 ]; then
    py=/root/.pyenv/versions/3.13.0/bin/python3
  elif command -v python3.13 >/dev/null 2>&1; then
    py="$(command -v python3.13)"
  else
    echo "mongo-test-server: Python 3.13 not found (need /root/.pyenv/versions/3.13.0/bin/python3" \
         "or python3.13 on PATH); mongoeco $MONGOECO_VERSION requires Python >= 3.13" >&2
    exit 1
  fi
  if [ -x "$venv/bin/python" ] &&
     ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then
    echo "mongo-test-server: $venv has a Python older than 3.13; recreating it" >&2
    rm -rf "$venv"
  fi
  echo "mongo-test-server: installing mongoeco[wire]==$MONGOECO_VERSION into $venv" >&2
  mkdir -p "$(dirname "$venv")"
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "mongoeco[wire]==$MONGOECO_VERSION" >&2
  venv_ready || { echo "mongo-test-server: mongoeco install in $venv is not usable" >&2; exit 1; }
fi

if [ "$install_only" -eq 1 ]; then
  exit 0
fi
exec "$venv/bin/python" "$here/mongo-test-server.py" "$@"

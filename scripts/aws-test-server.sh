#!/usr/bin/env bash
# Starts the AWS emulator (moto 5.2.5's server, 127.0.0.1 only) that the S3 artifact store's and
# the ECS fleet's tests run against; see scripts/aws-test-server.py for how it binds and stops.
#
#   scripts/aws-test-server.sh [--port N]       prepare the venv if needed, then exec the server;
#                                               it prints "moto listening on 127.0.0.1:PORT"
#                                               and serves until SIGTERM/SIGINT (--port 0 = any)
#   scripts/aws-test-server.sh --install-only   just prepare the venv and exit 0
#
# The venv lives at ${HTSPREP_AWS_VENV:-$HOME/.cache/htsprep/moto-venv} and needs Python >= 3.9
# (python3 on PATH). Creating it takes 20 s to 2 min (pip install from PyPI); afterwards this is a
# no-op. Progress messages go to stderr, so stdout carries only the server's "listening" line.
set -euo pipefail

MOTO_VERSION=5.2.5
here="$(cd "$(dirname "$0")" && pwd)"
venv="${HTSPREP_AWS_VENV:-$HOME/.cache/htsprep/moto-venv}"

install_only=0
if [ "${1:-}" = "--install-only" ]; then
  install_only=1
  shift
fi

venv_ready() {
  [ -x "$venv/bin/python" ] &&
    "$venv/bin/python" - "$MOTO_VERSION" >/dev/null 2>&1 <<'EOF'
import sys
import moto, moto.server, werkzeug, flask  # moto[server] brings flask/werkzeug
sys.exit(0 if sys.version_info >= (3, 9) and moto.__version__ == sys.argv[1] else 1)
EOF
}

if ! venv_ready; then
  py="$(command -v python3 || true)"
  if [ -z "$py" ] || ! "$py" -c 'import sys, venv; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
    echo "aws-test-server: need python3 >= 3.9 with the venv module on PATH" \
         "(moto $MOTO_VERSION requires Python >= 3.9)" >&2
    exit 1
  fi
  if [ -x "$venv/bin/python" ] &&
     ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
    echo "aws-test-server: $venv has a Python older than 3.9 (or a broken one); recreating it" >&2
    rm -rf "$venv"
  fi
  echo "aws-test-server: installing moto[server]==$MOTO_VERSION into $venv" >&2
  mkdir -p "$(dirname "$venv")"
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" >&2
  venv_ready || { echo "aws-test-server: moto install in $venv is not usable" >&2; exit 1; }
fi

if [ "$install_only" -eq 1 ]; then
  exit 0
fi
exec "$venv/bin/python" "$here/aws-test-server.py" "$@"

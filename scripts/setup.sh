#!/usr/bin/env bash
# Installs what htsprep needs on a fresh Debian/Ubuntu machine, skipping what is already there:
# the genomics tools its pipelines run (samtools, tabix/bgzip, bcftools, gffread), protoc for
# the gRPC code generation, and bigbedtobed (crate bigtools) for bigBed sources.
# `scripts/setup.sh --for-tests` also installs what only the tests use: node and the GMOD
# readers, Chromium with igv.js and playwright-core, the MongoDB-wire test server and the AWS
# emulator, and iproute2/util-linux for the tests' private network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
tools="samtools:samtools tabix:tabix bgzip:tabix bcftools:bcftools gffread:gffread protoc:protobuf-compiler curl:curl cc:gcc make:make perl:perl-base"
for_tests=0
if [ "${1:-}" = "--for-tests" ]; then
  for_tests=1
  tools="$tools xz:xz-utils node:nodejs npm:npm ip:iproute2 unshare:util-linux chromium:chromium python3:python3"
fi
for pair in $tools; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${need_apt[*]} (apt)" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v bigbedtobed >/dev/null 2>&1; then
  echo "setup: installing bigbedtobed (cargo install bigtools, about 90 s)" >&2
  cargo install bigtools --version 0.5.8 --locked --no-default-features --features cli --quiet
fi

[ "$for_tests" = 1 ] || exit 0

# The GMOD readers Gosling uses, for the end-to-end tests (versions pinned in the lock file).
if [ ! -d tests/gmod/node_modules/@gmod/bam ]; then
  echo "setup: installing the GMOD readers (npm ci in tests/gmod)" >&2
  (cd tests/gmod && npm ci --no-audit --no-fund --loglevel=error)
fi

# igv.js and playwright-core, for the test that loads htsget tracks in headless Chromium.
if [ ! -d tests/browser/node_modules/igv ]; then
  echo "setup: installing igv.js and playwright-core (npm ci in tests/browser)" >&2
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# The test servers: a MongoDB-wire server (mongoeco, Python 3.13 venv) and the AWS emulator
# (moto) for the MongoDB and S3 backends' tests.
scripts/mongo-test-server.sh --install-only
scripts/aws-test-server.sh --install-only

# An OpenAPI 3.1 validator (PyPI openapi-spec-validator, in a venv) for the test that checks
# the API's /openapi.json.
oas_venv="${HTSPREP_OPENAPI_VENV:-$HOME/.cache/htsprep/openapi-venv}"
if [ ! -x "$oas_venv/bin/openapi-spec-validator" ]; then
  echo "setup: installing openapi-spec-validator into $oas_venv" >&2
  mkdir -p "$(dirname "$oas_venv")"
  python3 -m venv "$oas_venv"
  "$oas_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    openapi-spec-validator==0.9.0
fi

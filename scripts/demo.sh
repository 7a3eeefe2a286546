#!/usr/bin/env bash
# The README's first command: on a fresh machine, installs what is missing, builds htsprep, and
# shows it working on the real sample files in testdata/ with its embedded defaults (a SQLite
# job store and catalog under ./data).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh
cargo build --workspace --bins --quiet
api=target/debug/htsprep-api
export HTSPREP_DATA_DIR=${HTSPREP_DATA_DIR:-./data}

echo "== registering the sample files in testdata/ (catalog: $HTSPREP_DATA_DIR/htsprep.db)"
scripts/testdata-manifest.sh > "$HTSPREP_DATA_DIR.manifest.jsonl"
"$api" files import "$HTSPREP_DATA_DIR.manifest.jsonl"
echo "== the catalog now holds"
"$api" files list | while read -r line; do
  echo "  $(echo "$line" | sed -E 's/.*"dcc":"([^"]*)","local_id":"([^"]*)".*"size":([0-9]+),"format":"([^"]*)".*/\1\/\2  \4  \3 bytes/')"
done

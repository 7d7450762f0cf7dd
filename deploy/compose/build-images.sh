#!/usr/bin/env bash
# Builds the two images the Compose cluster runs, pulling nothing (no registry needed),
# and writes the cluster's secrets to deploy/compose/.env once (kept across runs):
#   wikisearch:latest         deploy/build-image.sh (indexer, searcher, wikisearch)
#   wikisearch-garage:latest  FROM scratch: the garage binary, dash and the few tools its
#                             entrypoint uses (grep, sleep, rm), each with the libraries ldd
#                             says it loads, and garage/entrypoint.sh
#
# usage: deploy/compose/build-images.sh
# env:   WIKISEARCH_PROFILE=debug WIKISEARCH_SKIP_BUILD=1 (passed to build-image.sh: pack
#        target/debug without building), WIKISEARCH_GARAGE (the garage binary; default
#        ~/.cache/wikisearch-tools/bin/garage, else garage on the PATH; `cargo install
#        garage --locked` makes one), WIKISEARCH_TAG / WIKISEARCH_GARAGE_TAG (image tags),
#        WIKISEARCH_WRITE_ENV=0 (write no .env: the caller passes the secrets itself).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tag="${WIKISEARCH_TAG:-wikisearch:latest}"
garage_tag="${WIKISEARCH_GARAGE_TAG:-wikisearch-garage:latest}"

"$here/../build-image.sh" "$tag"

garage_bin="${WIKISEARCH_GARAGE:-$HOME/.cache/wikisearch-tools/bin/garage}"
[ -x "$garage_bin" ] || garage_bin="$(command -v garage || true)"
if [ -z "$garage_bin" ] || [ ! -x "$garage_bin" ]; then
  echo "no garage binary: set WIKISEARCH_GARAGE, or run 'cargo install garage --locked'" >&2
  exit 1
fi

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
root="$context/rootfs"
mkdir -p "$root/usr/local/bin" "$root/bin" "$root/tmp" "$root/var/lib/garage"
chmod 1777 "$root/tmp"
# Every library a binary loads, the loader included, at the same path.
copy_libs() {
  ldd "$1" | grep -o '/[^ ]*' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}
cp "$garage_bin" "$root/usr/local/bin/garage"
strip "$root/usr/local/bin/garage"
copy_libs "$garage_bin"
for tool in sh grep sleep rm; do
  path="$(command -v "$tool")"
  cp -L "$path" "$root/bin/$tool"
  copy_libs "$path"
done
cp "$here/garage/entrypoint.sh" "$root/usr/local/bin/garage-entrypoint"
cat > "$context/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/bin
EXPOSE 3900
ENTRYPOINT ["/bin/sh", "/usr/local/bin/garage-entrypoint"]
DOCKERFILE
docker build --pull=false -t "$garage_tag" "$context"
docker image inspect "$garage_tag" --format '{{.Size}}' \
  | awk -v tag="$garage_tag" '{ printf "%s: %.1f MB\n", tag, $1 / 1e6 }'

# The secrets, made here once: the nodes' RPC secret, Garage's RPC secret, the S3 key.
env_file="$here/.env"
if [ "${WIKISEARCH_WRITE_ENV:-1}" = 1 ] && [ ! -e "$env_file" ]; then
  hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
  umask 077
  {
    echo "WIKISEARCH_CLUSTER_SECRET=$(hex 32)"
    echo "GARAGE_RPC_SECRET=$(hex 32)"
    echo "WIKISEARCH_S3_KEY_ID=GK$(hex 12)"
    echo "WIKISEARCH_S3_SECRET=$(hex 32)"
  } > "$env_file"
  echo "wrote the cluster's secrets to $env_file"
fi

#!/usr/bin/env bash
# Builds the wikisearch image here, pulling nothing (no registry is reachable): a
# `FROM scratch` image holding the release binaries, the shared libraries `ldd` says they
# load (with the dynamic loader), the system's CA certificates and a passwd entry, the
# same layout as deploy/Dockerfile's image (/usr/local/bin, user wikisearch, workdir
# /var/lib/wikisearch). The binaries are stripped of their symbols and debug info in the
# image (WIKISEARCH_STRIP=0 keeps them: backtraces with line numbers, a far larger image).
#
# usage: deploy/build-image.sh [TAG]   (default wikisearch:latest; builds the release
#        binaries first unless WIKISEARCH_SKIP_BUILD=1; WIKISEARCH_PROFILE=debug packs
#        target/debug instead, for a quick check of the image itself; WIKISEARCH_BIN_DIR
#        takes the binaries from another directory, e.g. the tests' target directory)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tag="${1:-wikisearch:latest}"
bins=(searcher indexer wikisearch)

profile="${WIKISEARCH_PROFILE:-release}"
if [ "${WIKISEARCH_SKIP_BUILD:-0}" != 1 ]; then
  if [ "$profile" = release ]; then
    cargo build --release --locked --bins
  else
    cargo build --locked --bins
  fi
fi

bin_dir="${WIKISEARCH_BIN_DIR:-target/$profile}"
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
root="$context/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$context/data"
# Not empty, so the --chown copy below surely creates the directory it names.
: > "$context/data/.keep"
chmod 1777 "$root/tmp"
for bin in "${bins[@]}"; do
  cp "$bin_dir/$bin" "$root/usr/local/bin/"
  if [ "${WIKISEARCH_STRIP:-1}" = 1 ]; then
    strip "$root/usr/local/bin/$bin"
  fi
  # Every library the binary loads, the loader included, at the same path.
  ldd "$bin_dir/$bin" | grep -o '/[^ ]*' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
echo 'wikisearch:x:999:999::/var/lib/wikisearch:/nonexistent' > "$root/etc/passwd"
echo 'wikisearch:x:999:' > "$root/etc/group"

cat > "$context/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
# COPY makes what it creates root-owned unless told otherwise: the data directory (and
# the named volumes Docker seeds from it) must belong to the user the binaries run as,
# so it comes from its own source, created here by the --chown copy.
COPY --chown=999:999 data/ /var/lib/wikisearch/
USER 999:999
WORKDIR /var/lib/wikisearch
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
CMD ["searcher", "--help"]
DOCKERFILE
docker build --pull=false -t "$tag" "$context"
docker image inspect "$tag" --format '{{.Size}}' \
  | awk -v tag="$tag" '{ printf "%s: %.1f MB\n", tag, $1 / 1e6 }'

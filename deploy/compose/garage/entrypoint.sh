#!/bin/sh
# The Garage container's entrypoint (dash, in the FROM-scratch image build-images.sh
# makes): writes a single-node configuration from the environment, starts the server,
# then sets the store up once, idempotently, the way tests/src/garage.rs does it (layout,
# the key the cluster uses, the bucket, the key's rights on it), and marks itself ready
# for the healthcheck. A restart with the same volume finds everything in place.
#
# Environment: GARAGE_RPC_SECRET (64 hex), WIKISEARCH_S3_KEY_ID (GK + 24 hex),
# WIKISEARCH_S3_SECRET (64 hex), WIKISEARCH_S3_BUCKET (default shards).
set -eu
: "${GARAGE_RPC_SECRET:?set GARAGE_RPC_SECRET (deploy/compose/build-images.sh writes .env)}"
: "${WIKISEARCH_S3_KEY_ID:?set WIKISEARCH_S3_KEY_ID}"
: "${WIKISEARCH_S3_SECRET:?set WIKISEARCH_S3_SECRET}"
bucket="${WIKISEARCH_S3_BUCKET:-shards}"
config=/tmp/garage.toml
ready=/tmp/ready
rm -f "$ready"

printf '%s\n' \
  'metadata_dir = "/var/lib/garage/meta"' \
  'data_dir = "/var/lib/garage/data"' \
  'db_engine = "sqlite"' \
  'replication_factor = 1' \
  'rpc_bind_addr = "127.0.0.1:3901"' \
  'rpc_public_addr = "127.0.0.1:3901"' \
  "rpc_secret = \"$GARAGE_RPC_SECRET\"" \
  '' '[s3_api]' 's3_region = "garage"' 'api_bind_addr = "0.0.0.0:3900"' \
  'root_domain = ".s3.garage"' > "$config"

garage() { /usr/local/bin/garage -c "$config" "$@"; }

garage server &
server=$!
trap 'kill -TERM "$server" 2>/dev/null' TERM INT

tries=0
until garage status >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 600 ] || { echo "garage did not answer 'status'" >&2; exit 1; }
  sleep 0.1
done

if garage status | grep -q 'NO ROLE ASSIGNED'; then
  node="$(garage node id -q)"
  garage layout assign -z dc1 -c 1G "${node%%@*}"
  garage layout apply --version 1
fi
garage key info wikisearch >/dev/null 2>&1 \
  || garage key import --yes -n wikisearch "$WIKISEARCH_S3_KEY_ID" "$WIKISEARCH_S3_SECRET"
garage bucket info "$bucket" >/dev/null 2>&1 || garage bucket create "$bucket"
garage bucket allow --read --write --owner "$bucket" --key wikisearch
: > "$ready"
echo "garage ready: bucket $bucket, key $WIKISEARCH_S3_KEY_ID"
# A TERM interrupts `wait`: wait again until the server has shut down.
while kill -0 "$server" 2>/dev/null; do wait "$server" || true; done

#!/usr/bin/env bash
# The README's test command: builds the real binaries the multi-process tests drive, then
# runs every test of the workspace.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --workspace --bins --locked
cargo test --workspace --locked

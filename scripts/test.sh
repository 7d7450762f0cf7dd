#!/usr/bin/env bash
# The README's test command: every test of the workspace. The multi-process tests build
# the binaries they drive themselves (fresh, in the tests' profile), so nothing needs
# building first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo test --workspace --locked

#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for a bounded time (default 60 s each; FUZZ_SECONDS to
# change), starting from the committed seeds. New inputs go to a scratch corpus, never
# into the repository; a crash leaves its input in fuzz/artifacts/<target>/ and fails.
# cargo-fuzz needs nightly flags: RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "--- installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in rpc_node query_limits dump_reader wikitext_clean; do
  echo "--- fuzzing $target for ${SECONDS_PER_TARGET} s"
  mkdir -p "$scratch/$target"
  log="$scratch/$target.log"
  # -O: fuzz/Cargo.toml's release profile sets the debug assertions (see there).
  if ! cargo fuzz run -O --sanitizer none "$target" "$scratch/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=4096 -timeout=20 \
    -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $target failed (a build error above, or a crash whose input is in fuzz/artifacts/$target/)"
    exit 1
  fi
  grep -E '^stat::number_of_executed_units|^Done [0-9]+ runs' "$log" || tail -n 3 "$log"
done

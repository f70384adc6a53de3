#!/usr/bin/env bash
# Fuzzes every parser of outside input for a bounded time: fuzz/run.sh [SECONDS_PER_TARGET]
#
# Builds the targets of fuzz/ with cargo-fuzz (installed if missing) on stable Rust, with
# RUSTC_BOOTSTRAP=1 because libFuzzer's sanitizer-coverage flags are nightly-only, and without
# AddressSanitizer: the code under test forbids `unsafe`, so memory errors are not what is looked
# for, and an uninstrumented build is much quicker. Each target starts from its hand-written seeds
# (fuzz/seeds/TARGET, read-only) and a working corpus kept in fuzz/corpus/TARGET (not committed).
# A crash stops the run with libFuzzer's report and the input saved under fuzz/artifacts/TARGET/;
# turn it into a unit test beside the parser.
#
# The build goes to $HUBHOOK_FUZZ_TARGET_DIR when set (e.g. a directory kept between CI runs),
# else to fuzz/target.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-20}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: fuzz/run.sh [SECONDS_PER_TARGET]  (a whole number of seconds, default 20)" >&2
  exit 2
fi

if ! command -v cargo-fuzz >/dev/null; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
if [[ -n "${HUBHOOK_FUZZ_TARGET_DIR:-}" ]]; then
  export CARGO_TARGET_DIR="$HUBHOOK_FUZZ_TARGET_DIR"
fi
fuzz=(cargo fuzz)
options=(--sanitizer none)

echo "== building fuzz targets"
start=$SECONDS
"${fuzz[@]}" build "${options[@]}"
echo "built in $((SECONDS - start)) s"

for target in $("${fuzz[@]}" list); do
  echo "== fuzzing $target for ${seconds} s"
  mkdir -p "corpus/$target"
  # -timeout: an input that takes more than 10 s is reported as a hang (a quadratic blow-up);
  # -max_len: inputs up to 64 KiB, so length limits and long inputs are reached.
  "${fuzz[@]}" run "${options[@]}" "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -max_len=65536 -print_final_stats=1 2>&1 |
    grep -E '^(INFO: (seed|A corpus)|#[0-9]+ *DONE|stat::number_of_executed_units|==[0-9]+==|SUMMARY|Running|Test unit|artifact_prefix|.*(panicked|ERROR|Error|error))' || true
  status=${PIPESTATUS[0]}
  if [[ "$status" -ne 0 ]]; then
    echo "fuzz target $target failed (exit $status); the input is under fuzz/artifacts/$target/" >&2
    exit "$status"
  fi
done
echo "== fuzzing done in $((SECONDS - start)) s"

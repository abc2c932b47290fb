#!/usr/bin/env bash
# Runs the whole logpool test suite: formatting, lints, unit tests, in-process
# router tests and the end-to-end tests (which start the real `logpool` binary).
#
# The engines the current suite needs are all embedded (tantivy, the embedded queue,
# SQLite, local files), so nothing beyond the Rust toolchain and a C compiler is
# installed here; servers started for engine tests are stopped by the trap below.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
if ! need cc; then
  echo "installing a C compiler (the bundled SQLite and zstd are built from source)" >&2
  apt-get update -qq && apt-get install -y -qq build-essential >/dev/null
fi

cleanup() {
  # Background engine servers started by this script (none yet) are stopped here.
  jobs -p | xargs -r kill 2>/dev/null || true
}
trap cleanup EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build (the logpool binary the end-to-end tests run)"
cargo build --locked -p logpool-standalone --bin logpool
echo "== cargo test"
output=$(mktemp)
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$output"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite (cargo prints one per test binary).
read -r passed failed < <(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$output" \
  | awk '{p+=$4; f+=$6} END {print p+0, f+0}')
rm -f "$output"
echo "$passed passed, $failed failed"
exit "$status"

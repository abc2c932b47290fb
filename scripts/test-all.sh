#!/usr/bin/env bash
# Runs the whole logpool test suite: formatting, lints, unit tests, in-process
# router tests, the end-to-end tests (which start the real `logpool` binary), and the
# distributed-engine tests against real servers (Pulsar protocol, OpenSearch, etcd,
# MariaDB, S3) that scripts/test-engines.sh installs, starts on 127.0.0.1 with
# throwaway data, and stops again when this script exits.
set -euo pipefail
cd "$(dirname "$0")/.."

# Ports for the engine servers, away from the defaults a developer may be using.
export LOGPOOL_TEST_PORT_BASE=${LOGPOOL_TEST_PORT_BASE:-26000}
FEATURES="logpool-e2e/distributed"
# The whole suite runs against every engine: a subset inherited from the caller's
# environment would leave the distributed, tail, DuckDB and console tests skipping
# instead of failing, so the set is fixed here and the requirement asserted below.
export LOGPOOL_TEST_ENGINES="pulsar es etcd mysql s3"

echo "== build dependencies (protoc, C compiler)"
./scripts/test-engines.sh build-deps

state_dir=$(mktemp -d "${TMPDIR:-/tmp}/logpool-engines.XXXXXX")
cleanup() {
  ./scripts/test-engines.sh stop "$state_dir" || true
  rm -rf "$state_dir"
}
trap cleanup EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings (embedded only, and with every distributed engine)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --workspace --all-targets --locked --features "$FEATURES" -- -D warnings
echo "== cargo build (the binaries the end-to-end tests run)"
cargo build --locked --workspace --bins --features "$FEATURES"

echo "== engine servers"
./scripts/test-engines.sh start "$state_dir"
# shellcheck disable=SC1091
source "$state_dir/env"
# Every engine test must run: a missing server fails it instead of skipping it.
if [[ "${LOGPOOL_REQUIRE_ENGINES:-}" != 1 ]]; then
  echo "error: the engine servers did not all start (LOGPOOL_REQUIRE_ENGINES is not set)" >&2
  exit 1
fi
for variable in LOGPOOL_TEST_PULSAR_URL LOGPOOL_TEST_PULSAR_METRICS_URL LOGPOOL_TEST_ES_URL \
  LOGPOOL_TEST_ETCD_ENDPOINTS LOGPOOL_TEST_MYSQL_URL LOGPOOL_TEST_S3_ENDPOINT LOGPOOL_TEST_PYTHON; do
  if [[ -z "${!variable:-}" ]]; then
    echo "error: $variable is not set after starting the engine servers" >&2
    exit 1
  fi
done

echo "== browser for the console test (Debian chromium, playwright-core)"
./scripts/test-browser.sh install
export LOGPOOL_TEST_CHROMIUM=/usr/bin/chromium

echo "== chart renderer and validator, nginx (Debian Go + Sprig, PyPI kubernetes-validate)"
./scripts/test-chart.sh install
echo "== syslog-ng for the Elasticsearch bulk test"
./scripts/test-shippers.sh install

echo "== cargo test"
output=$(mktemp)
set +e
cargo test --workspace --locked --no-fail-fast --features "$FEATURES" 2>&1 | tee "$output"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite (cargo prints one per test binary).
read -r passed failed < <(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$output" \
  | awk '{p+=$4; f+=$6} END {print p+0, f+0}')
rm -f "$output"
echo "$passed passed, $failed failed"
exit "$status"

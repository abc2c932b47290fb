#!/usr/bin/env bash
# Distributed-mode benchmark: the five services as separate processes on running
# Pulsar, Elasticsearch/OpenSearch, etcd, MySQL and S3 servers, driven by
# `logpool bench --url`, then each stage's engine measured alone in the same run
# (benches/distributed.rs) and the ratios printed. See BENCHMARKS.md, "Distributed
# mode".
#
#   scripts/bench-distributed.sh [--records N] [--clients C] [--batch-records B]
#                                [--index-writers K] [--paced-secs S] [--out DIR]
#                                [--query-runs R] [--no-build]
#
# Engine addresses: LOGPOOL_BENCH_{PULSAR_URL,ES_URL,ETCD_ENDPOINTS,MYSQL_URL,
# S3_ENDPOINT}, else the LOGPOOL_TEST_* ones written by scripts/test-engines.sh.
# Every name this run creates (S3 bucket, MySQL database, etcd prefix, index prefix,
# Pulsar project topics) carries a unique suffix. The Pulsar broker is reached
# through the framing relay the test broker needs (pulsar-lite).
#
# Everything started here is stopped on exit, the run's indexes, bucket and database
# are deleted, and its directory removed (reports are kept only in --out).
set -euo pipefail

records=1000000
clients=8
batch_records=1000
index_writers=1
paced_secs=10
query_runs=30
out=""
build=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --records) records="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --batch-records) batch_records="$2"; shift 2 ;;
    --index-writers) index_writers="$2"; shift 2 ;;
    --paced-secs) paced_secs="$2"; shift 2 ;;
    --query-runs) query_runs="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

pulsar="${LOGPOOL_BENCH_PULSAR_URL:-${LOGPOOL_TEST_PULSAR_URL:?set LOGPOOL_BENCH_PULSAR_URL}}"
es="${LOGPOOL_BENCH_ES_URL:-${LOGPOOL_TEST_ES_URL:?set LOGPOOL_BENCH_ES_URL}}"
etcd="${LOGPOOL_BENCH_ETCD_ENDPOINTS:-${LOGPOOL_TEST_ETCD_ENDPOINTS:?set LOGPOOL_BENCH_ETCD_ENDPOINTS}}"
mysql="${LOGPOOL_BENCH_MYSQL_URL:-${LOGPOOL_TEST_MYSQL_URL:?set LOGPOOL_BENCH_MYSQL_URL}}"
s3="${LOGPOOL_BENCH_S3_ENDPOINT:-${LOGPOOL_TEST_S3_ENDPOINT:?set LOGPOOL_BENCH_S3_ENDPOINT}}"

cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

if [[ $build == 1 ]]; then
  echo "== building (release)" >&2
  cargo build --release --workspace --bins --features logpool-e2e/distributed >&2
  cargo build --release --features distributed --bench distributed >&2
fi
# The newest build of benches/distributed.rs.
stage_bin=""
for candidate in "$target"/release/deps/distributed-*; do
  [[ -x "$candidate" && ! -d "$candidate" ]] || continue
  [[ -z "$stage_bin" || "$candidate" -nt "$stage_bin" ]] && stage_bin="$candidate"
done
[[ -x "$stage_bin" ]] || { echo "cannot build benches/distributed.rs" >&2; exit 1; }
bin="$target/release"

suffix="$(printf '%x%04x' "$$" "$RANDOM")"
work="$(mktemp -d)"
key="lpbench-operator-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
pids=()
names=()

cleanup() {
  local status=$?
  set +e
  # Newest first: the front and services before the relay they go through.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -CONT "${pids[$i]}" 2>/dev/null # loghub is paused during the stage runs
    kill -TERM "${pids[$i]}" 2>/dev/null
    for _ in $(seq 1 300); do
      kill -0 "${pids[$i]}" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "${pids[$i]}" 2>/dev/null
  done
  curl -s -o /dev/null -X DELETE "$es/lpbench${suffix}*" || true
  curl -s -o /dev/null -X DELETE "$s3/lpbench-$suffix" || true
  mysql_delete_database || true
  if [[ $status -ne 0 ]]; then
    for log in "$work"/*.log "$work"/harness.table "$work"/harness.time; do
      [[ -f "$log" ]] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT INT TERM

# mysql://user[:password]@host:port
mysql_delete_database() {
  local rest="${mysql#mysql://}" user host port
  user="${rest%%@*}"; user="${user%%:*}"
  host="${rest#*@}"; port="${host##*:}"; host="${host%%:*}"
  mysql -u "$user" -h "$host" -P "$port" --protocol=tcp \
    -e "DROP DATABASE IF EXISTS logpool_bench_$suffix" 2>/dev/null
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_ready() { # name url pid
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null "$2/readyz" && return 0
    kill -0 "$3" 2>/dev/null || { echo "$1 exited" >&2; return 1; }
    sleep 0.1
  done
  echo "$1 did not become ready" >&2
  return 1
}

# CPU ticks (user + system) of a process, 0 once it is gone.
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# Pid of the process listening on a URL's port (an engine server), if local.
listener_pid() {
  local port="${1##*:}"
  port="${port%%/*}"
  ss -ltnpH "sport = :$port" | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}

snapshot() { # file: one "name ticks" line per watched process
  : >"$1"
  for i in "${!pids[@]}"; do
    echo "${names[$i]} $(cpu_ticks "${pids[$i]}")" >>"$1"
  done
  for engine in pulsar es; do
    local pid
    pid=$(listener_pid "${!engine}" || true)
    [[ -n "$pid" ]] && echo "engine:$engine $(cpu_ticks "$pid")" >>"$1"
  done
  return 0
}

cpu_table() { # before after seconds
  local hz
  hz=$(getconf CLK_TCK)
  echo "| process | CPU s | CPU s per M records | share of one core |"
  echo "|---|---|---|---|"
  join <(sort "$1") <(sort "$2") | while read -r name before after; do
    awk -v n="$name" -v b="$before" -v a="$after" -v hz="$hz" -v r="$records" -v s="$3" \
      'BEGIN { c = (a - b) / hz; printf "| %s | %.1f | %.1f | %.0f %% |\n", n, c, c / (r / 1e6), 100 * c / s }'
  done
}

pid_of() { # name: the pid of a process started here
  local i
  for i in "${!names[@]}"; do
    [[ "${names[$i]}" == "$1" ]] && { echo "${pids[$i]}"; return 0; }
  done
  return 1
}

start() { # name binary args...
  local name="$1"
  shift
  "$@" >"$work/$name.out" 2>"$work/$name.log" &
  pids+=("$!")
  names+=("$name")
}

echo "== run $suffix in $work" >&2
curl -sf -o /dev/null -X PUT "$s3/lpbench-$suffix"

start relay "$stage_bin" relay --broker "$pulsar"
for _ in $(seq 1 100); do
  [[ -s "$work/relay.out" ]] && break
  sleep 0.1
done
relay_url=$(head -n 1 "$work/relay.out")
[[ "$relay_url" == pulsar://* ]] || { echo "the relay did not start" >&2; exit 1; }

config="$work/distributed.toml"
cat >"$config" <<EOF
data_dir = "$work/data"
[queue]
type = "pulsar"
url = "$relay_url"
[index]
type = "elasticsearch"
url = "$es"
index_prefix = "lpbench${suffix}s"
number_of_replicas = 0
[metadata]
type = "mysql"
url = "$mysql/logpool_bench_$suffix"
[coordination]
type = "etcd"
endpoints = ["$etcd"]
prefix = "/logpool-bench-$suffix"
[object_store]
type = "s3"
endpoint = "$s3"
bucket = "lpbench-$suffix"
allow_http = true
access_key_id = "test"
secret_access_key = "test"
EOF

declare -A url
for service in control-api put-datas search-api loghub tail-ws; do
  port=$(free_port)
  url[$service]="http://127.0.0.1:$port"
  LOGPOOL_LISTEN="127.0.0.1:$port" LOGPOOL_DATA_DIR="$work/$service-data" \
    LOGPOOL_ADMIN_KEY="$key" start "$service" "$bin/logpool-$service" --config "$config"
  wait_ready "$service" "${url[$service]}" "${pids[-1]}"
done
front_port=$(free_port)
front="http://127.0.0.1:$front_port"
start front "$stage_bin" front --listen "127.0.0.1:$front_port" \
  --control "${url[control-api]}" --put "${url[put-datas]}" --search "${url[search-api]}"
wait_ready front "$front" "${pids[-1]}"

echo "== logpool bench --url (services): $records records, $clients clients, $batch_records per request" >&2
snapshot "$work/cpu0"
started=$(date +%s.%N)
TIMEFORMAT='load generator CPU: user %U s, system %S s'
{ time LOGPOOL_API_KEY="$key" "$bin/logpool" bench --url "$front" --records "$records" \
  --clients "$clients" --batch-records "$batch_records" --paced-secs "$paced_secs" \
  --query-runs "$query_runs" \
  --no-baseline --json >"$work/harness.json" 2>"$work/harness.table"; } 2>"$work/harness.time"
elapsed=$(awk -v a="$(date +%s.%N)" -v b="$started" 'BEGIN { printf "%.1f", a - b }')
snapshot "$work/cpu1"

echo "== engines alone (same records, batches, concurrency)" >&2
# Loghub is paused, so that put-datas alone runs without the index engine indexing
# its records (the harness has waited until everything it sent was indexed).
kill -STOP "$(pid_of loghub)"
watch="relay=$(pid_of relay),put-datas=$(pid_of put-datas)"
for engine in pulsar es; do
  pid=$(listener_pid "${!engine}" || true)
  [[ -n "$pid" ]] && watch="$watch,$engine=$pid"
done
LOGPOOL_API_KEY="$key" "$stage_bin" engines --watch "$watch" --config "$config" \
  --harness "$work/harness.json" --put-url "${url[put-datas]}" --control-url "${url[control-api]}" \
  --index-prefix "lpbench${suffix}e" --records "$records" --clients "$clients" \
  --batch-records "$batch_records" --index-writers "$index_writers" --query-runs "$query_runs" \
  >"$work/stages.table" 2>"$work/stages.log"

cat "$work/harness.table"
echo
echo "CPU during the harness run (${elapsed%.*} s wall, all phases):"
cpu_table "$work/cpu0" "$work/cpu1" "$elapsed"
cat "$work/harness.time"
echo
cat "$work/stages.table"
tail -n 1 "$work/stages.log"
if [[ -n "$out" ]]; then
  mkdir -p "$out"
  cp "$work"/harness.json "$work"/harness.table "$work"/stages.table "$work"/stages.log \
    "$work"/cpu0 "$work"/cpu1 "$out"/
fi

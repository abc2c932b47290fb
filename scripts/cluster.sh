#!/usr/bin/env bash
# A local distributed logpool in one command: the engine servers (as the test suite
# starts them: a Pulsar-protocol broker, OpenSearch-compatible search, etcd, MariaDB,
# S3), the five services as separate processes, and the nginx gateway in front of
# them, all on 127.0.0.1. The services' logpool.toml and the gateway's nginx.conf are
# rendered from the Helm chart (helm/logpool) with local values, so this runs the
# chart's own configuration.
#
#   scripts/cluster.sh up [STATE_DIR]      build, start everything, print the URL and key
#   scripts/cluster.sh down [STATE_DIR]    stop everything `up` started there
#   scripts/cluster.sh status [STATE_DIR]  which of the processes are running
#
# STATE_DIR (default: .cluster in the repository) holds the configs, data, logs and
# pids; `up` writes STATE_DIR/cluster.env (LOGPOOL_URL, LOGPOOL_API_KEY and KEY, as
# the README's examples name the key) to source.
#
# Settings (environment; not LOGPOOL_*, which the services read as configuration):
#   CLUSTER_GATEWAY_PORT  the gateway's port (default 8080, where the README's
#                              curl examples and `logpool --url` look)
#   CLUSTER_PORT_BASE  ports BASE..BASE+6 for the engines, BASE+9 for the
#                              broker relay and BASE+11..15 for the services (default 28000)
#   LOGPOOL_ADMIN_KEY          the operator key (default: generated, kept in STATE_DIR)
#   CLUSTER_NO_BUILD=1 use the service binaries already built
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

command=${1:-}
state=${2:-$repo/.cluster}
base=${CLUSTER_PORT_BASE:-28000}
target=${CARGO_TARGET_DIR:-$repo/target}
services=(control-api put-datas search-api tail-ws loghub)
# Service ports: BASE+11.. in the order of `services`.
declare -A port_of=([control-api]=$((base + 11)) [put-datas]=$((base + 12))
  [search-api]=$((base + 13)) [tail-ws]=$((base + 14)) [loghub]=$((base + 15)))
gateway_port=${CLUSTER_GATEWAY_PORT:-8080}
relay_port=$((base + 9))

log() { echo "cluster: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# --- processes: started in their own session, pid (and start time) kept in STATE ---

start_process() { # name log command...
  local name="$1" logfile="$2"
  shift 2
  setsid "$@" </dev/null >"$logfile" 2>&1 &
  local pid=$!
  echo "$pid $(awk '{print $22}' "/proc/$pid/stat" 2>/dev/null)" >"$state/pids/$name.pid"
}

# The pid recorded for `name`, if that very process (same start time) still runs.
running_pid() {
  local file="$state/pids/$1.pid" pid started
  [[ -f "$file" ]] || return 1
  read -r pid started <"$file"
  [[ -n "$pid" && -e /proc/$pid ]] || return 1
  [[ "$(awk '{print $22}' "/proc/$pid/stat" 2>/dev/null)" == "$started" ]] || return 1
  echo "$pid"
}

stop_process() {
  local name="$1" pid
  if pid=$(running_pid "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
      [[ -e /proc/$pid ]] || break
      sleep 0.1
    done
    if [[ -e /proc/$pid ]]; then
      log "$name did not stop in 30 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name"
  fi
  rm -f "$state/pids/$name.pid"
}

wait_http() { # name url
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null "$2" && return 0
    running_pid "$1" >/dev/null || {
      tail -n 30 "$state/logs/$1.log" >&2
      die "$1 exited"
    }
    sleep 0.1
  done
  tail -n 30 "$state/logs/$1.log" >&2
  die "$1 did not answer $2 within a minute"
}

# --- up -------------------------------------------------------------------------------

build() {
  [[ "${CLUSTER_NO_BUILD:-}" == 1 ]] && return 0
  log "building the services (every distributed engine)"
  cargo build --workspace --bins --features logpool-e2e/distributed >&2
}

# The broker relay: the `relay` mode of benches/distributed.rs, built if needed. Its
# path comes from cargo (tests/distributed.rs builds a binary of the same name).
relay_binary() {
  local path
  path=$(cargo build --features distributed --bench distributed --message-format=json-render-diagnostics |
    python3 -c 'import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("executable") \
            and "bench" in message["target"]["kind"]:
        print(message["executable"])')
  [[ -x "$path" ]] || die "the relay did not build (cargo build --features distributed --bench distributed)"
  echo "$path"
}

# Values for the chart: the engines and services on 127.0.0.1.
write_local_values() {
  local mysql_rest="${LOGPOOL_TEST_MYSQL_URL#mysql://}"
  local mysql_user="${mysql_rest%%@*}" mysql_host="${mysql_rest#*@}"
  cat >"$state/local-values.yaml" <<EOF
engines:
  pulsar: {url: "pulsar://127.0.0.1:$relay_port", metricsUrl: "$LOGPOOL_TEST_PULSAR_METRICS_URL"}
  elasticsearch: {url: "$LOGPOOL_TEST_ES_URL", indexPrefix: logpool-cluster, numberOfReplicas: 0}
  etcd: {endpoints: ["$LOGPOOL_TEST_ETCD_ENDPOINTS"], prefix: /logpool-cluster}
  mysql: {user: "${mysql_user%%:*}", host: "${mysql_host%%:*}", port: ${mysql_host##*:}, database: logpool_cluster}
  s3: {endpoint: "$LOGPOOL_TEST_S3_ENDPOINT", bucket: logpool-cluster, allowHttp: true}
config:
  loghub: {commit_interval_ms: 500}
  http: {trusted_proxies: ["127.0.0.1"]}
gateway:
  listenAddress: 127.0.0.1
  port: $gateway_port
  runDir: "$state/nginx"
  accessLog: "$state/logs/gateway-access.log"
  errorLog: "$state/logs/gateway.log"
  workerProcesses: 1
  workerConnections: 1024
  upstreams:
    controlApi: "127.0.0.1:${port_of[control-api]}"
    putDatas: "127.0.0.1:${port_of[put-datas]}"
    searchApi: "127.0.0.1:${port_of[search-api]}"
    tailWs: "127.0.0.1:${port_of[tail-ws]}"
EOF
}

up() {
  mkdir -p "$state"/{pids,logs,nginx,data}
  state=$(cd "$state" && pwd)
  for name in relay "${services[@]}" gateway; do
    running_pid "$name" >/dev/null && die "$name is already running from $state (scripts/cluster.sh down first)"
  done
  # A start that fails half-way stops what it had started.
  trap 'status=$?; if [[ $status -ne 0 ]]; then log "start failed; stopping what was started"; down; fi' EXIT
  build
  ./scripts/test-chart.sh install
  local renderer
  renderer=$(./scripts/test-chart.sh build "$target/helm-render")

  log "starting the engine servers"
  LOGPOOL_TEST_PORT_BASE=$base ./scripts/test-engines.sh start "$state/engines"
  # shellcheck disable=SC1091
  source "$state/engines/env"
  curl -sf -o /dev/null -X PUT "$LOGPOOL_TEST_S3_ENDPOINT/logpool-cluster" || true

  local key="${LOGPOOL_ADMIN_KEY:-}"
  if [[ -z "$key" ]]; then
    [[ -f "$state/operator-key" ]] || echo "lpa_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$state/operator-key"
    key=$(cat "$state/operator-key")
  fi

  write_local_values
  "$renderer" -chart helm/logpool -f "$state/local-values.yaml" -config-key logpool.toml >"$state/logpool.toml"
  "$renderer" -chart helm/logpool -f "$state/local-values.yaml" -config-key nginx.conf >"$state/nginx.conf"

  log "starting the broker relay"
  local relay
  relay=$(relay_binary)
  start_process relay "$state/logs/relay.log" "$relay" relay \
    --broker "$LOGPOOL_TEST_PULSAR_URL" --listen "127.0.0.1:$relay_port"

  local bin="$target/debug" service
  for service in "${services[@]}"; do
    log "starting $service on 127.0.0.1:${port_of[$service]}"
    # The chart passes S3 keys as AWS_* variables; moto takes any.
    LOGPOOL_LISTEN="127.0.0.1:${port_of[$service]}" LOGPOOL_DATA_DIR="$state/data/$service" \
      LOGPOOL_ADMIN_KEY="$key" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
      start_process "$service" "$state/logs/$service.log" "$bin/logpool-$service" --config "$state/logpool.toml"
    wait_http "$service" "http://127.0.0.1:${port_of[$service]}/readyz"
  done

  log "starting the nginx gateway on 127.0.0.1:$gateway_port"
  local nginx
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  start_process gateway "$state/logs/gateway.out" "$nginx" -c "$state/nginx.conf" -p "$state/nginx"
  wait_http gateway "http://127.0.0.1:$gateway_port/gateway/healthz"

  local url="http://127.0.0.1:$gateway_port"
  printf 'export LOGPOOL_URL=%s\nexport LOGPOOL_API_KEY=%s\nexport KEY=%s\n' "$url" "$key" "$key" \
    >"$state/cluster.env"
  trap - EXIT
  cat <<EOF

logpool (distributed) is up:
  URL           $url   (console: $url/)
  operator key  $key

  source $state/cluster.env     # sets LOGPOOL_URL, LOGPOOL_API_KEY and KEY
  scripts/cluster.sh down${2:+ $state}
EOF
}

down() {
  [[ -d "$state" ]] || die "no cluster state in $state"
  local i
  # The gateway first, then the services, then the relay they reach the broker by.
  stop_process gateway
  for ((i = ${#services[@]} - 1; i >= 0; i--)); do
    stop_process "${services[$i]}"
  done
  stop_process relay
  if [[ -d "$state/engines" ]]; then
    ./scripts/test-engines.sh stop "$state/engines"
  fi
  rm -f "$state/cluster.env"
}

status() {
  local name
  for name in relay "${services[@]}" gateway; do
    if pid=$(running_pid "$name"); then echo "$name running (pid $pid)"; else echo "$name stopped"; fi
  done
  [[ -d "$state/engines" ]] && ./scripts/test-engines.sh status "$state/engines"
  return 0
}

case "$command" in
  up) up "$@" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status [STATE_DIR]" >&2; exit 2 ;;
esac

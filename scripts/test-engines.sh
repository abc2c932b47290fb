#!/usr/bin/env bash
# Installs, starts and stops the real engine servers that the distributed-engine tests
# (cargo features pulsar, elasticsearch, etcd, mysql, s3) talk to, all on 127.0.0.1
# with throwaway data under one state directory.
#
# Usage:
#   scripts/test-engines.sh build-deps          install build-time packages (protoc, cc, OpenSSL)
#   scripts/test-engines.sh install             install the engines (only what is missing)
#   scripts/test-engines.sh start <state-dir>   install, start, wait, write <state-dir>/env
#   scripts/test-engines.sh stop  <state-dir>   stop what `start` started there
#   scripts/test-engines.sh status <state-dir>  show which of them are running
#
# After `start`, `source <state-dir>/env` exports the LOGPOOL_TEST_* variables the
# tests read (LOGPOOL_TEST_PULSAR_URL, _ES_URL, _ETCD_ENDPOINTS, _MYSQL_URL,
# _S3_ENDPOINT, and _PYTHON, the interpreter that has pulsar-client), plus
# LOGPOOL_REQUIRE_ENGINES=1 when all five engines were started.
#
# Engines (Debian and PyPI packages):
#   pulsar-lite   PyPI pulsar-lite (its packaged broker binary), plus pulsar-client and
#                 zstandard for the message-format test
#   osmem-server  PyPI osmem-server (in-memory OpenSearch-compatible API)
#   etcd          Debian etcd-server
#   mariadb       Debian mariadb-server (root over TCP without a password)
#   moto          PyPI moto[server] (S3 API)
#
# Settings (environment):
#   LOGPOOL_TEST_PORT_BASE      use ports BASE..BASE+6 instead of the defaults, in the
#                               order pulsar, pulsar metrics, es, etcd, etcd peer,
#                               mysql, s3
#   LOGPOOL_TEST_PULSAR_PORT (6650)  LOGPOOL_TEST_PULSAR_METRICS_PORT (18080)
#   LOGPOOL_TEST_ES_PORT (9200)      LOGPOOL_TEST_ETCD_PORT (2379)
#   LOGPOOL_TEST_ETCD_PEER_PORT (2380)  LOGPOOL_TEST_MYSQL_PORT (3306)
#   LOGPOOL_TEST_S3_PORT (5000)      per-engine ports; they win over the base
#   LOGPOOL_TEST_ENGINES        subset to start, e.g. "etcd mysql"
#                               (default "pulsar es etcd mysql s3")
#   LOGPOOL_TEST_ENGINE_WAIT_S  how long each server may take to answer (default 90)
#   LOGPOOL_TEST_KEEP_DATA=1    `stop` keeps the data directories (logs are always kept)
#   LOGPOOL_TEST_PYTHON         the Python whose pip installs the PyPI engines (python3)
#
# A port already in use is an error (never silently another port). Each server logs
# to <state-dir>/<name>.log; when one fails to come up its log tail is printed and
# everything this run started is stopped again. Servers run in their own session, so
# they outlive this script until `stop`; their pids (with start times, so a reused pid
# is never killed) are kept in <state-dir>/<name>.pid.
set -euo pipefail

PYTHON=${LOGPOOL_TEST_PYTHON:-python3}
WAIT_S=${LOGPOOL_TEST_ENGINE_WAIT_S:-90}
ALL_ENGINES="pulsar es etcd mysql s3"
ENGINES=${LOGPOOL_TEST_ENGINES:-$ALL_ENGINES}

# PyPI requirements. The brokers are pinned to the versions the tests were written
# against (pulsar-lite's framing quirks are version-specific).
PIP_PULSAR=("pulsar-lite==0.2.0" "pulsar-client>=3" "zstandard")
PIP_ES=("osmem-server==0.1.6")
PIP_S3=("moto[server]>=5")
# Clients nobody here wrote: a WebSocket client for the live tail tests
# (tests/tail_ws.rs), DuckDB, an OpenAPI validator (tests/openapi.rs), and the
# Elasticsearch client for the bulk ingest test (tests/es_bulk.rs; 7.13.4 is the
# last release that does not refuse servers other than Elastic's own), and the
# OpenTelemetry SDK's OTLP/HTTP exporter and python-logging-loki
# (tests/shipper_protocols.rs), and aiosmtpd, the SMTP server that receives alert
# emails (tests/alerts.rs). The benchmark's ClickHouse peer (chdb) is not installed
# here: it brings NumPy 2, which the elasticsearch 7.13 client cannot import.
PIP_TEST_CLIENTS=("websockets==15.0.1" "duckdb==2.0.0" "openapi-spec-validator==0.9.0"
  "elasticsearch==7.13.4" "aiosmtpd==1.4.6"
  "opentelemetry-sdk==1.45.2" "opentelemetry-exporter-otlp-proto-http==1.45.2" "python-logging-loki==0.3.1")

log() { echo "test-engines: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

wants() { [[ " $ENGINES " == *" $1 "* ]]; }

# --- ports ----------------------------------------------------------------------------

port_of() { # <engine-key> <default> <offset-from-base>
  local var="LOGPOOL_TEST_${1}_PORT"
  if [[ -n "${!var:-}" ]]; then
    echo "${!var}"
  elif [[ -n "${LOGPOOL_TEST_PORT_BASE:-}" ]]; then
    echo $((LOGPOOL_TEST_PORT_BASE + $3))
  else
    echo "$2"
  fi
}
PULSAR_PORT=$(port_of PULSAR 6650 0)
PULSAR_METRICS_PORT=$(port_of PULSAR_METRICS 18080 1)
ES_PORT=$(port_of ES 9200 2)
ETCD_PORT=$(port_of ETCD 2379 3)
ETCD_PEER_PORT=$(port_of ETCD_PEER 2380 4)
MYSQL_PORT=$(port_of MYSQL 3306 5)
S3_PORT=$(port_of S3 5000 6)

port_in_use() { # <port>: true when anything listens on it, on any address
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Htln "( sport = :$1 )" 2>/dev/null)" ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

check_port_free() { # <port> <what>
  if port_in_use "$1"; then
    local who=""
    command -v ss >/dev/null 2>&1 && who=$(ss -Htlnp "( sport = :$1 )" 2>/dev/null | head -n 3)
    die "port $1 ($2) is already in use${who:+:
$who}
  pick free ports with LOGPOOL_TEST_PORT_BASE=N or the per-engine LOGPOOL_TEST_*_PORT variables"
  fi
}

# --- installation ---------------------------------------------------------------------

APT_UPDATED=0
apt_install() { # <package>...: installs them quietly (callers pass only missing ones)
  [[ $# -gt 0 ]] || return 0
  local out
  out=$(mktemp)
  log "installing Debian packages: $*"
  # Debian's maintainer scripts would start mariadb/etcd as system services on the
  # default ports; a policy-rc.d that denies every start prevents that.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
  fi
  local status=0
  {
    if [[ $APT_UPDATED == 0 ]]; then
      apt-get update -qq && APT_UPDATED=1
    fi &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
  } >"$out" 2>&1 || status=$?
  [[ $made_policy == 1 ]] && rm -f "$policy"
  if [[ $status != 0 ]]; then
    tail -n 30 "$out" >&2
    rm -f "$out"
    die "apt-get install $* failed"
  fi
  rm -f "$out"
}

# Prints the requirements (pip syntax) that the interpreter does not satisfy yet,
# extras included; it asks no registry.
pip_missing() {
  "$PYTHON" - "$@" <<'EOF'
import sys
from importlib import metadata
try:
    from pip._vendor.packaging.requirements import Requirement
except ImportError:  # no way to check: report all, pip sorts it out
    print("\n".join(sys.argv[1:]))
    sys.exit(0)

def satisfied(req, seen):
    if req.name.lower() in seen:
        return True
    seen.add(req.name.lower())
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return False
    if req.specifier and not req.specifier.contains(version, prereleases=True):
        return False
    for extra in req.extras:
        for dep in metadata.requires(req.name) or []:
            dep = Requirement(dep)
            if dep.marker and not dep.marker.evaluate({"extra": extra}):
                continue
            if dep.marker is None:
                continue
            if not satisfied(Requirement(str(dep).split(";")[0]), seen):
                return False
    return True

for spec in sys.argv[1:]:
    if not satisfied(Requirement(spec), set()):
        print(spec)
EOF
}

pip_install() { # <requirement>...: installs those not yet satisfied
  command -v "$PYTHON" >/dev/null 2>&1 || die "no Python interpreter '$PYTHON' (set LOGPOOL_TEST_PYTHON)"
  local missing
  mapfile -t missing < <(pip_missing "$@")
  [[ ${#missing[@]} -gt 0 ]] || return 0
  log "installing PyPI packages: ${missing[*]}"
  local out
  out=$(mktemp)
  if ! PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$PYTHON" -m pip install --quiet "${missing[@]}" >"$out" 2>&1; then
    tail -n 30 "$out" >&2
    rm -f "$out"
    die "pip install ${missing[*]} failed"
  fi
  rm -f "$out"
}

build_deps() {
  local pkgs=()
  command -v protoc >/dev/null 2>&1 || pkgs+=(protobuf-compiler)
  # The etcd client's protos import protobuf's well-known types, which come with
  # libprotobuf-dev (only recommended by protobuf-compiler).
  [[ -f /usr/include/google/protobuf/descriptor.proto ]] || pkgs+=(libprotobuf-dev)
  # The pulsar client's TLS links OpenSSL.
  command -v pkg-config >/dev/null 2>&1 || pkgs+=(pkg-config)
  [[ -f /usr/include/openssl/ssl.h ]] || pkgs+=(libssl-dev)
  command -v cc >/dev/null 2>&1 || pkgs+=(build-essential)
  apt_install "${pkgs[@]}"
}

install_engines() {
  local pkgs=()
  command -v curl >/dev/null 2>&1 || pkgs+=(curl)
  if wants etcd; then
    command -v etcd >/dev/null 2>&1 || pkgs+=(etcd-server)
  fi
  if wants mysql; then
    [[ -x /usr/sbin/mariadbd ]] || command -v mariadbd >/dev/null 2>&1 || pkgs+=(mariadb-server)
    command -v mariadb >/dev/null 2>&1 || pkgs+=(mariadb-client)
  fi
  apt_install "${pkgs[@]}"
  local reqs=()
  wants pulsar && reqs+=("${PIP_PULSAR[@]}")
  wants es && reqs+=("${PIP_ES[@]}")
  wants s3 && reqs+=("${PIP_S3[@]}")
  reqs+=("${PIP_TEST_CLIENTS[@]}")
  [[ ${#reqs[@]} -eq 0 ]] || pip_install "${reqs[@]}"
}

# Path of a binary shipped inside a Python package: <module> <relative path>.
packaged_binary() {
  "$PYTHON" -c 'import importlib, os, sys
m = importlib.import_module(sys.argv[1])
print(os.path.join(os.path.dirname(m.__file__), sys.argv[2]))' "$1" "$2"
}

# --- processes ------------------------------------------------------------------------

# Prints the kernel's start time of a live process (field 22 of /proc/<pid>/stat);
# fails for a missing process and for a zombie (dead, only not yet reaped).
start_time_of() { # <pid>
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # The command name (field 2) may contain spaces: cut after its closing parenthesis,
  # which leaves field 3 (the state) first and field 22 as the 20th word.
  stat=${stat##*) }
  local fields
  read -r -a fields <<<"$stat"
  [[ ${fields[0]} != Z ]] || return 1
  echo "${fields[19]}"
}

# True when the pid file names a live process that is still the one we started.
alive() { # <pid-file>
  [[ -f $1 ]] || return 1
  local pid started now
  read -r pid started <"$1" || return 1
  [[ -n $pid && -n $started ]] || return 1
  now=$(start_time_of "$pid") || return 1
  [[ $now == "$started" ]]
}

launch() { # <name> <command>...: starts it in its own session, logging to <name>.log
  local name=$1
  shift
  # setsid gives the server its own session, so a Ctrl-C or a CI step ending does not
  # signal it; the shell has no job control here, so setsid execs in place and $! is
  # the server itself.
  setsid "$@" </dev/null >>"$STATE/$name.log" 2>&1 &
  local pid=$!
  # Not this shell's job any more: no "Killed" notices, no waiting for it at exit.
  disown "$pid" 2>/dev/null || true
  local started
  started=$(start_time_of "$pid") || started=""
  echo "$pid $started" >"$STATE/$name.pid"
  STARTED+=("$name")
}

log_tail() { # <name>
  if [[ -f "$STATE/$1.log" ]]; then
    log "last lines of $STATE/$1.log:"
    tail -n 25 "$STATE/$1.log" | sed 's/^/    /' >&2
  fi
}

# Waits until <probe> succeeds, failing early if the server died.
wait_for() { # <name> <what> <probe command>...
  local name=$1 what=$2
  shift 2
  local deadline=$((SECONDS + WAIT_S))
  while ! "$@" >/dev/null 2>&1; do
    if ! alive "$STATE/$name.pid"; then
      log_tail "$name"
      fail_start "$name exited before answering on $what"
    fi
    if ((SECONDS >= deadline)); then
      log_tail "$name"
      fail_start "$name did not answer on $what within ${WAIT_S}s"
    fi
    sleep 0.3
  done
}

fail_start() {
  log "error: $*"
  # mariadbd ignores a SIGTERM that arrives before its signal thread exists, which is
  # likely here (it may still be starting); its data is thrown away, so a short grace.
  stop_all 3 quiet
  exit 1
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
http_ok() { curl -fsS --max-time 2 -o /dev/null "$1"; }
http_has() { curl -fsS --max-time 2 "$1" | grep -q "$2"; }

# --- the engines ----------------------------------------------------------------------

start_pulsar() {
  local dir="$STATE/pulsar"
  rm -rf "$dir" && mkdir -p "$dir/db"
  # default_partitions = 0: auto-created topics stay non-partitioned, so the queue's
  # `{project}-partition-{k}` names are plain topics. Metrics move off 8080.
  cat >"$dir/pulsar-lite.toml" <<EOF
default_partitions = 0

[metrics]
enabled = true
addr = "127.0.0.1:$PULSAR_METRICS_PORT"
EOF
  launch pulsar "$(packaged_binary pulsar_lite bin/pulsar-lite)" \
    --addr "127.0.0.1:$PULSAR_PORT" --db-path "$dir/db" --config "$dir/pulsar-lite.toml"
}

start_es() {
  launch osmem "$(packaged_binary osmem_server bin/osmem-server)" \
    -addr "127.0.0.1:$ES_PORT" -no-stdin-watch
}

start_etcd() {
  local dir="$STATE/etcd"
  rm -rf "$dir" && mkdir -p "$dir"
  local peer="http://127.0.0.1:$ETCD_PEER_PORT" client="http://127.0.0.1:$ETCD_PORT"
  launch etcd etcd --name logpool-test --data-dir "$dir/data" \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "logpool-test=$peer" --initial-cluster-state new \
    --logger zap --log-outputs stderr
}

MYSQLD=""
start_mysql() {
  local dir="$STATE/mariadb"
  rm -rf "$dir" && mkdir -p "$dir"
  MYSQLD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
  # --no-defaults: the system's my.cnf (socket under /run/mysqld, its own datadir)
  # must not leak into a throwaway server.
  if ! mariadb-install-db --no-defaults --datadir="$dir/data" --user="$(id -un)" \
    --auth-root-authentication-method=normal --skip-test-db \
    >>"$STATE/mariadb.log" 2>&1; then
    log_tail mariadb
    fail_start "mariadb-install-db failed"
  fi
  # --skip-name-resolve: TCP clients match root@127.0.0.1 (created below) by address.
  launch mariadb "$MYSQLD" --no-defaults --datadir="$dir/data" --user="$(id -un)" \
    --socket="$dir/mysqld.sock" --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
    --pid-file="$dir/mariadbd.pid" --skip-name-resolve --skip-log-bin \
    --innodb-buffer-pool-size=64M
}

mysql_socket_ready() {
  mariadb --no-defaults --socket="$STATE/mariadb/mysqld.sock" -uroot -e 'SELECT 1'
}
mysql_tcp_ready() {
  mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$MYSQL_PORT" -uroot -e 'SELECT 1'
}

finish_mysql() {
  # The install creates root@localhost only (socket); the tests log in over TCP.
  if ! mariadb --no-defaults --socket="$STATE/mariadb/mysqld.sock" -uroot -e "
      CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
      GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
      FLUSH PRIVILEGES;" >>"$STATE/mariadb.log" 2>&1; then
    log_tail mariadb
    fail_start "could not grant root@127.0.0.1 on mariadb"
  fi
}

start_s3() {
  launch moto "$PYTHON" -m moto.server -H 127.0.0.1 -p "$S3_PORT"
}

# --- subcommands ----------------------------------------------------------------------

set_state() { # <state-dir>
  [[ -n "${1:-}" ]] || die "missing <state-dir>"
  mkdir -p "$1"
  STATE=$(cd "$1" && pwd)
}

NAMES=(pulsar osmem etcd mariadb moto)

signal_one() { # <name> <signal>: signals it if it is still the process we started
  local file="$STATE/$1.pid" pid
  alive "$file" || return 0
  read -r pid _ <"$file"
  kill "-$2" "$pid" 2>/dev/null || true
}

# Stops them in parallel: SIGTERM, then SIGKILL for any still there after <grace>
# seconds. Never fails.
stop_all() { # <grace-seconds> [quiet]
  local grace=$1 name
  for name in "${NAMES[@]}"; do signal_one "$name" TERM; done
  local deadline=$((SECONDS + grace)) running=1
  while ((running)) && ((SECONDS < deadline)); do
    running=0
    for name in "${NAMES[@]}"; do
      if alive "$STATE/$name.pid"; then running=1; fi
    done
    if ((running)); then sleep 0.2; fi
  done
  for name in "${NAMES[@]}"; do
    if alive "$STATE/$name.pid"; then
      [[ "${2:-}" == quiet ]] || log "$name ignored SIGTERM for ${grace}s; killing it"
      signal_one "$name" KILL
      sleep 0.5 # lets the kernel release its files before the data is removed
    fi
    rm -f "$STATE/$name.pid"
  done
  if [[ "${LOGPOOL_TEST_KEEP_DATA:-0}" != 1 ]]; then
    rm -rf "$STATE/pulsar" "$STATE/etcd" "$STATE/mariadb"
  fi
  rm -f "$STATE/env"
  [[ "${2:-}" == quiet ]] || log "stopped (logs kept in $STATE)"
}

cmd_start() {
  set_state "$1"
  local name
  for name in "${NAMES[@]}"; do
    if alive "$STATE/$name.pid"; then
      die "$name is already running from $STATE; run: $0 stop $STATE"
    fi
    rm -f "$STATE/$name.pid"
  done
  for engine in $ENGINES; do
    [[ " $ALL_ENGINES " == *" $engine "* ]] || die "unknown engine '$engine' in LOGPOOL_TEST_ENGINES (known: $ALL_ENGINES)"
  done
  # Refuse taken ports before installing or starting anything.
  if wants pulsar; then
    check_port_free "$PULSAR_PORT" "pulsar-lite"
    check_port_free "$PULSAR_METRICS_PORT" "pulsar-lite metrics"
  fi
  if wants es; then check_port_free "$ES_PORT" "osmem-server"; fi
  if wants etcd; then
    check_port_free "$ETCD_PORT" "etcd client"
    check_port_free "$ETCD_PEER_PORT" "etcd peer"
  fi
  if wants mysql; then check_port_free "$MYSQL_PORT" "mariadb"; fi
  if wants s3; then check_port_free "$S3_PORT" "moto"; fi

  install_engines
  rm -f "$STATE/env"
  for name in "${NAMES[@]}"; do : >"$STATE/$name.log"; done

  # Start them all, then wait for them all: their start-ups overlap.
  STARTED=()
  trap 'fail_start "interrupted"' INT TERM
  wants pulsar && start_pulsar
  wants es && start_es
  wants etcd && start_etcd
  wants mysql && start_mysql
  wants s3 && start_s3

  if wants pulsar; then wait_for pulsar "127.0.0.1:$PULSAR_PORT" tcp_open "$PULSAR_PORT"; fi
  if wants es; then wait_for osmem "http://127.0.0.1:$ES_PORT" http_ok "http://127.0.0.1:$ES_PORT/"; fi
  if wants etcd; then
    wait_for etcd "http://127.0.0.1:$ETCD_PORT" http_has "http://127.0.0.1:$ETCD_PORT/health" '"health":"true"'
  fi
  if wants mysql; then
    wait_for mariadb "$STATE/mariadb/mysqld.sock" mysql_socket_ready
    finish_mysql
    wait_for mariadb "127.0.0.1:$MYSQL_PORT" mysql_tcp_ready
  fi
  if wants s3; then wait_for moto "http://127.0.0.1:$S3_PORT" http_ok "http://127.0.0.1:$S3_PORT/"; fi
  trap - INT TERM

  local python_path
  python_path=$("$PYTHON" -c 'import sys; print(sys.executable)')
  {
    echo "# Written by scripts/test-engines.sh start; source it before the engine tests."
    wants pulsar && echo "export LOGPOOL_TEST_PULSAR_URL=pulsar://127.0.0.1:$PULSAR_PORT"
    wants pulsar && echo "export LOGPOOL_TEST_PULSAR_METRICS_URL=http://127.0.0.1:$PULSAR_METRICS_PORT/metrics"
    wants es && echo "export LOGPOOL_TEST_ES_URL=http://127.0.0.1:$ES_PORT"
    wants etcd && echo "export LOGPOOL_TEST_ETCD_ENDPOINTS=http://127.0.0.1:$ETCD_PORT"
    wants mysql && echo "export LOGPOOL_TEST_MYSQL_URL=mysql://root@127.0.0.1:$MYSQL_PORT"
    wants s3 && echo "export LOGPOOL_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
    echo "export LOGPOOL_TEST_PYTHON=$python_path"
    # With every engine up, a test that finds no server must fail rather than skip
    # (crates/engines/src/test_env.rs); with a subset, the others skip visibly.
    if wants pulsar && wants es && wants etcd && wants mysql && wants s3; then
      echo "export LOGPOOL_REQUIRE_ENGINES=1"
    fi
  } >"$STATE/env.tmp"
  mv "$STATE/env.tmp" "$STATE/env"
  log "started: $ENGINES; run: source $STATE/env"
}

cmd_status() {
  set_state "$1"
  local name pid
  for name in "${NAMES[@]}"; do
    if alive "$STATE/$name.pid"; then
      read -r pid _ <"$STATE/$name.pid"
      echo "$name: running (pid $pid)"
    else
      echo "$name: not running"
    fi
  done
}

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
build-deps) build_deps ;;
install) install_engines ;;
start) cmd_start "${2:-}" ;;
stop)
  set_state "${2:-}"
  stop_all 20
  ;;
status) cmd_status "${2:-}" ;;
*) usage ;;
esac

#!/usr/bin/env bash
# Installs the log shippers the Elasticsearch bulk and syslog tests (tests/es_bulk.rs,
# tests/syslog.rs) drive besides the Python client (which scripts/test-engines.sh
# installs with the other test clients): Debian's syslog-ng with its HTTP module and
# the configuration library that defines `elasticsearch-http()`, and rsyslog.
# Usage: scripts/test-shippers.sh install
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "test-shippers: $*" >&2; }

# Where rsyslog is unpacked (tests/syslog.rs looks there when the system has none).
RSYSLOG_DIR=/opt/rsyslog

install() {
  if [ ! -x /usr/sbin/syslog-ng ] \
    || ! ls /usr/lib/syslog-ng/*/libhttp.so >/dev/null 2>&1 \
    || [ ! -e /usr/share/syslog-ng/include/scl/elasticsearch/elastic-http.conf ]; then
    log "installing Debian syslog-ng-core, syslog-ng-mod-http and syslog-ng-scl"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
      syslog-ng-core syslog-ng-mod-http syslog-ng-scl >/dev/null
  fi
  # rsyslog's Debian package conflicts with syslog-ng's (each is the system's log
  # daemon), so its binary and modules are unpacked beside the system instead,
  # with its libraries installed from Debian.
  if [ ! -x /usr/sbin/rsyslogd ] && [ ! -x "$RSYSLOG_DIR/usr/sbin/rsyslogd" ]; then
    log "unpacking Debian rsyslog into $RSYSLOG_DIR"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
      libestr0 libfastjson4 liblognorm5 libsystemd0 libuuid1 libzstd1 zlib1g >/dev/null
    local download
    download="$(mktemp -d)"
    (cd "$download" && apt-get download rsyslog >/dev/null 2>&1)
    $sudo mkdir -p "$RSYSLOG_DIR"
    $sudo dpkg -x "$download"/rsyslog_*.deb "$RSYSLOG_DIR"
    rm -rf "$download"
  fi
}

case "${1:-}" in
  install) install ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac

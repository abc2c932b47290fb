#!/usr/bin/env bash
# Installs the log shippers the Elasticsearch bulk and syslog tests (tests/es_bulk.rs,
# tests/syslog.rs) drive besides the Python client (which scripts/test-engines.sh
# installs with the other test clients): Debian's syslog-ng with its HTTP module and
# the configuration library that defines `elasticsearch-http()`, and rsyslog.
# Usage: scripts/test-shippers.sh install
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "test-shippers: $*" >&2; }

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
  if [ ! -x /usr/sbin/rsyslogd ]; then
    log "installing Debian rsyslog"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >/dev/null
    # Only the binary is used (started unprivileged by the tests); the package's
    # service is not started where there is no init system.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
      rsyslog >/dev/null
  fi
}

case "${1:-}" in
  install) install ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac

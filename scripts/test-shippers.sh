#!/usr/bin/env bash
# Installs the real log shippers the Elasticsearch bulk test (tests/es_bulk.rs)
# drives: Debian's syslog-ng with its HTTP module and the configuration library that
# defines `elasticsearch-http()`, and the pinned Python `elasticsearch` client.
# Usage: scripts/test-shippers.sh install
#
# The Python client is pinned to 7.13.4, the last release that does not refuse a
# server that is not Elastic's own (7.14 and later check a product header and build
# flavour; 8.x also demand `X-Elastic-Product: Elasticsearch` on every answer).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${LOGPOOL_TEST_PYTHON:-python3}
PIP_ELASTICSEARCH="elasticsearch==7.13.4"

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
  if ! "$PYTHON" -c 'import elasticsearch, sys; sys.exit(elasticsearch.__versionstr__ != "7.13.4")' 2>/dev/null; then
    log "installing $PIP_ELASTICSEARCH"
    PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
      "$PYTHON" -m pip install --quiet "$PIP_ELASTICSEARCH"
  fi
}

case "${1:-}" in
  install) install ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Installs what the web console's browser test needs: Debian's Chromium (driven
# headless by playwright-core, no browser download) and the pinned npm packages of
# tests/console (playwright-core, and axe-core for the accessibility checks). Usage: scripts/test-browser.sh install
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "test-browser: $*" >&2; }

install() {
  if [ ! -x /usr/bin/chromium ]; then
    log "installing Debian chromium"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium >/dev/null
  fi
  if ! command -v node >/dev/null; then
    log "error: Node.js is needed for the console test"
    exit 1
  fi
  if [ ! -d tests/console/node_modules/playwright-core ] || [ ! -d tests/console/node_modules/axe-core ]; then
    log "installing playwright-core and axe-core (npm ci in tests/console)"
    (cd tests/console && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

case "${1:-}" in
  install) install ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac

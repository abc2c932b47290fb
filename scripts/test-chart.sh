#!/usr/bin/env bash
# Renders and validates the Helm chart (helm/logpool) without helm or a cluster, and
# installs what that and the gateway tests need.
#
#   scripts/test-chart.sh install                  Debian Go 1.19, Sprig and sigs.k8s.io/yaml
#                                                  (for scripts/helm-render), nginx, yamllint,
#                                                  and PyPI kubernetes-validate
#   scripts/test-chart.sh build [OUT]              build scripts/helm-render (default
#                                                  $CARGO_TARGET_DIR/helm-render)
#   scripts/test-chart.sh render OUT [VALUES]...   render the chart with values files into OUT
#                                                  (one file per manifest)
#   scripts/test-chart.sh validate                 lint values.yaml, render the default and every
#                                                  helm/logpool/ci/*-values.yaml set, and check
#                                                  every manifest with kubernetes-validate --strict
#
# The test suite (tests/helm_chart.rs, tests/gateway.rs) does the same rendering and
# validation itself; this script is for trying a change by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

CHART=helm/logpool
KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"
GO_ROOT=/usr/lib/go-1.19
target="${CARGO_TARGET_DIR:-$PWD/target}"

log() { echo "test-chart: $*" >&2; }

apt_install() {
  [[ $# -gt 0 ]] || return 0
  local sudo=""
  [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
  log "installing Debian packages: $*"
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@" >/dev/null
}

install() {
  local pkgs=()
  [[ -x "$GO_ROOT/bin/go" ]] || pkgs+=(golang-1.19-go)
  [[ -d /usr/share/gocode/src/github.com/Masterminds/sprig ]] || pkgs+=(golang-github-masterminds-sprig-dev)
  [[ -d /usr/share/gocode/src/sigs.k8s.io/yaml ]] || pkgs+=(golang-k8s-sigs-yaml-dev)
  command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || pkgs+=(nginx)
  command -v yamllint >/dev/null 2>&1 || pkgs+=(yamllint)
  apt_install "${pkgs[@]}"
  if ! command -v kubernetes-validate >/dev/null 2>&1; then
    log "installing $KUBERNETES_VALIDATE (pip)"
    python3 -m pip install -q "$KUBERNETES_VALIDATE"
  fi
}

build() {
  local out="${1:-$target/helm-render}"
  mkdir -p "$(dirname "$out")"
  # The Debian Go packages live in GOPATH form; no module download happens.
  GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOCACHE="${GOCACHE:-$target/go-cache}" \
    "$GO_ROOT/bin/go" build -o "$out" ./scripts/helm-render
  echo "$out"
}

render() {
  local out="$1"
  shift
  local renderer
  renderer=$(build)
  local args=()
  for values in "$@"; do args+=(-f "$values"); done
  rm -rf "$out"
  "$renderer" -chart "$CHART" "${args[@]}" -output-dir "$out"
}

validate() {
  yamllint -d '{extends: relaxed, rules: {line-length: {max: 120}}}' "$CHART/values.yaml" "$CHART"/ci/*.yaml
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  render "$work/defaults"
  kubernetes-validate --strict --quiet "$work/defaults"/*.yaml
  log "defaults: $(ls "$work/defaults" | wc -l) manifests valid"
  for values in "$CHART"/ci/*-values.yaml; do
    local name
    name=$(basename "$values" -values.yaml)
    render "$work/$name" "$values"
    kubernetes-validate --strict --quiet "$work/$name"/*.yaml
    log "$name: $(ls "$work/$name" | wc -l) manifests valid"
  done
}

case "${1:-}" in
  install) install ;;
  build) shift; build "$@" ;;
  render) shift; [[ $# -ge 1 ]] || { echo "usage: $0 render OUT [VALUES]..." >&2; exit 2; }; render "$@" ;;
  validate) validate ;;
  *) echo "usage: $0 install | build [OUT] | render OUT [VALUES]... | validate" >&2; exit 2 ;;
esac

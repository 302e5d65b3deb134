#!/usr/bin/env bash
# The outside checkers the chart tests run: kubeconform (manifests against Kubernetes' and
# the CRDs' JSON schemas) and kube-score (workload best practices), plus the Prometheus
# Operator's ServiceMonitor CRD (kubeconform's schema for the chart's ServiceMonitor, and
# the real API server's in tests/kube/test_helm_install.py).
#
# Only the Go module proxy, PyPI, Debian and npm are reachable from CI, and neither checker
# ships on the last three, so each is built once with `go install MODULE/cmd/TOOL@VERSION`
# and the CRD taken from its module's source (`go mod download`); the proxy's checksum
# database verifies every module. Each lands in a cache directory named for its version, so
# later calls find it there and build or download nothing.
#
#   scripts/install-checkers.sh install       build / fetch (or find cached) all three
#   scripts/install-checkers.sh path NAME     print the cached file of NAME, or fail
#                                             (kubeconform, kube-score, servicemonitor-crd)
set -euo pipefail

declare -A MODULES=(
    [kubeconform]="github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0"
    [kube-score]="github.com/zegl/kube-score/cmd/kube-score@v1.20.0"
)
PROMETHEUS_OPERATOR="github.com/prometheus-operator/prometheus-operator@v0.85.0"
SERVICEMONITOR_CRD="example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/mme-operator/checkers"

die() {
    echo "install-checkers.sh: $*" >&2
    exit 1
}

binary() {
    local tool="$1" version
    if [ "$tool" = servicemonitor-crd ]; then
        echo "$CACHE/prometheus-operator-${PROMETHEUS_OPERATOR##*@}/$(basename "$SERVICEMONITOR_CRD")"
        return
    fi
    [ -n "${MODULES[$tool]:-}" ] || die "unknown name: $tool (known: ${!MODULES[*]} servicemonitor-crd)"
    version="${MODULES[$tool]##*@}"
    echo "$CACHE/$tool-$version/$tool"
}

cmd_install() {
    local tool bin
    for tool in kubeconform kube-score; do
        bin="$(binary "$tool")"
        if [ -x "$bin" ]; then
            echo "$tool cached: $bin"
            continue
        fi
        command -v go >/dev/null || die "go is not on PATH; building $tool needs a Go toolchain (https://go.dev/dl/)"
        local dir tmp start=$SECONDS
        dir="$(dirname "$bin")"
        tmp="$dir.tmp.$$"
        rm -rf "$tmp"
        mkdir -p "$tmp"
        echo "building ${MODULES[$tool]} into $dir"
        # GOFLAGS replaced: a -mod=... from the environment is refused outside a module.
        CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS="-trimpath" go install -ldflags="-s -w" "${MODULES[$tool]}"
        rm -rf "$dir"
        mv "$tmp" "$dir"
        echo "$tool build took $((SECONDS - start))s: $bin"
    done
    fetch_servicemonitor_crd
}

fetch_servicemonitor_crd() {
    local crd dir
    crd="$(binary servicemonitor-crd)"
    if [ -f "$crd" ]; then
        echo "ServiceMonitor CRD cached: $crd"
        return
    fi
    command -v go >/dev/null || die "go is not on PATH; fetching the ServiceMonitor CRD needs a Go toolchain"
    dir="$(GOFLAGS= go mod download -json "$PROMETHEUS_OPERATOR" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
    mkdir -p "$(dirname "$crd")"
    cp "$dir/$SERVICEMONITOR_CRD" "$crd.tmp.$$"
    chmod 0644 "$crd.tmp.$$"
    mv "$crd.tmp.$$" "$crd"
    echo "ServiceMonitor CRD from $PROMETHEUS_OPERATOR: $crd"
}

cmd_path() {
    local bin
    bin="$(binary "$1")"
    [ -x "$bin" ] || { [ "$1" = servicemonitor-crd ] && [ -f "$bin" ]; } ||
        die "$1 not installed; run: scripts/install-checkers.sh install"
    echo "$bin"
}

case "${1:-}" in
install) cmd_install ;;
path)
    [ $# -eq 2 ] || die "usage: install-checkers.sh path TOOL"
    cmd_path "$2"
    ;;
*) die "usage: install-checkers.sh install | path TOOL" ;;
esac

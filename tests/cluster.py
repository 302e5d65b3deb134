"""A real Kubernetes API server for the tests: etcd + kube-apiserver from scripts/envtest.sh.

The binaries are built from the Go modules pinned in tests/envtest/go.mod (once per machine,
cached). :class:`ControlPlane` is one running server: its kubeconfig (admin), a kubectl of
the same release, an admin ``ssl.SSLContext`` for aiohttp, and ServiceAccount tokens
through the TokenRequest API, so an operator can run with exactly the chart's RBAC.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "envtest.sh"
CRDS = ROOT / "crds"


def envtest_binaries() -> Path | None:
    """The directory of cached envtest binaries, or None when they are not built."""
    found = subprocess.run(
        ["bash", str(SCRIPT), "bindir"], capture_output=True, text=True, check=False
    )
    return Path(found.stdout.strip()) if found.returncode == 0 else None


def build_envtest() -> Path:
    """Build (or find cached) etcd, kube-apiserver and kubectl; their directory."""
    subprocess.run(["bash", str(SCRIPT), "build"], check=True)
    found = envtest_binaries()
    assert found is not None
    return found


def why_no_envtest() -> str | None:
    """Why the real API server cannot run here (no binaries and no Go), or None."""
    if envtest_binaries() is not None or shutil.which("go") is not None:
        return None
    return (
        "no Go toolchain: the real kube-apiserver under these tests is built from Go "
        "modules (scripts/envtest.sh build)"
    )


@dataclass
class ControlPlane:
    """One running etcd + kube-apiserver, started by ``scripts/envtest.sh start DIR``."""

    dir: Path
    bin: Path

    @classmethod
    def start(cls, directory: Path) -> ControlPlane:
        bindir = build_envtest()
        done = subprocess.run(
            ["bash", str(SCRIPT), "start", str(directory)],
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
        )
        if done.returncode != 0:
            raise RuntimeError(f"envtest.sh start failed:\n{done.stdout}\n{done.stderr}")
        assert done.stdout.strip().splitlines()[-1] == f"KUBECONFIG={directory}/kubeconfig"
        return cls(directory, bindir)

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop", str(self.dir)], check=True, timeout=60)

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def server(self) -> str:
        config = yaml.safe_load(self.kubeconfig.read_text())
        server: str = config["clusters"][0]["cluster"]["server"]
        return server

    @property
    def ca(self) -> Path:
        return self.dir / "pki" / "ca.crt"

    @property
    def kubectl_path(self) -> Path:
        return self.bin / "kubectl"

    def admin_ssl(self) -> ssl.SSLContext:
        """TLS for a client that trusts the server and logs in as the admin certificate."""
        context = ssl.create_default_context(cafile=str(self.ca))
        pki = self.dir / "pki"
        context.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        return context

    def kubectl(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        token: str | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run the envtest kubectl as admin (or with ``token``: as that identity only)."""
        if token is None:
            login = ["--kubeconfig", str(self.kubeconfig)]
        else:
            login = [
                "--kubeconfig",
                os.devnull,
                f"--server={self.server}",
                f"--certificate-authority={self.ca}",
                f"--token={token}",
            ]
        done = subprocess.run(
            [str(self.kubectl_path), *login, *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stderr}")
        return done

    def apply(self, docs: Iterable[Mapping[str, Any]], *extra: str) -> str:
        """``kubectl apply -f -`` of ``docs``; kubectl's output."""
        stream = yaml.safe_dump_all(list(docs))
        return self.kubectl("apply", "-f", "-", *extra, stdin=stream).stdout

    def get(self, *args: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.kubectl("get", *args, "-o", "json").stdout)
        return found

    def install_crds(self) -> None:
        """Apply crds/ and wait until the server serves them."""
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
        # kubectl wait fails at once ("status.conditions accessor error") on a CRD whose
        # status the server has not written yet, which a loaded machine shows: ask again.
        deadline = time.monotonic() + 60
        while True:
            done = self.kubectl(
                "wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRDS), check=False
            )
            if done.returncode == 0:
                return
            if "accessor error" not in done.stderr or time.monotonic() > deadline:
                raise AssertionError(f"CRDs not established: {done.stderr.strip()}")
            time.sleep(0.5)

    def ensure_namespace(self, name: str) -> None:
        self.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}])

    def token(self, service_account: str, namespace: str, hours: int = 4) -> str:
        """A token for the ServiceAccount through the TokenRequest API (kubectl create token)."""
        done = self.kubectl(
            "create", "token", service_account, "-n", namespace, f"--duration={hours}h"
        )
        return done.stdout.strip()

    def wait_gone(self, *args: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.kubectl("get", *args, check=False).returncode != 0:
                return
            time.sleep(0.2)
        raise TimeoutError(f"{args} still present after {timeout}s")


# -- the chart -------------------------------------------------------------------------

CHART = ROOT / "helm" / "mme-operator"
# The chart installs only with an image named (none is published); no kubelet pulls it here.
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mme-operator"
RBAC_KINDS = {
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    # What narrows the RBAC: the operator writes only the ConfigMaps it creates.
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}


def find_helm() -> str | None:
    """A helm binary (scripts/install-helm.sh puts one in the venv), or None."""
    candidates = [
        os.environ.get("HELM"),
        str(Path(sys.prefix) / "bin" / "helm"),
        shutil.which("helm"),
    ]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def render_chart(helm: str, release: str, namespace: str, *set_args: str) -> list[dict[str, Any]]:
    """``helm template`` of the chart: its documents (CRDs not included)."""
    args = [helm, "template", release, str(CHART), "--namespace", namespace]
    for value in (f"image.repository={IMAGE}", *set_args):
        args += ["--set", value]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise AssertionError(f"helm template failed:\n{done.stderr}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def rbac_documents(docs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ServiceAccount, (Cluster)Roles, bindings and the ConfigMap admission policy among
    rendered chart documents."""
    return [dict(doc) for doc in docs if doc["kind"] in RBAC_KINDS]

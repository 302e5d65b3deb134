"""The operator's own login and API client against the real API server, as users configure it.

Kubeconfigs with relative paths, client certificates inline, an ``exec`` plugin (what EKS
and GKE use), a proxy; a pod's service account; tokens that expire or are refused. Every
call goes over HTTPS to the real kube-apiserver, which decides whether the login works.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
from mme_operator.configmaps import ConfigMapWriter
from mme_operator.kube import KubeApiError, KubeClient, SharedLogin, login
from mme_operator.readiness import ApiReadiness

from tests.cluster import ControlPlane
from tests.faults.harness import CREDENTIALS, free_port, wait_until
from tests.kubeconfigs import Plugin, without_cluster_env, write_kubeconfig, write_plugin

pytestmark = pytest.mark.envtest

EXEC_INFO_VERSION = "client.authentication.k8s.io/v1"
OWNER_UID = str(uuid.uuid4())
ENDPOINTS = "/apis/mme-operator.io/v1alpha1/modelendpoints?limit=1"
"""What the chart's ServiceAccount may read."""


@pytest.fixture(autouse=True)
def not_in_a_pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Whatever runs the tests: no in-cluster login, no home kubeconfig, another cwd."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)


def client_for_kubeconfig(monkeypatch: pytest.MonkeyPatch, path: Path) -> KubeClient:
    monkeypatch.setenv("KUBECONFIG", str(path))
    return KubeClient(SharedLogin(login))


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_a_kubeconfig_with_relative_paths_is_read_relative_to_its_file(
    control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = tmp_path / "home" / "pki"
    pki.mkdir(parents=True)
    for name in ("ca.crt", "admin.crt", "admin.key"):
        shutil.copy(control_plane.dir / "pki" / name, pki / name)
    config = write_kubeconfig(
        tmp_path / "home" / "kube" / "config",
        {"server": control_plane.server, "certificate-authority": "../pki/ca.crt"},
        {"client-certificate": "../pki/admin.crt", "client-key": "../pki/admin.key"},
    )
    client = client_for_kubeconfig(monkeypatch, config)

    found = client.request("GET", "/api/v1/namespaces/default")

    assert found["kind"] == "Namespace"
    info = client.login.current()
    assert info.ca_path == str(pki / "ca.crt")
    assert info.certificate_path == str(pki / "admin.crt")
    assert info.default_namespace == "default"


async def test_a_client_certificate_inline_logs_in_for_kopf_readiness_and_the_client(
    control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = control_plane.dir / "pki"
    config = write_kubeconfig(
        tmp_path / "config",
        {"server": control_plane.server, "certificate-authority-data": b64(pki / "ca.crt")},
        {
            "client-certificate-data": b64(pki / "admin.crt"),
            "client-key-data": b64(pki / "admin.key"),
        },
    )
    client = client_for_kubeconfig(monkeypatch, config)

    found = client.request("GET", "/api/v1/namespaces/kube-system")
    assert found["metadata"]["name"] == "kube-system"
    # Readiness asks the server with the same login over aiohttp (as kopf does).
    readiness = ApiReadiness(login=client.login.current())
    await readiness.check()
    assert readiness.is_ready() == (True, f"GET {readiness.path} answered 200")


def configmap_body(name: str, data: dict[str, str], uid: str = OWNER_UID) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"app.kubernetes.io/managed-by": "mme-operator"},
            "ownerReferences": [
                {
                    "apiVersion": "mme-operator.io/v1alpha1",
                    "kind": "ModelEndpoint",
                    "name": name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "data": data,
    }


@pytest.fixture
def plugin(control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Plugin:
    """An exec plugin (no token yet) and KUBECONFIG naming a kubeconfig that runs it."""
    written = write_plugin(tmp_path / "bin")
    config = write_kubeconfig(
        tmp_path / "config",
        {"server": control_plane.server, "certificate-authority": str(control_plane.ca)},
        {"exec": {**written.exec_stanza(), "command": "./bin/get-token"}},
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    return written


@pytest.fixture
def operator_token(operator_login: kopf.ConnectionInfo) -> str:
    """A token of the chart's ServiceAccount: the operator's RBAC, nothing more."""
    assert operator_login.token is not None
    return operator_login.token


def test_an_exec_plugin_logs_in_and_the_configmap_is_written_through_it(
    control_plane: ControlPlane, plugin: Plugin, operator_token: str
) -> None:
    plugin.set_tokens(operator_token)
    writer = ConfigMapWriter(KubeClient(SharedLogin(login)))
    name = f"exec-{uuid.uuid4().hex[:6]}-models"  # what the admission policy allows

    assert writer.write(configmap_body(name, {"bert": "bert-1234.tar.gz"})) is True
    assert writer.write(configmap_body(name, {"bert": "bert-1234.tar.gz"})) is False

    found = control_plane.get("configmap", name, "-n", "default")
    assert found["data"] == {"bert": "bert-1234.tar.gz"}
    [info] = plugin.run_infos()
    assert info == {
        "apiVersion": EXEC_INFO_VERSION,
        "kind": "ExecCredential",
        "spec": {
            "interactive": False,
            "cluster": {
                "server": control_plane.server,
                "certificate-authority-data": b64(control_plane.ca),
            },
        },
    }
    # A writer that remembers nothing reads, finds the content there, and writes nothing.
    fresh = ConfigMapWriter(KubeClient(SharedLogin(login)))
    assert fresh.write(configmap_body(name, {"bert": "bert-1234.tar.gz"})) is False
    assert fresh.write(configmap_body(name, {"bert": "bert-5678.tar.gz"})) is True
    found = control_plane.get("configmap", name, "-n", "default")
    assert found["data"] == {"bert": "bert-5678.tar.gz"}


def test_a_refused_token_logs_in_again_once(plugin: Plugin, operator_token: str) -> None:
    plugin.set_tokens("revoked-token", operator_token)

    KubeClient(SharedLogin(login)).request("GET", ENDPOINTS)

    assert len(plugin.run_infos()) == 2  # 401 with the first, a new login, then 200


def test_a_token_that_never_works_is_a_401_error_after_one_new_login(plugin: Plugin) -> None:
    plugin.set_tokens("wrong-token")

    with pytest.raises(KubeApiError) as refused:
        KubeClient(SharedLogin(login)).request("GET", ENDPOINTS)

    assert refused.value.status == 401
    assert "Unauthorized" in str(refused.value)
    assert len(plugin.run_infos()) == 2


async def test_readiness_renews_a_refused_login_as_the_operator_does(
    plugin: Plugin, operator_token: str
) -> None:
    plugin.set_tokens("revoked-token", operator_token)
    shared = SharedLogin(login)
    revoked = await asyncio.to_thread(shared.current)

    alone = ApiReadiness(login=revoked)
    await alone.check()
    assert not alone.ready
    assert "answered 401" in alone.reason
    readiness = ApiReadiness(login=revoked, shared=shared)
    await readiness.check()

    assert readiness.ready, readiness.reason
    assert len(plugin.run_infos()) == 2


def test_an_expired_credential_is_renewed_before_the_next_call(
    plugin: Plugin, operator_token: str
) -> None:
    plugin.set_tokens(operator_token)
    plugin.set_ttl(1.5)
    client = KubeClient(SharedLogin(login))

    client.request("GET", ENDPOINTS)
    client.request("GET", ENDPOINTS)
    assert len(plugin.run_infos()) == 1
    expiration = client.login.current().expiration
    assert expiration is not None
    time.sleep(max(0.0, expiration.timestamp() - time.time()) + 0.2)
    client.request("GET", ENDPOINTS)

    assert len(plugin.run_infos()) == 2


def test_the_api_servers_refusal_carries_its_code_and_message(
    control_plane: ControlPlane, plugin: Plugin
) -> None:
    control_plane.apply(
        [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody"}}]
    )
    plugin.set_tokens(control_plane.token("nobody", "default", hours=1))
    writer = ConfigMapWriter(KubeClient(SharedLogin(login)))

    with pytest.raises(KubeApiError) as refused:
        writer.write(configmap_body("refused", {"a": "b"}))

    assert refused.value.status == 403
    assert 'configmaps "refused" is forbidden' in refused.value.message
    assert "system:serviceaccount:default:nobody" in refused.value.message


def test_in_a_pod_the_service_account_logs_in(
    control_plane: ControlPlane,
    operator_token: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(operator_token)
    (account / "namespace").write_text("mme-system")
    shutil.copy(control_plane.ca, account / "ca.crt")
    host, port = control_plane.server.removeprefix("https://").rsplit(":", 1)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "not-used"))

    info = login(service_account_dir=account)
    client = KubeClient(SharedLogin(lambda: info))
    found = client.request("GET", ENDPOINTS)

    assert found["kind"] == "ModelEndpointList"
    assert (info.server, info.default_namespace) == (control_plane.server, "mme-system")


class ConnectProxy:
    """An HTTP proxy that only tunnels (CONNECT), as corporate proxies in front of clusters."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.tunnels: list[str] = []
        self.opened: dict[int, float] = {}
        """When each tunnel still open was opened (time.monotonic())."""
        threading.Thread(target=self._serve, daemon=True).start()

    def longest_open(self) -> float:
        """Seconds the oldest tunnel still open has been open (0 when none is)."""
        now = time.monotonic()
        return max((now - since for since in list(self.opened.values())), default=0.0)

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            client.close()
            return
        self.tunnels.append(target)
        number = len(self.tunnels)
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.opened[number] = time.monotonic()
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
        _pipe(upstream, client)
        self.opened.pop(number, None)

    def close(self) -> None:
        self.listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for each in (source, sink):
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    running = ConnectProxy()
    try:
        yield running
    finally:
        running.close()


def proxied_admin_kubeconfig(plane: ControlPlane, proxy: ConnectProxy, path: Path) -> Path:
    """The admin's kubeconfig with ``proxy-url`` pointing at ``proxy``."""
    pki = plane.dir / "pki"
    return write_kubeconfig(
        path,
        {
            "server": plane.server,
            "certificate-authority": str(pki / "ca.crt"),
            "proxy-url": f"http://127.0.0.1:{proxy.port}",
        },
        {"client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")},
    )


async def test_a_proxy_url_tunnels_the_client_and_readiness(
    control_plane: ControlPlane,
    proxy: ConnectProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = proxied_admin_kubeconfig(control_plane, proxy, tmp_path / "config")
    client = client_for_kubeconfig(monkeypatch, config)

    found = await asyncio.to_thread(client.request, "GET", "/api/v1/namespaces/default")
    assert found["kind"] == "Namespace"
    readiness = ApiReadiness(login=client.login.current())
    await readiness.check()

    assert readiness.ready, readiness.reason
    target = control_plane.server.removeprefix("https://")
    assert proxy.tunnels == [target, target]


def test_the_running_operator_goes_through_the_proxy_url(
    control_plane: ControlPlane, proxy: ConnectProxy, tmp_path: Path
) -> None:
    config = proxied_admin_kubeconfig(control_plane, proxy, tmp_path / "config")
    # A namespace of its own: what other tests left elsewhere is not this operator's work.
    namespace = f"proxied-{uuid.uuid4().hex[:6]}"
    control_plane.ensure_namespace(namespace)
    ready = free_port()
    env = {
        **without_cluster_env(),
        **CREDENTIALS,
        "KUBECONFIG": str(config),
        "MME_METRICS_PORT": "0",
        "MME_READINESS_PORT": str(ready),
    }
    log = tmp_path / "operator.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mme_operator.cli", "run", "-n", namespace, "--standalone"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: readyz(ready) == 200, "readiness through the proxy", timeout=30)
        # Readiness opens a tunnel per check and closes it; kopf's watches stay open.
        wait_until(lambda: proxy.longest_open() > 3, "a watch held open through it", 20)
    finally:
        process.terminate()
        process.wait(20)
    assert "Traceback" not in log.read_text()


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0

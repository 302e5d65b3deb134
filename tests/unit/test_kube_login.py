"""Reading kubeconfigs and running exec plugins: what is chosen, and one line when it fails.

No API server here (tests/kube/test_login.py logs in to a real one): these check the
rules of client-go that kubectl users rely on, and every refusal's message.
"""

from __future__ import annotations

import base64
import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mme_operator.kube import KubeLoginError, login

from tests.kubeconfigs import without_cluster_env, write_kubeconfig, write_plugin

SERVER = "https://127.0.0.1:6443"


@pytest.fixture(autouse=True)
def not_in_a_pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)


def refusal(monkeypatch: pytest.MonkeyPatch, *configs: Path | str) -> str:
    """The one-line message of a login with KUBECONFIG listing ``configs``."""
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(str(c) for c in configs))
    with pytest.raises(KubeLoginError) as refused:
        login()
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("no Kubernetes configuration: not in a cluster (")
    return message


def test_the_first_file_to_name_an_entry_wins_and_missing_files_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write_kubeconfig(tmp_path / "a" / "config", {"server": SERVER}, {"token": "first"})
    second = tmp_path / "b" / "config"
    second.parent.mkdir()
    (second.parent / "ca.crt").write_text("unused")
    second.write_text(
        yaml.safe_dump(
            {
                "current-context": "other",
                "clusters": [
                    {"name": "test", "cluster": {"server": "https://elsewhere:443"}},
                    {"name": "b", "cluster": {"server": SERVER}},
                ],
                "users": [{"name": "b", "user": {"token": "second"}}],
                "contexts": [{"name": "other", "context": {"cluster": "b", "user": "b"}}],
            }
        )
    )
    monkeypatch.setenv(
        "KUBECONFIG", os.pathsep.join([str(tmp_path / "gone"), str(first), str(second)])
    )

    info = login()

    assert (info.server, info.token, info.scheme) == (SERVER, "first", "Bearer")
    assert info.default_namespace == "default"


def test_the_default_kubeconfig_is_read_when_kubeconfig_is_unset(tmp_path: Path) -> None:
    write_kubeconfig(tmp_path / "home" / ".kube" / "config", {"server": SERVER}, {"token": "t"})

    assert login().token == "t"


def test_no_kubeconfig_at_all_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = refusal(monkeypatch, tmp_path / "missing")
    assert f"KUBECONFIG={tmp_path / 'missing'} names no file that exists" in message
    assert "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set" in message

    monkeypatch.delenv("KUBECONFIG")
    with pytest.raises(KubeLoginError, match=r"KUBECONFIG is not set and .*/\.kube/config does"):
        login()


@pytest.mark.parametrize(
    ("cluster", "user", "expected"),
    [
        ({}, {"token": "t"}, "cluster 'test' has no server"),
        (
            {"server": SERVER},
            {"auth-provider": {"name": "gcp"}},
            "user 'test': auth-provider is deprecated and not supported; use an exec credential "
            "plugin instead (gke-gcloud-auth-plugin",
        ),
        ({"server": SERVER}, {"as": "admin"}, "user 'test': as (impersonation) is not supported"),
        (
            {"server": SERVER, "tls-server-name": "kubernetes"},
            {},
            "cluster 'test': tls-server-name is not supported",
        ),
        (
            {"server": SERVER, "certificate-authority-data": "not base64!"},
            {},
            "'test': certificate-authority-data is not base64",
        ),
        (
            {"server": SERVER, "certificate-authority": "pki/ca.crt"},
            {},
            "certificate-authority {dir}/pki/ca.crt: no such file",
        ),
        (
            {"server": SERVER},
            {"client-certificate-data": "QUJD"},
            "user 'test': client-certificate and client-key go together; one is missing",
        ),
        (
            {"server": SERVER, "proxy-url": "socks5://proxy:1080"},
            {},
            "proxy-url socks5://proxy:1080 is not supported; an http:// proxy is",
        ),
        (
            {"server": SERVER, "certificate-authority-data": "QUJD"},
            {},
            "its TLS settings do not load",
        ),
    ],
)
def test_a_kubeconfig_that_cannot_work_is_refused_in_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cluster: dict[str, object],
    user: dict[str, object],
    expected: str,
) -> None:
    config = write_kubeconfig(tmp_path / "kube" / "config", cluster, user)

    assert expected.format(dir=tmp_path / "kube") in refusal(monkeypatch, config)


def test_contexts_that_name_nothing_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    config.write_text("current-context: gone\ncontexts: []\n")
    assert f"current-context 'gone' is not defined in {config}" in refusal(monkeypatch, config)
    config.write_text("contexts: [{name: x, context: {cluster: c}}]\n")
    assert f"no current-context in {config}" in refusal(monkeypatch, config)
    config.write_text("current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n")
    assert "context 'x': cluster 'c' is not defined" in refusal(monkeypatch, config)
    config.write_text("clusters: {c: 1}\n")
    assert "clusters must be a list of entries with a name" in refusal(monkeypatch, config)
    config.write_text("current-context: [\n")
    assert f"{config}: while parsing" in refusal(monkeypatch, config)


def test_a_token_file_is_read_relative_to_the_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "kube").mkdir()
    (tmp_path / "kube" / "token").write_text("from-file\n")
    config = write_kubeconfig(
        tmp_path / "kube" / "config", {"server": SERVER}, {"tokenFile": "token"}
    )
    monkeypatch.setenv("KUBECONFIG", str(config))

    assert login().token == "from-file"


def exec_config(tmp_path: Path, **stanza: object) -> tuple[Path, object]:
    plugin = write_plugin(tmp_path / "kube", "plugin-token")
    exec_ = {**plugin.exec_stanza(), **stanza}
    config = write_kubeconfig(tmp_path / "kube" / "config", {"server": SERVER}, {"exec": exec_})
    return config, plugin


def test_an_exec_plugin_runs_with_its_args_env_and_exec_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = write_plugin(tmp_path / "kube", "plugin-token")
    plugin.set_ttl(600)
    stanza = {**plugin.exec_stanza(), "provideClusterInfo": False}
    config = write_kubeconfig(tmp_path / "kube" / "config", {"server": SERVER}, {"exec": stanza})
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.chdir(tmp_path)

    info = login()

    assert (info.token, info.scheme) == ("plugin-token", "Bearer")
    assert info.expiration is not None
    left = info.expiration - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(seconds=590) < left <= datetime.timedelta(seconds=600)
    assert plugin.run_infos() == [
        {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "spec": {"interactive": False},
        }
    ]


@pytest.fixture
def ca_pem(tmp_path: Path) -> bytes:
    """A self-signed CA certificate (PEM), made with openssl as scripts/envtest.sh does."""
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=test-ca", "-keyout", str(tmp_path / "ca.key")),
            *("-out", str(tmp_path / "ca.crt")),
        ],
        check=True,
        capture_output=True,
    )
    return (tmp_path / "ca.crt").read_bytes()


def test_provide_cluster_info_hands_the_plugin_the_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca_pem: bytes
) -> None:
    plugin = write_plugin(tmp_path / "kube", "plugin-token")
    cluster = {
        "server": SERVER,
        "certificate-authority-data": base64.b64encode(ca_pem).decode(),
        "extensions": [
            {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "eks"}},
            {"name": "other", "extension": {"ignored": True}},
        ],
    }
    config = write_kubeconfig(tmp_path / "kube" / "config", cluster, {"exec": plugin.exec_stanza()})
    monkeypatch.setenv("KUBECONFIG", str(config))

    info = login()

    assert info.ca_data == ca_pem
    [exec_info] = plugin.run_infos()
    assert exec_info["spec"] == {
        "interactive": False,
        "cluster": {
            "server": SERVER,
            "certificate-authority-data": base64.b64encode(ca_pem).decode(),
            "config": {"audience": "eks"},
        },
    }


@pytest.mark.parametrize(
    ("stanza", "expected"),
    [
        (
            {"command": "no-such-plugin", "installHint": "Install it:\n  brew install it"},
            "exec plugin no-such-plugin not found: Install it: brew install it",
        ),
        ({"apiVersion": None}, "apiVersion None is not supported; use client.authentication"),
        ({"interactiveMode": "Always"}, "needs a terminal (interactiveMode: Always)"),
        (
            {"command": sys.executable, "args": ["-c", "print('{}')"]},
            f"exec plugin `{sys.executable} -c print('{{}}')` printed no ExecCredential JSON",
        ),
        (
            {
                "command": sys.executable,
                "args": [
                    "-c",
                    "import json; print(json.dumps({'apiVersion': "
                    "'client.authentication.k8s.io/v1beta1', 'kind': 'ExecCredential'}))",
                ],
            },
            "answered apiVersion 'client.authentication.k8s.io/v1beta1', the kubeconfig asks "
            "for 'client.authentication.k8s.io/v1'",
        ),
    ],
)
def test_an_exec_plugin_that_cannot_give_a_credential_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stanza: dict[str, object], expected: str
) -> None:
    config, _ = exec_config(tmp_path, **stanza)

    assert expected in refusal(monkeypatch, config)


def test_a_credential_that_arrives_expired_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = write_plugin(tmp_path / "kube", "t")
    plugin.set_ttl(-5)
    config = write_kubeconfig(
        tmp_path / "kube" / "config", {"server": SERVER}, {"exec": plugin.exec_stanza()}
    )

    assert "answered a credential that expired at" in refusal(monkeypatch, config)


def test_a_failing_plugin_stops_run_with_one_line(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path / "kube", "t")
    plugin.set_failure("Error: the SSO session has expired; run aws sso login")
    config = write_kubeconfig(
        tmp_path / "kube" / "config", {"server": SERVER}, {"exec": plugin.exec_stanza()}
    )
    env = {**without_cluster_env(), "KUBECONFIG": str(config), "MME_METRICS_PORT": "0"}

    done = subprocess.run(
        [sys.executable, "-m", "mme_operator.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert (
        f"exec plugin `{tmp_path / 'kube' / 'get-token'} token --cluster-name envtest` failed with "
        "exit 255: Error: the SSO session has expired; run aws sso login" in line
    )
    assert line.startswith("mme-operator run: no Kubernetes configuration")
    assert "Traceback" not in done.stdout + done.stderr

"""kubeconfig ``exec`` credential plugins: ``aws eks get-token``, ``gke-gcloud-auth-plugin``.

What kubectl does (client-go's ``plugin/pkg/client/auth/exec``): run ``command`` with
``args`` and the extra ``env``, tell it through ``KUBERNETES_EXEC_INFO`` that nobody can
answer a prompt (the operator has no terminal), and read an ``ExecCredential`` from its
standard output: a bearer token or a client certificate, valid until
``expirationTimestamp``. A plugin that fails is one line: which command, its exit status and
the last line it wrote to standard error.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
CLUSTER_EXTENSION = "client.authentication.k8s.io/exec"
"""The cluster extension whose value a plugin gets as ``spec.cluster.config``."""
TIMEOUT_SECONDS = 60.0
"""No plugin that prompts can answer here; one that hangs fails the login instead."""


class ExecPluginError(Exception):
    """The plugin could not run or gave no usable credential (one line)."""


@dataclass(frozen=True)
class ExecCredential:
    """What a plugin answered: a token, or a client certificate and key (PEM)."""

    token: str | None = None
    certificate: str | None = None
    key: str | None = None
    expiration: datetime.datetime | None = None


def run_exec_plugin(
    spec: Mapping[str, Any],
    *,
    directory: Path,
    cluster: Mapping[str, Any] | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> ExecCredential:
    """Run the plugin of a kubeconfig user's ``exec`` stanza; its credential.

    ``directory`` is that of the kubeconfig file holding the stanza: a command given as a
    relative path with a slash in it is relative to it (a bare name is looked up on PATH).
    ``cluster`` is the cluster as ``provideClusterInfo`` hands it on (already resolved).
    """
    command = str(spec.get("command") or "")
    if not command:
        raise ExecPluginError("exec plugin without a command")
    api_version = spec.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise ExecPluginError(
            f"exec plugin {command}: apiVersion {api_version!r} is not supported; "
            f"use {' or '.join(API_VERSIONS)}"
        )
    if spec.get("interactiveMode") == "Always":
        raise ExecPluginError(
            f"exec plugin {command} needs a terminal (interactiveMode: Always) and the "
            "operator has none; log in beforehand or use a plugin mode that does not prompt"
        )
    if os.sep in command and not os.path.isabs(command):
        command = os.path.normpath(directory / command)
    args = [str(arg) for arg in spec.get("args") or []]
    shown = " ".join([command, *args])
    env = dict(os.environ)
    for item in spec.get("env") or []:
        env[str(item["name"])] = str(item.get("value", ""))
    info: dict[str, Any] = {"interactive": False}
    if spec.get("provideClusterInfo") and cluster is not None:
        info["cluster"] = dict(cluster)
    env["KUBERNETES_EXEC_INFO"] = json.dumps(
        {"apiVersion": api_version, "kind": "ExecCredential", "spec": info}
    )
    try:
        done = subprocess.run(
            [command, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        hint = " ".join(str(spec.get("installHint") or "").split())
        raise ExecPluginError(
            f"exec plugin {command} not found" + (f": {hint}" if hint else "")
        ) from None
    except subprocess.TimeoutExpired:
        raise ExecPluginError(f"exec plugin `{shown}` gave no answer in {timeout:g}s") from None
    except OSError as exc:
        raise ExecPluginError(f"exec plugin `{shown}` could not run: {exc}") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        said = f": {lines[-1]}" if lines else " (nothing on standard error)"
        raise ExecPluginError(f"exec plugin `{shown}` failed with exit {done.returncode}{said}")
    return parse_exec_credential(done.stdout, api_version=str(api_version), shown=shown)


def parse_exec_credential(text: str, *, api_version: str, shown: str) -> ExecCredential:
    """The credential of an ``ExecCredential`` a plugin printed (``shown`` names the plugin)."""
    try:
        answer = json.loads(text)
    except ValueError:
        raise ExecPluginError(f"exec plugin `{shown}` printed no ExecCredential JSON") from None
    if not isinstance(answer, dict) or answer.get("kind") != "ExecCredential":
        raise ExecPluginError(f"exec plugin `{shown}` printed no ExecCredential JSON")
    if answer.get("apiVersion") != api_version:
        raise ExecPluginError(
            f"exec plugin `{shown}` answered apiVersion {answer.get('apiVersion')!r}, "
            f"the kubeconfig asks for {api_version!r}"
        )
    status = answer.get("status")
    if not isinstance(status, dict):
        raise ExecPluginError(f"exec plugin `{shown}` answered no status")
    token = status.get("token") or None
    certificate = status.get("clientCertificateData") or None
    key = status.get("clientKeyData") or None
    if bool(certificate) != bool(key):
        raise ExecPluginError(
            f"exec plugin `{shown}` answered a client certificate without its key or a key "
            "without its certificate"
        )
    if not token and not certificate:
        raise ExecPluginError(f"exec plugin `{shown}` answered neither a token nor a certificate")
    expiration = None
    stamp = status.get("expirationTimestamp")
    if stamp:
        try:
            expiration = datetime.datetime.fromisoformat(str(stamp))
        except ValueError:
            raise ExecPluginError(
                f"exec plugin `{shown}` answered expirationTimestamp {stamp!r}, not RFC 3339"
            ) from None
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=datetime.UTC)
        # kopf logs in again as soon as a credential expires: one that arrives expired
        # would make it run the plugin in a tight loop.
        if expiration <= datetime.datetime.now(datetime.UTC):
            raise ExecPluginError(
                f"exec plugin `{shown}` answered a credential that expired at {stamp}"
            )
    return ExecCredential(token=token, certificate=certificate, key=key, expiration=expiration)


def cluster_info(cluster: Mapping[str, Any], ca_pem: bytes | None) -> dict[str, Any]:
    """The cluster as ``KUBERNETES_EXEC_INFO`` carries it (``provideClusterInfo: true``)."""
    info: dict[str, Any] = {"server": cluster.get("server")}
    for key in ("tls-server-name", "insecure-skip-tls-verify", "proxy-url"):
        if cluster.get(key) is not None:
            info[key] = cluster[key]
    if ca_pem:
        info["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    for extension in cluster.get("extensions") or []:
        if extension.get("name") == CLUSTER_EXTENSION:
            info["config"] = extension.get("extension")
    return info

"""Logging in to the API server: a pod's service account, else the kubeconfig.

The order and the rules are client-go's, as kubectl follows them. In a pod
(``KUBERNETES_SERVICE_HOST`` and ``_PORT`` set, a service account token mounted): that
token and CA. Else the kubeconfig: the files of ``KUBECONFIG`` (joined by ``os.pathsep``;
missing ones skipped; the first file to name a cluster, user, context or the current
context wins) or ``~/.kube/config``, at its current context. File paths in a kubeconfig are
relative to the file that holds them, and a user's ``exec`` plugin runs on every login:
its credential's expiry makes kopf log in again. Every failure is one line.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
import yaml

from mme_operator.kube.exec_plugin import ExecPluginError, cluster_info, run_exec_plugin

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = "~/.kube/config"


class KubeLoginError(Exception):
    """No usable login; the message (one line) says what was tried and what to change."""


def login(
    *, trust_env: bool = False, service_account_dir: Path = SERVICE_ACCOUNT_DIR
) -> kopf.ConnectionInfo:
    """The operator's connection to the API server: in a pod its account, else kubeconfig.

    Raises :class:`KubeLoginError` when neither gives a usable one. Its TLS settings are
    tried here (certificate files exist and parse), so that a bad one fails at login and
    not as a puzzle on the first request.
    """
    in_cluster, why_not = login_in_cluster(trust_env=trust_env, directory=service_account_dir)
    if in_cluster is not None:
        return in_cluster
    try:
        info = login_with_kubeconfig(trust_env=trust_env)
        info.as_ssl_context()
    except (KubeLoginError, ExecPluginError) as exc:
        reason = str(exc)
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = f"its TLS settings do not load: {' '.join(str(exc).split())}"
    else:
        return info
    raise KubeLoginError(
        f"no Kubernetes configuration: not in a cluster ({why_not}) and no usable kubeconfig "
        f"({reason}); set KUBECONFIG or run in a pod with a service account"
    )


def login_in_cluster(
    *, trust_env: bool = False, directory: Path = SERVICE_ACCOUNT_DIR
) -> tuple[kopf.ConnectionInfo | None, str]:
    """The pod's service account (as client-go's ``InClusterConfig``), or None and why not.

    The server is ``KUBERNETES_SERVICE_HOST:PORT``, as kubelet sets them in every pod: no
    cluster DNS needed (a ``hostNetwork`` pod may have none).
    """
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return None, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"
    token_path = directory / "token"
    try:
        token = token_path.read_text(encoding="utf-8").strip()
    except OSError:
        return None, f"no service account token at {token_path}"
    ca_path = directory / "ca.crt"
    namespace_path = directory / "namespace"
    namespace = namespace_path.read_text().strip() if namespace_path.is_file() else None
    server_host = f"[{host}]" if ":" in host else host
    return kopf.ConnectionInfo(
        server=f"https://{server_host}:{port}",
        ca_path=str(ca_path) if ca_path.is_file() else None,
        scheme="Bearer",
        token=token or None,
        default_namespace=namespace or None,
        trust_env=trust_env,
    ), ""


@dataclass
class _Kubeconfig:
    """The merge of the kubeconfig files: each named entry with the directory of its file."""

    files: list[Path]
    current_context: str | None = None
    clusters: dict[str, tuple[dict[str, Any], Path]] = field(default_factory=dict)
    users: dict[str, tuple[dict[str, Any], Path]] = field(default_factory=dict)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def where(self) -> str:
        return ", ".join(str(path) for path in self.files)


def kubeconfig_files() -> list[Path]:
    """The kubeconfig files that exist, in precedence order (KUBECONFIG, else the default)."""
    listed = os.environ.get("KUBECONFIG")
    if listed:
        paths = [Path(p.strip()).expanduser() for p in listed.split(os.pathsep) if p.strip()]
        found = [path for path in paths if path.is_file()]
        if not found:
            raise KubeLoginError(f"KUBECONFIG={listed} names no file that exists")
        return found
    default = Path(DEFAULT_KUBECONFIG).expanduser()
    if not default.is_file():
        raise KubeLoginError(f"KUBECONFIG is not set and {default} does not exist")
    return [default]


def _load(files: list[Path]) -> _Kubeconfig:
    merged = _Kubeconfig(files)
    for path in files:
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise KubeLoginError(f"{path}: {' '.join(str(exc).split())}") from None
        if not isinstance(config, dict):
            raise KubeLoginError(f"{path}: not a kubeconfig (a YAML mapping expected)")
        directory = path.resolve().parent
        if merged.current_context is None and config.get("current-context"):
            merged.current_context = str(config["current-context"])
        for kind, target in (("clusters", merged.clusters), ("users", merged.users)):
            for item in _named(config, kind, path):
                body = item.get(kind[:-1]) or {}
                target.setdefault(str(item["name"]), (dict(body), directory))
        for item in _named(config, "contexts", path):
            merged.contexts.setdefault(str(item["name"]), dict(item.get("context") or {}))
    return merged


def _named(config: Mapping[str, Any], kind: str, path: Path) -> list[dict[str, Any]]:
    items = config.get(kind) or []
    if not isinstance(items, list) or not all(
        isinstance(item, dict) and item.get("name") for item in items
    ):
        raise KubeLoginError(f"{path}: {kind} must be a list of entries with a name")
    return items


def login_with_kubeconfig(*, trust_env: bool = False) -> kopf.ConnectionInfo:
    """The connection of the kubeconfig's current context (running its exec plugin)."""
    config = _load(kubeconfig_files())
    name = config.current_context
    if not name:
        raise KubeLoginError(f"no current-context in {config.where()}")
    if name not in config.contexts:
        raise KubeLoginError(f"current-context {name!r} is not defined in {config.where()}")
    context = config.contexts[name]
    cluster_name = str(context.get("cluster") or "")
    if cluster_name not in config.clusters:
        raise KubeLoginError(f"context {name!r}: cluster {cluster_name!r} is not defined")
    cluster, cluster_dir = config.clusters[cluster_name]
    user_name = context.get("user")
    user: dict[str, Any] = {}
    user_dir = cluster_dir
    if user_name:
        if str(user_name) not in config.users:
            raise KubeLoginError(f"context {name!r}: user {user_name!r} is not defined")
        user, user_dir = config.users[str(user_name)]
    server = str(cluster.get("server") or "")
    if not server:
        raise KubeLoginError(f"cluster {cluster_name!r} has no server")
    for unsupported, instead in UNSUPPORTED_CLUSTER.items():
        if cluster.get(unsupported):
            raise KubeLoginError(f"cluster {cluster_name!r}: {unsupported} {instead}")
    for unsupported, instead in UNSUPPORTED_USER.items():
        if user.get(unsupported):
            raise KubeLoginError(f"user {user_name!r}: {unsupported} {instead}")
    proxy = cluster.get("proxy-url") or None
    if proxy and not str(proxy).startswith("http://"):
        raise KubeLoginError(
            f"cluster {cluster_name!r}: proxy-url {proxy} is not supported; an http:// proxy is"
        )

    ca_data = _data(cluster, "certificate-authority-data", cluster_name)
    ca_path = None if ca_data else _path(cluster, "certificate-authority", cluster_dir)
    certificate = _data(user, "client-certificate-data", str(user_name))
    certificate_path = None if certificate else _path(user, "client-certificate", user_dir)
    key = _data(user, "client-key-data", str(user_name))
    key_path = None if key else _path(user, "client-key", user_dir)
    token = user.get("token") or None
    token_file = _path(user, "tokenFile", user_dir)
    if not token and token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise KubeLoginError(f"user {user_name!r}: tokenFile {token_file}: {exc}") from None
    expiration = None
    if user.get("exec"):
        ca_pem = ca_data or _read_bytes(ca_path)
        credential = run_exec_plugin(
            user["exec"], directory=user_dir, cluster=cluster_info(cluster, ca_pem)
        )
        token = credential.token or token
        if credential.certificate and credential.key:
            certificate, key = credential.certificate.encode(), credential.key.encode()
            certificate_path = key_path = None
        expiration = credential.expiration
    if bool(certificate or certificate_path) != bool(key or key_path):
        raise KubeLoginError(
            f"user {user_name!r}: client-certificate and client-key go together; one is missing"
        )
    return kopf.ConnectionInfo(
        server=server,
        ca_path=ca_path,
        ca_data=ca_data,
        insecure=bool(cluster.get("insecure-skip-tls-verify")) or None,
        certificate_path=certificate_path,
        certificate_data=certificate,
        private_key_path=key_path,
        private_key_data=key,
        username=user.get("username") or None,
        password=user.get("password") or None,
        scheme="Bearer" if token else None,
        token=token,
        default_namespace=context.get("namespace") or None,
        proxy_url=proxy,
        trust_env=trust_env,
        expiration=expiration,
    )


UNSUPPORTED_USER = {
    "auth-provider": "is deprecated and not supported; use an exec credential plugin instead "
    "(gke-gcloud-auth-plugin for GKE, kubelogin for Azure and OIDC)",
    "as": "(impersonation) is not supported; give the operator's own identity the RBAC",
    "as-groups": "(impersonation) is not supported; give the operator's own identity the RBAC",
    "as-uid": "(impersonation) is not supported; give the operator's own identity the RBAC",
}
UNSUPPORTED_CLUSTER = {
    "tls-server-name": "is not supported; use a server address its certificate names",
}


def _data(entry: Mapping[str, Any], key: str, owner: str) -> bytes | None:
    """A ``*-data`` field: base64 of PEM, checked here so that a bad one says which."""
    value = entry.get(key)
    if not value:
        return None
    try:
        return base64.b64decode("".join(str(value).split()), validate=True)
    except (binascii.Error, ValueError):
        raise KubeLoginError(f"{owner!r}: {key} is not base64") from None


def _path(entry: Mapping[str, Any], key: str, directory: Path) -> str | None:
    """A file field, relative to the directory of the kubeconfig file holding it."""
    value = entry.get(key)
    if not value:
        return None
    # Lexically joined and cleaned, as client-go's filepath.Join does.
    path = Path(os.path.normpath(directory / Path(str(value)).expanduser()))
    if not path.is_file():
        raise KubeLoginError(f"{key} {path}: no such file")
    return str(path)


def _read_bytes(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None

"""Writing the ``<name>-models`` ConfigMap through the Kubernetes API (the kopf layer).

The content is :func:`mme_operator.reconcile.client_mapping.models_configmap`; this module
only reads, creates and patches it, and only when its content changed: the last content
written per object is remembered, so a steady reconcile costs no API call at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import kopf
import kubernetes

log = logging.getLogger("mme_operator.configmaps")

ApiClientFactory = Callable[[], kubernetes.client.ApiClient]


def api_client_for(login: kopf.ConnectionInfo | None) -> ApiClientFactory:
    """A factory of Kubernetes API clients with the operator's own credentials.

    ``login`` None: the service account in a cluster, else kubeconfig (what kopf's
    ``login_via_client`` uses too). Made lazily: nothing is read until the first write.
    """

    def make() -> kubernetes.client.ApiClient:
        if login is None:
            try:
                kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
            except kubernetes.config.ConfigException:
                kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
            return kubernetes.client.ApiClient()
        configuration = kubernetes.client.Configuration()
        configuration.host = login.server
        configuration.verify_ssl = not login.insecure
        if login.ca_path:
            configuration.ssl_ca_cert = str(login.ca_path)
        if login.token:
            configuration.api_key = {"authorization": login.token}
            configuration.api_key_prefix = {"authorization": login.scheme or "Bearer"}
        return kubernetes.client.ApiClient(configuration)

    return make


class ConfigMapWriter:
    """Creates or patches ConfigMaps, skipping writes whose content is already there."""

    def __init__(self, make_client: ApiClientFactory) -> None:
        self._make_client = make_client
        self._api: kubernetes.client.CoreV1Api | None = None
        self._written: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _core(self) -> kubernetes.client.CoreV1Api:
        with self._lock:
            if self._api is None:
                self._api = kubernetes.client.CoreV1Api(self._make_client())
            return self._api

    def write(self, body: dict[str, Any]) -> bool:
        """Make the ConfigMap ``body`` exist as given; True when an API write was made.

        Raises ``kubernetes.client.ApiException`` when the API server refuses.
        """
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        wanted = {"data": body["data"], "ownerReferences": meta["ownerReferences"]}
        if self._written.get(key) == wanted:
            return False
        api = self._core()
        try:
            current = api.read_namespaced_config_map(meta["name"], meta["namespace"])
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise
            api.create_namespaced_config_map(meta["namespace"], body)  # type: ignore[arg-type]
            log.info("Created ConfigMap %s/%s", *key)
            self._written[key] = wanted
            return True
        data = current.data or {}
        refs = current.metadata.owner_references if current.metadata else None
        owners = [ref.to_dict() for ref in refs or []]
        if data == body["data"] and _same_owners(owners, meta["ownerReferences"]):
            self._written[key] = wanted
            return False
        # A merge patch: keys of models no longer served are removed with nulls.
        patch = {
            "metadata": {"labels": meta["labels"], "ownerReferences": meta["ownerReferences"]},
            "data": {**{k: None for k in data if k not in body["data"]}, **body["data"]},
        }
        api.patch_namespaced_config_map(
            meta["name"], meta["namespace"], patch, _content_type="application/merge-patch+json"
        )
        log.info("Updated ConfigMap %s/%s", *key)
        self._written[key] = wanted
        return True

    def forget(self, namespace: str, name: str) -> None:
        """Drop what is remembered of a ConfigMap (its owner is gone)."""
        self._written.pop((namespace, name), None)


def _same_owners(current: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> bool:
    def ids(refs: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        return {(r.get("uid"), r.get("kind"), r.get("controller")) for r in refs}

    return ids(current) == ids(wanted)

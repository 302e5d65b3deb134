"""Writing the ``<name>-models`` ConfigMap through the Kubernetes API (the kopf layer).

The content is :func:`mme_operator.reconcile.client_mapping.models_configmap`; this module
only reads, creates and patches it, and only when its content changed: the last content
written per object is remembered, so a steady reconcile costs no API call at all.
"""

from __future__ import annotations

import logging
from typing import Any

from mme_operator.kube import KubeApiError, KubeClient

log = logging.getLogger("mme_operator.configmaps")


class ConfigMapNotOwnedError(Exception):
    """A ConfigMap of the wanted name exists and this ModelEndpoint did not create it."""


def _controlled_by(current: dict[str, Any], uid: str) -> bool:
    owners = current.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("uid") == uid and r.get("controller") for r in owners)


class ConfigMapWriter:
    """Creates or patches ConfigMaps, skipping writes whose content is already there."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client
        self._written: dict[tuple[str, str], dict[str, Any]] = {}

    def write(self, body: dict[str, Any]) -> bool:
        """Make the ConfigMap ``body`` exist as given; True when an API write was made.

        Raises :class:`~mme_operator.kube.KubeApiError` when the API server refuses.
        """
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        wanted = {"data": body["data"], "ownerReferences": meta["ownerReferences"]}
        if self._written.get(key) == wanted:
            return False
        path = f"/api/v1/namespaces/{meta['namespace']}/configmaps"
        try:
            current = self._client.request("GET", f"{path}/{meta['name']}")
        except KubeApiError as exc:
            if exc.status != 404:
                raise
            self._client.request("POST", path, body)
            log.info("Created ConfigMap %s/%s", *key)
            self._written[key] = wanted
            return True
        owner_uid = next(r["uid"] for r in meta["ownerReferences"] if r.get("controller"))
        if not _controlled_by(current, owner_uid):
            # Someone else's (a tenant's own app config, or another ModelEndpoint's): never
            # overwritten, taken over or deleted.
            raise ConfigMapNotOwnedError(
                f"ConfigMap {meta['name']} already exists and was not created by this "
                "ModelEndpoint; it is left untouched: rename or remove it to get the "
                "TargetModels there (they are in status.models meanwhile)"
            )
        data = current.get("data") or {}
        owners = current.get("metadata", {}).get("ownerReferences") or []
        if data == body["data"] and _same_owners(owners, meta["ownerReferences"]):
            self._written[key] = wanted
            return False
        # A merge patch: keys of models no longer served are removed with nulls.
        patch = {
            "metadata": {"labels": meta["labels"], "ownerReferences": meta["ownerReferences"]},
            "data": {**{k: None for k in data if k not in body["data"]}, **body["data"]},
        }
        self._client.request(
            "PATCH", f"{path}/{meta['name']}", patch, "application/merge-patch+json"
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

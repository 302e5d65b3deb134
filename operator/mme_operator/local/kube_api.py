"""A local Kubernetes API server for tests and the demo: kmock's emulator, made stricter.

kmock's ``KubernetesEmulator`` stores objects and serves lists, watches, patches and
finalizers over real HTTP, but treats every object as plain JSON. The operator relies on
a few API-server behaviours on top of that, so this subclass adds them:

- ``metadata.uid``, ``generation``, ``resourceVersion`` and ``creationTimestamp`` on create;
- ``generation`` bumped only when ``spec`` changes (``observedGeneration`` depends on it);
- CustomResourceDefinitions are served: creating one registers its resources for
  discovery, and with a ``status`` subresource, writes to the main resource ignore
  ``status`` while writes to ``/status`` touch nothing else;
- constant cost per request: kmock's record of past requests (for assertions, which nothing
  here makes) is not kept, since matching scans it.

It stands in for Kubernetes in ``mme-operator demo`` only; the tests use a real API server
(``scripts/envtest.sh``), except where they want one without the CRD's schema.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp.web
import attrs
from kmock import KubernetesEmulator, Request, ResourceInfo, action

from mme_operator.local.faults import CallCounter

CRD_RESOURCE = "apiextensions.k8s.io/v1/customresourcedefinitions"

_versions = itertools.count(1)


def _merge(base: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7386), as the API server applies ``merge-patch+json``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _prune_nulls(value: Any, *, keep_removals: bool) -> Any:
    """A custom resource as the API server stores it: fields set to null are pruned.

    (None of our CRD's fields is ``nullable``.) In a merge patch a null outside a list
    removes its field, so those stay for the merge; a list replaces what is stored whole,
    so nulls inside it are pruned like a created object's.
    """
    if isinstance(value, dict):
        return {
            k: _prune_nulls(v, keep_removals=keep_removals)
            for k, v in value.items()
            if keep_removals or v is not None
        }
    if isinstance(value, list):
        return [_prune_nulls(v, keep_removals=False) for v in value]
    return value


@attrs.define(kw_only=True)
class KubeEmulator(KubernetesEmulator):
    """kmock's Kubernetes emulator with the API-server semantics the operator needs."""

    _status_subresources: set[str] = attrs.field(factory=set, init=False)
    _custom_resources: set[str] = attrs.field(factory=set, init=False)
    writes: CallCounter = attrs.field(factory=CallCounter, init=False)
    """Writes received, by ``"<ACTION> <plural>[/<subresource>]"`` (``UPDATE x/status``)."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        verbs = {"get", "list", "watch", "create", "update", "patch", "delete"}
        # The core resources kopf's discovery waits for, besides CRDs.
        self.resources[CRD_RESOURCE] = ResourceInfo(
            kind="CustomResourceDefinition",
            singular="customresourcedefinition",
            namespaced=False,
            verbs=verbs,
        )
        self.resources["v1/namespaces"] = ResourceInfo(
            kind="Namespace", singular="namespace", namespaced=False, verbs=verbs
        )
        self.resources["v1/events"] = ResourceInfo(
            kind="Event", singular="event", namespaced=True, verbs=verbs
        )
        # The ``<name>-models`` ConfigMaps the operator writes for clients.
        self.resources["v1/configmaps"] = ResourceInfo(
            kind="ConfigMap", singular="configmap", namespaced=True, verbs=verbs
        )

    def register_crd(self, crd: dict[str, Any]) -> None:
        """Serve the resources a CustomResourceDefinition declares (discovery, subresources)."""
        spec = crd["spec"]
        names = spec["names"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            key = f"{spec['group']}/{version['name']}/{names['plural']}"
            has_status = "status" in version.get("subresources", {})
            self.resources[key] = ResourceInfo(
                kind=names["kind"],
                singular=names.get("singular", names["kind"].lower()),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                shortnames=set(names.get("shortNames", [])),
                categories=set(names.get("categories", [])),
                subresources={"status"} if has_status else set(),
                verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
            )
            self._custom_resources.add(key)
            if has_status:
                self._status_subresources.add(key)

    def _current(self, request: Request) -> dict[str, Any] | None:
        if request.resource is None or request.name is None:
            return None
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        raw: dict[str, Any] = self.objects[key].raw
        return raw

    async def _handle(self, request: Request) -> aiohttp.web.StreamResponse:
        # kmock records every request, and matching one against its reactions scans that
        # whole record (``request in view`` iterates it): O(n) per request, O(n^2) per run.
        # Nothing here asserts on past requests, so only the current one is kept.
        del self._requests[:-1]
        if request.resource is not None and request.action in (
            action.CREATE,
            action.UPDATE,
            action.DELETE,
        ):
            target = str(request.resource.plural) + (
                f"/{request.subresource}" if request.subresource else ""
            )
            self.writes.record(f"{request.action.value} {target}")
        if request.resource is not None and isinstance(request.data, dict):
            self._apply_server_semantics(request)
        return await super()._handle(request)

    def _apply_server_semantics(self, request: Request) -> None:
        data: dict[str, Any] = request.data
        res = request.resource
        assert res is not None
        resource_key = (
            f"{res.group}/{res.version}/{res.plural}"
            if res.group
            else f"{res.version}/{res.plural}"
        )
        status_only = resource_key in self._status_subresources
        if resource_key in self._custom_resources:
            pruned = _prune_nulls(data, keep_removals=request.action == action.UPDATE)
            data.clear()
            data.update(pruned)
        meta = data.setdefault("metadata", {})
        if request.action == action.CREATE:
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("generation", 1)
            meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            meta["resourceVersion"] = str(next(_versions))
            if status_only:
                data.pop("status", None)
            if resource_key == CRD_RESOURCE:
                self.register_crd(data)
        elif request.action == action.UPDATE and request.name is not None:
            current = self._current(request)
            if current is None:
                return
            if request.subresource == "status":
                # Only status changes through /status.
                for key in list(data):
                    if key not in ("status", "metadata"):
                        data.pop(key)
                data["metadata"] = {}
            elif status_only:
                data.pop("status", None)
            merged = _merge(current, data)
            if merged.get("spec") != current.get("spec"):
                meta = data.setdefault("metadata", {})
                meta["generation"] = int(current.get("metadata", {}).get("generation", 1)) + 1
            data.setdefault("metadata", {})["resourceVersion"] = str(next(_versions))

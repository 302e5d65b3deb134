"""kopf glue for Models (kind Model): the index, the poke, and writing their status.

No per-Model change handlers: kopf writes no progress annotation and no finalizer on
thousands of Models. An index (filled from the initial listing before any handler runs,
so an endpoint's first pass after a restart sees every Model) holds each Model under the
endpoint it names; an event watcher tells that endpoint a Model changed by patching one
annotation on it, coalesced per endpoint, so 5,000 Model creations make a few patches and
the endpoint's own reconcile does the work (reconcile/attached.py). That pass returns each
Model's status, written here through the status subresource only when it changed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
from pydantic import ValidationError

from mme_operator.api import GROUP, VERSION, ModelStatus, Reason
from mme_operator.api.model import (
    MODEL_PLURAL,
    AttachedModelStatus,
    ModelResource,
    validate_model,
)
from mme_operator.api.spec import PLURAL, AttachFrom, AttachSpec
from mme_operator.kube import KubeApiError, KubeLoginError
from mme_operator.kube.client import KubeClient
from mme_operator.reconcile.attach import (
    AttachedInput,
    Labels,
    admit,
    previous_model_status,
    status_changed,
    unattached_status,
)

log = logging.getLogger("mme_operator.models")

CHANGED_ANNOTATION = "models.mme-operator.io/changed"
"""Patched on a ModelEndpoint when one of its Models changed: its update handler runs.

Outside ``mme-operator.io/`` on purpose: the digest of the handled spec counts it (see
handlers.DigestDiffBaseStorage), so the patch makes kopf call the update handler."""
POKE_DELAY_SECONDS = 0.5
"""Changes within this time of a first one make one patch of the endpoint."""
NAMESPACE_LABELS_TTL_SECONDS = 10.0
STATUS_WRITERS = 16
"""Model status writes side by side at the end of a pass (5,000 new Models: 5,000 PATCHes;
8 at a time wrote about 160 a second on 2 cores, the API server not yet busy)."""

EndpointKey = tuple[str, str]


def _key_of(body: Mapping[str, Any]) -> EndpointKey | None:
    spec = body.get("spec")
    ref = spec.get("endpointRef") if isinstance(spec, Mapping) else None
    if not isinstance(ref, Mapping) or not isinstance(ref.get("name"), str):
        return None
    meta = body.get("metadata") or {}
    return str(ref.get("namespace") or meta.get("namespace")), ref["name"]


def _kept(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the index keeps of a Model: metadata's identity, spec and status."""
    meta = body.get("metadata") or {}
    return {
        "metadata": {
            k: meta.get(k) for k in ("name", "namespace", "uid", "generation", "creationTimestamp")
        },
        "spec": body.get("spec"),
        "status": body.get("status"),
    }


class ModelAttachments:
    """The operator's view of Models: index, pokes, Model status writes."""

    def __init__(self, kube: KubeClient | None) -> None:
        self.kube = kube
        self._seen: dict[str, tuple[EndpointKey | None, int]] = {}
        self._bodies: dict[str, dict[str, Any]] = {}
        self._written: dict[str, AttachedModelStatus] = {}
        self._departed: dict[EndpointKey, list[ModelStatus]] = {}
        self._caches: dict[str, dict[Any, Any]] = {}
        self._labels: dict[str, tuple[float, Labels | None]] = {}
        self._pending: dict[EndpointKey, asyncio.Task[None]] = {}
        self._guard = threading.Lock()
        self._pokes = 0

    # -- kopf ----------------------------------------------------------------------------

    def register(self, registry: kopf.OperatorRegistry) -> None:
        @kopf.index(GROUP, VERSION, MODEL_PLURAL, registry=registry, id="attached_models")
        def attached_models(body: kopf.Body, **_: Any) -> dict[EndpointKey, dict[str, Any]] | None:
            key = _key_of(body)
            return None if key is None else {key: _kept(body)}

        @kopf.on.event(GROUP, VERSION, MODEL_PLURAL, registry=registry, id="model_events")
        async def model_event(type: str | None, body: kopf.Body, **_: Any) -> None:
            await self.noticed(type, dict(body))

    async def noticed(self, kind: str | None, body: dict[str, Any]) -> None:
        """A Model event: poke the endpoint(s) it names when what they serve changed."""
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid"))
        key = _key_of(body)
        generation = int(meta.get("generation") or 1)
        with self._guard:
            last = self._seen.get(uid)
            if kind == "DELETED":
                self._seen.pop(uid, None)
                self._bodies.pop(uid, None)
                written = self._written.pop(uid, None)
                gone = previous_model_status(written or _status_of(body))
                if key is not None and gone is not None and gone.s3_key:
                    self._departed.setdefault(key, []).append(gone)
            else:
                self._seen[uid] = (key, generation)
                self._bodies[uid] = _kept(body)
        if kind == "DELETED":
            changed = True
        elif last is None:
            status = body.get("status") or {}
            endpoint = f"{key[0]}/{key[1]}" if key else None
            changed = (
                status.get("observedGeneration") != generation or status.get("endpoint") != endpoint
            )
        else:
            changed = last != (key, generation)
        if not changed:
            return
        for target in {key, last[0] if last else None} - {None}:
            assert target is not None
            self._poke(target)

    def _poke(self, key: EndpointKey) -> None:
        if key in self._pending and not self._pending[key].done():
            return
        self._pending[key] = asyncio.get_running_loop().create_task(self._poke_later(key))

    async def _poke_later(self, key: EndpointKey) -> None:
        await asyncio.sleep(POKE_DELAY_SECONDS)
        self._pending.pop(key, None)
        try:
            found = await asyncio.to_thread(self._patch_endpoint, key)
        except (KubeApiError, KubeLoginError) as exc:
            log.warning("Telling ModelEndpoint %s/%s of its Models failed: %s", *key, exc)
            return
        if not found:
            await asyncio.to_thread(
                self._mark_unattached,
                key,
                Reason.ENDPOINT_NOT_FOUND,
                f"ModelEndpoint {key[0]}/{key[1]} does not exist",
            )

    def _patch_endpoint(self, key: EndpointKey) -> bool:
        """Patch the changed annotation on the endpoint; False when it does not exist."""
        if self.kube is None:
            return True
        self._pokes += 1
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{key[0]}/{PLURAL}/{key[1]}"
        patch = {"metadata": {"annotations": {CHANGED_ANNOTATION: f"{time.time():.3f}"}}}
        try:
            self.kube.request("PATCH", path, patch, "application/merge-patch+json")
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # -- the endpoint's pass -------------------------------------------------------------

    def input_for(
        self, body: Mapping[str, Any], index: kopf.Index[EndpointKey, dict[str, Any]] | None
    ) -> AttachedInput:
        """The Models naming the endpoint ``body``, as its pass takes them."""
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        raw = _models_of(index, key)
        models: list[ModelResource] = []
        invalid: dict[str, tuple[ModelResource | None, str]] = {}
        for doc in raw:
            model, problems = validate_model(doc)
            uid = str((doc.get("metadata") or {}).get("uid"))
            with self._guard:
                # The index is filled before any handler runs; the event watcher may not
                # have seen this Model yet (a restart): its status is written all the same.
                if uid not in self._bodies:
                    self._bodies[uid] = doc
                    generation = int((doc.get("metadata") or {}).get("generation") or 1)
                    self._seen.setdefault(uid, (key, generation))
            written = self._written.get(uid)
            if model is None:
                invalid[uid] = (None, "; ".join(str(p) for p in problems))
                continue
            if written is not None and written.observed_generation == model.metadata.generation:
                model = model.model_copy(update={"status": written})
            models.append(model)
        with self._guard:
            departed = self._departed.pop(key, [])
        cache = self._caches.setdefault(str(meta.get("uid")), {})
        return AttachedInput(models, self.namespace_labels, invalid, departed, cache)

    def archive_keys(
        self, body: Mapping[str, Any], index: kopf.Index[EndpointKey, dict[str, Any]] | None
    ) -> set[str]:
        """The S3 keys the Models naming the endpoint ``body`` serve, as their status says
        (the last written, else the one the index holds): what its drift check looks for."""
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        keys: set[str] = set()
        for doc in _models_of(index, key):
            uid = str((doc.get("metadata") or {}).get("uid"))
            written = self._written.get(uid)
            if written is not None:
                found = [written.s3_key, written.serving_s3_key]
            else:
                status = doc.get("status")
                status = status if isinstance(status, Mapping) else {}
                found = [status.get("s3Key"), status.get("servingS3Key")]
            keys.update(k for k in found if isinstance(k, str) and k)
        return keys

    def admission_changed(
        self, body: Mapping[str, Any], index: kopf.Index[EndpointKey, dict[str, Any]] | None
    ) -> str | None:
        """Why the Models of a ``Selector`` endpoint are admitted otherwise than their status
        says (a namespace's labels changed), or None. No AWS call; labels are cached."""
        spec = body.get("spec")
        raw = spec.get("attach") if isinstance(spec, Mapping) else None
        try:
            attach = AttachSpec.model_validate(raw) if isinstance(raw, Mapping) else None
        except ValidationError:
            return None
        if attach is None or attach.from_ != AttachFrom.SELECTOR:
            return None
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        models = [
            model for doc in _models_of(index, key) if (model := validate_model(doc)[0]) is not None
        ]
        admission = admit(f"{key[0]}/{key[1]}", attach, models, self.namespace_labels)
        for model in models:
            uid = model.metadata.uid
            status = self._written.get(uid) or model.status
            accepted = next(
                (c for c in (status.conditions if status else None) or [] if c.type == "Accepted"),
                None,
            )
            was = accepted is not None and accepted.status == "True"
            refusal = admission.refused.get(uid)
            if refusal is not None and refusal.reason != Reason.NOT_ALLOWED_BY_ENDPOINT:
                continue
            if was != (refusal is None):
                verdict = "admitted" if refusal is None else "no longer admitted"
                return f"Model {model.metadata.namespace}/{model.metadata.name} is {verdict}"
        return None

    def namespace_labels(self, namespace: str) -> Labels | None:
        """A namespace's labels, read at most once per NAMESPACE_LABELS_TTL_SECONDS."""
        now = time.monotonic()
        cached = self._labels.get(namespace)
        if cached is not None and now - cached[0] < NAMESPACE_LABELS_TTL_SECONDS:
            return cached[1]
        labels: Labels | None = None
        if self.kube is not None:
            try:
                found = self.kube.request("GET", f"/api/v1/namespaces/{namespace}")
                labels = (found.get("metadata") or {}).get("labels") or {}
            except (KubeApiError, KubeLoginError) as exc:
                log.warning("Reading namespace %s failed: %s", namespace, exc)
        self._labels[namespace] = (now, labels)
        return labels

    def write(self, models: Mapping[str, AttachedModelStatus]) -> None:
        """Write each Model's status that changed (status subresource), side by side."""
        writes = []
        for uid, status in models.items():
            body = self._bodies.get(uid)
            if body is None:
                continue
            current = self._written.get(uid) or _status_of(body)
            if status_changed(current, status):
                writes.append((uid, body, status))
        if not writes or self.kube is None:
            return
        with ThreadPoolExecutor(max_workers=min(STATUS_WRITERS, len(writes))) as pool:
            list(pool.map(lambda w: self._write_one(*w), writes))

    def _write_one(self, uid: str, body: Mapping[str, Any], status: AttachedModelStatus) -> None:
        assert self.kube is not None
        meta = body["metadata"]
        path = (
            f"/apis/{GROUP}/{VERSION}/namespaces/{meta['namespace']}/{MODEL_PLURAL}/"
            f"{meta['name']}/status"
        )
        new = status.to_k8s()
        old = body.get("status") or {}
        patch = {"status": {**{k: None for k in old if k not in new}, **new}}
        try:
            self.kube.request("PATCH", path, patch, "application/merge-patch+json")
        except (KubeApiError, KubeLoginError) as exc:
            if not (isinstance(exc, KubeApiError) and exc.status == 404):
                log.warning(
                    "Writing the status of Model %s/%s failed: %s",
                    meta["namespace"],
                    meta["name"],
                    exc,
                )
            return
        self._written[uid] = status

    def endpoint_gone(self, namespace: str, name: str, uid: str) -> None:
        """The endpoint was deleted: its Models are Accepted=False/EndpointGone."""
        self._mark_unattached(
            (namespace, name),
            Reason.ENDPOINT_GONE,
            f"ModelEndpoint {namespace}/{name} was deleted; this Model is served no more",
        )
        self._caches.pop(uid, None)

    def _mark_unattached(self, key: EndpointKey, reason: Reason, message: str) -> None:
        with self._guard:
            named = [
                (uid, body)
                for uid, (target, _) in self._seen.items()
                if target == key and (body := self._bodies.get(uid)) is not None
            ]
        statuses = {}
        for uid, body in named:
            model, _ = validate_model(body)
            if model is not None:
                statuses[uid] = unattached_status(model, reason, message)
        self.write(statuses)


_SNAPSHOT_TRIES = 5


def _models_of(
    index: kopf.Index[EndpointKey, dict[str, Any]] | None, key: EndpointKey
) -> list[dict[str, Any]]:
    """A copy of the Models the index holds under ``key``, taken from a worker thread.

    kopf changes the index on the event loop while a handler's thread reads it: a copy
    that meets a change ("dictionary changed size during iteration") is taken again.
    """
    for attempt in range(_SNAPSHOT_TRIES):
        try:
            return list(index.get(key, [])) if index is not None else []
        except RuntimeError:
            if attempt == _SNAPSHOT_TRIES - 1:
                raise
    return []


def _status_of(body: Mapping[str, Any]) -> AttachedModelStatus | None:
    from mme_operator.api.model import model_status

    return model_status(body.get("status"))

"""Observed state: what S3 and SageMaker hold now. Observing never changes anything."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import botocore.exceptions

from mme_operator.api import ModelEndpointStatus, Phase
from mme_operator.artifacts import ArtifactStore, StoredArchive, archive_folder
from mme_operator.reconcile.desired import DesiredState
from mme_operator.sagemaker.autoscaling import ObservedScaling, observe_scaling
from mme_operator.sagemaker.clients import AwsClients
from mme_operator.sagemaker.errors import is_missing_bucket
from mme_operator.sagemaker.gateway import EndpointState, OwnedResource, SageMakerGateway
from mme_operator.sagemaker.resources import OWNER_UID_TAG, is_claimed

# Endpoint states in which SageMaker accepts no change and the operator only waits.
TRANSITIONAL = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})

LIST_PAGE_KEYS = 1000
"""Keys S3 returns per ListObjectsV2 page (its MaxKeys default and ceiling)."""


@dataclass(frozen=True)
class ObservedState:
    """A read-only snapshot of one ModelEndpoint's AWS resources."""

    endpoint: EndpointState | None
    endpoint_owner_uid: str | None
    model_exists: bool
    endpoint_config_exists: bool
    archives: Mapping[str, StoredArchive]
    scaling: ObservedScaling | None
    superseded_configs: tuple[str, ...] = ()
    superseded_models: tuple[str, ...] = ()
    serving_instance_type: str | None = None
    """The instance type the endpoint runs now; read only when its config is not the desired one."""
    endpoint_claimed: bool = False
    """The endpoint carries an ``mme-operator.io/`` tag: some ModelEndpoint holds it."""

    def owns_endpoint(self, owner_uid: str) -> bool:
        return self.endpoint is not None and self.endpoint_owner_uid == owner_uid


def _superseded(owned: list[OwnedResource], keep: str) -> tuple[str, ...]:
    return tuple(r.name for r in owned if r.name != keep)


def _store(clients: AwsClients, desired: DesiredState) -> ArtifactStore:
    """The endpoint's archives, its attached Models' namespace folders included."""
    return ArtifactStore(
        clients.s3,
        desired.bucket,
        desired.prefix,
        desired.owner_uid,
        namespaces=desired.archive_namespaces,
    )


def recorded_archives(
    status: ModelEndpointStatus | None, owner_uid: str
) -> dict[str, StoredArchive]:
    """The archives a previous pass saw as ours, with their ETags, from ``status``.

    Listed again with the same ETag, they need no HEAD to know their owner.
    """
    return {
        m.s3_key: StoredArchive(m.s3_key, 0, m.sha256, owner_uid, m.name, etag=m.etag)
        for m in (status.models or [] if status else [])
        if m.s3_key and m.etag
    }


def folders_to_list(
    desired: DesiredState,
    known: Mapping[str, StoredArchive],
    previous: ModelEndpointStatus | None,
) -> frozenset[str] | None:
    """The folders a pass lists of an endpoint with attached Models; None: the whole prefix.

    A folder (one namespace's, or "" for the inline models) is listed when something in it
    is not as the last pass left it: a desired archive not recorded, a recorded one no
    longer desired, an archive kept for its grace period, still serving or previous. The others'
    archives are taken from the status (the last pass listed them). So one Model's change
    costs its namespace's listing, not the pages of every archive of the endpoint. Where
    the listings would outnumber those pages (the first pass), the whole prefix is listed.
    """
    if not desired.archive_namespaces or previous is None or not known:
        return None
    wanted = {a.key for a in desired.archives}
    recorded = set(known)
    changed = (wanted ^ recorded) | {s.s3_key for s in previous.superseded_archives or []}
    for model in previous.models or []:
        changed |= {k for k in (model.serving_s3_key, model.previous_s3_key) if k}
    folders = frozenset(archive_folder(desired.prefix, key) for key in changed)
    pages = math.ceil(len(wanted | recorded) / LIST_PAGE_KEYS)
    return folders if len(folders) < pages else None


def _settled(previous: ModelEndpointStatus | None, config_name: str) -> bool:
    """Whether the last pass left the endpoint Ready on ``config_name``.

    That pass found the model and config in place and removed the superseded ones (a
    pass that could not is not Ready), so a pass that finds the endpoint still serving
    that config need not list or describe them again.
    """
    return (
        previous is not None
        and previous.phase == Phase.READY
        and previous.endpoint_config_name == config_name
    )


def observe(
    clients: AwsClients,
    desired: DesiredState,
    known_archives: Mapping[str, StoredArchive] | None = None,
    gateway: SageMakerGateway | None = None,
    previous: ModelEndpointStatus | None = None,
    every_folder: bool = False,
) -> ObservedState:
    """Read what exists for ``desired`` (describe / list / head calls only).

    ``known_archives`` (see :func:`recorded_archives`) spares a HEAD per archive: S3 costs
    one listing of the prefix in a steady pass, whatever the number of models.
    ``previous`` (the object's status) spares, when the last pass left the endpoint Ready
    on the desired config and it still serves it, the model / config describes and the
    listing of superseded ones: a pass that only changes archives costs one
    DescribeEndpoint, its tags, one S3 listing and the autoscaling read. With attached
    Models, it also spares listing the folders where nothing changed (see
    :func:`folders_to_list`), unless ``every_folder``.
    """
    gateway = gateway or clients.gateway()
    sm = desired.sagemaker
    endpoint = gateway.describe_endpoint(sm.endpoint.name)
    tags = gateway.tags_of(endpoint.arn) if endpoint is not None else {}
    owner = tags.get(OWNER_UID_TAG)
    store = _store(clients, desired)
    folders = None if every_folder else folders_to_list(desired, known_archives or {}, previous)
    archives = store.observe(known_archives, folders)
    scaling = (
        observe_scaling(clients.autoscaling, sm.endpoint.name) if endpoint is not None else None
    )
    steady = (
        endpoint is not None
        and endpoint.status == "InService"
        and endpoint.config_name == sm.endpoint_config.name
        and owner == desired.owner_uid
    )
    superseded_configs: tuple[str, ...] = ()
    superseded_models: tuple[str, ...] = ()
    serving_instance_type = None
    settled = steady and _settled(previous, sm.endpoint_config.name)
    if endpoint is not None and endpoint.config_name != sm.endpoint_config.name:
        # An instance-type change needs autoscaling deregistered first (SageMaker's rule).
        serving_instance_type = gateway.instance_type_of(endpoint.config_name)
    if steady and not settled:
        # Only once the endpoint runs the desired config are older ones safe to remove.
        superseded_configs = _superseded(
            gateway.list_owned_endpoint_configs(sm.endpoint.name, desired.owner_uid),
            sm.endpoint_config.name,
        )
        superseded_models = _superseded(
            gateway.list_owned_models(sm.endpoint.name, desired.owner_uid), sm.model.name
        )
    return ObservedState(
        endpoint=endpoint,
        endpoint_owner_uid=owner,
        model_exists=settled or gateway.describe_model(sm.model.name) is not None,
        endpoint_config_exists=settled
        or gateway.describe_endpoint_config(sm.endpoint_config.name) is not None,
        archives=archives,
        scaling=scaling,
        superseded_configs=superseded_configs,
        superseded_models=superseded_models,
        serving_instance_type=serving_instance_type,
        endpoint_claimed=is_claimed(tags),
    )


@dataclass(frozen=True)
class ObservedForDeletion:
    """What a deletion still has to remove."""

    endpoint: EndpointState | None
    endpoint_owner_uid: str | None
    configs: tuple[str, ...]
    models: tuple[str, ...]
    archives: Mapping[str, StoredArchive]
    scaling: ObservedScaling | None


def observe_for_deletion(
    clients: AwsClients,
    desired: DesiredState,
    known_archives: Mapping[str, StoredArchive] | None = None,
    gateway: SageMakerGateway | None = None,
) -> ObservedForDeletion:
    """Read everything this ModelEndpoint owns (read-only); each delete reads its owner again."""
    gateway = gateway or clients.gateway()
    name = desired.endpoint_name
    endpoint = gateway.describe_endpoint(name)
    owner = gateway.tags_of(endpoint.arn).get(OWNER_UID_TAG) if endpoint is not None else None
    store = _store(clients, desired)
    try:
        archives = store.observe(known_archives)
    except botocore.exceptions.ClientError as exc:
        if not is_missing_bucket(exc):
            raise
        archives = {}  # no bucket, no archive of ours: nothing to remove there
    return ObservedForDeletion(
        endpoint=endpoint,
        endpoint_owner_uid=owner,
        configs=tuple(r.name for r in gateway.list_owned_endpoint_configs(name, desired.owner_uid)),
        models=tuple(r.name for r in gateway.list_owned_models(name, desired.owner_uid)),
        archives=archives,
        scaling=observe_scaling(clients.autoscaling, name) if endpoint is not None else None,
    )

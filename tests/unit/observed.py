"""Observed states for the pure plan / status tests: what a pass would have read from AWS."""

from __future__ import annotations

from mme_operator.artifacts import StoredArchive
from mme_operator.reconcile.desired import DesiredState
from mme_operator.reconcile.observe import ObservedState
from mme_operator.sagemaker import EndpointState


def in_service(
    current: DesiredState, *versions: DesiredState, uid: str, owner: str | None = None
) -> ObservedState:
    """An InService endpoint of ``uid`` on ``current``'s config; S3 holds the archives of
    ``versions``, tagged as ``owner``'s (default ``uid``)."""
    archives = {
        a.key: StoredArchive(a.key, 10, f"sha-{a.key}", owner or uid, a.model_name)
        for d in versions
        for a in d.archives
    }
    return ObservedState(
        endpoint=EndpointState(
            name=current.endpoint_name,
            arn=f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{current.endpoint_name}",
            status="InService",
            config_name=current.sagemaker.endpoint_config.name,
        ),
        endpoint_owner_uid=uid,
        model_exists=True,
        endpoint_config_exists=True,
        archives=archives,
        scaling=None,
    )

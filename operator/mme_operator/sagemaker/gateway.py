"""A thin, typed, idempotent wrapper over the SageMaker calls the apply step makes.

Reads return None for "not there". Creates treat "already exists" as a read: names carry
identity (see :mod:`mme_operator.sagemaker.names`), so an existing resource of that name is
the one a retried step wanted. Deletes remove only what carries this owner's uid tag.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, cast

import botocore.exceptions

from mme_operator.sagemaker.deployment import Rollout, rollout_of
from mme_operator.sagemaker.errors import ErrorClass, classify, is_already_exists, is_throttling
from mme_operator.sagemaker.names import derived_name_pattern, name_prefix
from mme_operator.sagemaker.resources import (
    OWNER_UID_TAG,
    VARIANT_NAME,
    DesiredEndpoint,
    DesiredEndpointConfig,
    DesiredModel,
    is_claimed,
)

if TYPE_CHECKING:
    from mypy_boto3_sagemaker.client import SageMakerClient
    from mypy_boto3_sagemaker.type_defs import (
        DescribeEndpointConfigOutputTypeDef,
        DescribeModelOutputTypeDef,
        TagTypeDef,
    )
    from mypy_boto3_sagemaker_runtime.client import SageMakerRuntimeClient

T = TypeVar("T")


class NotOwnedError(Exception):
    """A resource the operator was asked to change does not carry this owner's uid tag.

    The message never names the other owner: it goes into this tenant's status and events.
    """

    def __init__(self, kind: str, name: str, owner_uid: str | None) -> None:
        self.kind = kind
        self.name = name
        self.owner_uid = owner_uid
        owner = "another owner's tag" if owner_uid else "no owner-uid tag"
        super().__init__(
            f"SageMaker {kind} {name!r} is not owned by this ModelEndpoint ({owner}); "
            "it was left in place"
        )


@dataclass(frozen=True)
class EndpointState:
    """What DescribeEndpoint says about an endpoint."""

    name: str
    arn: str
    status: str
    """Creating, Updating, SystemUpdating, RollingBack, InService, OutOfService, Deleting, Failed."""
    config_name: str
    """The EndpointConfig in effect."""
    failure_reason: str | None = None
    pending_config_name: str | None = None
    """The EndpointConfig being rolled out while Updating."""
    current_instance_count: int | None = None
    desired_instance_count: int | None = None
    rollout: Rollout | None = None
    """The update under way (deployment guardrails' phase), from PendingDeploymentSummary."""


@dataclass(frozen=True)
class CreateResult:
    """The ARN of a resource a create asked for, and whether this call created it."""

    arn: str
    created: bool


@dataclass(frozen=True)
class OwnedResource:
    """A Model or EndpointConfig found by listing, owned by the asking ModelEndpoint."""

    name: str
    arn: str
    creation_time: datetime


class SageMakerGateway:
    """SageMaker Model / EndpointConfig / Endpoint calls for the reconcile's apply step."""

    def __init__(
        self,
        client: SageMakerClient,
        runtime: SageMakerRuntimeClient | None = None,
        *,
        cache_reads: bool = False,
        throttle_attempts: int = 1,
    ) -> None:
        self._client: SageMakerClient = (
            cast("SageMakerClient", _ThrottleRetrying(client, throttle_attempts))
            if throttle_attempts > 1
            else client
        )
        self._runtime = runtime
        # One reconcile pass asks some things twice (an endpoint's tags when observing and
        # again before deleting it); under heavy throttling every call saved is one fewer
        # chance to fail the pass. Only for a gateway that lives one pass: it never polls.
        self._reads: dict[tuple[str, str], Any] | None = {} if cache_reads else None

    def _read(self, kind: str, key: str, call: Callable[[], T]) -> T:
        if self._reads is None:
            return call()
        if (kind, key) not in self._reads:
            self._reads[(kind, key)] = call()
        return cast(T, self._reads[(kind, key)])

    def _forget(self, kind: str, key: str) -> None:
        if self._reads is not None:
            self._reads.pop((kind, key), None)

    # -- reads ---------------------------------------------------------------------------

    def describe_endpoint(self, name: str) -> EndpointState | None:
        """The endpoint's state, or None when there is no endpoint of that name."""
        found = self._read(
            "endpoint",
            name,
            lambda: _none_if_not_found(lambda: self._client.describe_endpoint(EndpointName=name)),
        )
        if found is None:
            return None
        pending = found.get("PendingDeploymentSummary")
        variant = next(
            (v for v in found.get("ProductionVariants", []) if v["VariantName"] == VARIANT_NAME),
            None,
        )
        return EndpointState(
            name=found["EndpointName"],
            arn=found["EndpointArn"],
            status=found["EndpointStatus"],
            config_name=found["EndpointConfigName"],
            failure_reason=found.get("FailureReason") or None,
            pending_config_name=pending["EndpointConfigName"] if pending else None,
            current_instance_count=variant.get("CurrentInstanceCount") if variant else None,
            desired_instance_count=variant.get("DesiredInstanceCount") if variant else None,
            rollout=rollout_of(found),
        )

    def instance_type_of(self, config_name: str) -> str | None:
        """The AllTraffic variant's instance type in an EndpointConfig; None when unknown."""
        config = self.describe_endpoint_config(config_name)
        variants = config.get("ProductionVariants", []) if config else []
        variant = next((v for v in variants if v["VariantName"] == VARIANT_NAME), None)
        return variant.get("InstanceType") if variant else None

    def describe_endpoint_config(self, name: str) -> DescribeEndpointConfigOutputTypeDef | None:
        """DescribeEndpointConfig's answer, or None when there is no such config."""
        return self._read(
            "endpoint-config",
            name,
            lambda: _none_if_not_found(
                lambda: self._client.describe_endpoint_config(EndpointConfigName=name)
            ),
        )

    def describe_model(self, name: str) -> DescribeModelOutputTypeDef | None:
        """DescribeModel's answer, or None when there is no such model."""
        return self._read(
            "model",
            name,
            lambda: _none_if_not_found(lambda: self._client.describe_model(ModelName=name)),
        )

    def tags_of(self, arn: str) -> dict[str, str]:
        """All tags of a SageMaker resource, as a dict."""
        return dict(self._read("tags", arn, partial(self._list_tags, arn)))

    def _list_tags(self, arn: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        token: str | None = None
        while True:  # not a paginator: its calls would bypass the throttling retries
            page = (
                self._client.list_tags(ResourceArn=arn, NextToken=token)
                if token
                else self._client.list_tags(ResourceArn=arn)
            )
            for tag in page.get("Tags", []):
                tags[tag["Key"]] = tag["Value"]
            token = page.get("NextToken")
            if not token:
                return tags

    def list_owned_models(self, endpoint_name: str, owner_uid: str) -> list[OwnedResource]:
        """Models named for ``endpoint_name`` and tagged with ``owner_uid``, oldest first."""
        _require_owner_uid(owner_uid)
        pattern = derived_name_pattern(endpoint_name)
        candidates = [
            OwnedResource(m["ModelName"], m["ModelArn"], m["CreationTime"])
            for page in self._client.get_paginator("list_models").paginate(
                NameContains=name_prefix(endpoint_name)
            )
            for m in page.get("Models", [])
            # NameContains is a substring match (and not every server applies it).
            if pattern.match(m["ModelName"])
        ]
        return self._owned(candidates, owner_uid)

    def list_owned_endpoint_configs(
        self, endpoint_name: str, owner_uid: str
    ) -> list[OwnedResource]:
        """EndpointConfigs named for ``endpoint_name`` and tagged with ``owner_uid``, oldest first."""
        _require_owner_uid(owner_uid)
        pattern = derived_name_pattern(endpoint_name)
        candidates = [
            OwnedResource(c["EndpointConfigName"], c["EndpointConfigArn"], c["CreationTime"])
            for page in self._client.get_paginator("list_endpoint_configs").paginate(
                NameContains=name_prefix(endpoint_name)
            )
            for c in page.get("EndpointConfigs", [])
            if pattern.match(c["EndpointConfigName"])
        ]
        return self._owned(candidates, owner_uid)

    def _owned(self, candidates: list[OwnedResource], owner_uid: str) -> list[OwnedResource]:
        owned = []
        for candidate in candidates:
            # Deleted between the list and this call: nothing left to own.
            tags = _none_if_not_found(partial(self.tags_of, candidate.arn))
            if tags is not None and tags.get(OWNER_UID_TAG) == owner_uid:
                owned.append(candidate)
        return sorted(owned, key=lambda r: (r.creation_time, r.name))

    # -- creates and updates -------------------------------------------------------------

    def adopt_endpoint(self, name: str, arn: str, tags: Sequence[TagTypeDef]) -> None:
        """Tag an endpoint no ModelEndpoint holds as ours (the only AddTags after a create).

        Its tags are read afresh first: one that has meanwhile gained any ``mme-operator.io/``
        tag (another ModelEndpoint created or adopted it) raises :class:`NotOwnedError` and
        is not touched.
        """
        self._forget("tags", arn)
        found = self.tags_of(arn)
        if is_claimed(found):
            raise NotOwnedError("Endpoint", name, found.get(OWNER_UID_TAG) or "?")
        self._forget("tags", arn)
        self._client.add_tags(ResourceArn=arn, Tags=list(tags))

    def create_model(self, desired: DesiredModel) -> CreateResult:
        """Create the Model; when it already exists, return the existing one's ARN."""
        self._forget("model", desired.name)
        try:
            arn = self._client.create_model(**desired.request)["ModelArn"]
            return CreateResult(arn=arn, created=True)
        except botocore.exceptions.ClientError as exc:
            if not is_already_exists(exc):
                raise
        return CreateResult(
            arn=self._client.describe_model(ModelName=desired.name)["ModelArn"], created=False
        )

    def create_endpoint_config(self, desired: DesiredEndpointConfig) -> CreateResult:
        """Create the EndpointConfig; when it already exists, return the existing one's ARN."""
        self._forget("endpoint-config", desired.name)
        try:
            arn = self._client.create_endpoint_config(**desired.request)["EndpointConfigArn"]
            return CreateResult(arn=arn, created=True)
        except botocore.exceptions.ClientError as exc:
            if not is_already_exists(exc):
                raise
        existing = self._client.describe_endpoint_config(EndpointConfigName=desired.name)
        return CreateResult(arn=existing["EndpointConfigArn"], created=False)

    def create_endpoint(self, desired: DesiredEndpoint) -> CreateResult:
        """Start creating the Endpoint (it stays Creating for minutes; this does not wait).

        When it already exists, return the existing one's ARN: whether it runs
        ``desired.config_name`` is for the plan to see and fix with :meth:`update_endpoint`.
        """
        self._forget("endpoint", desired.name)
        try:
            arn = self._client.create_endpoint(**desired.request)["EndpointArn"]
            return CreateResult(arn=arn, created=True)
        except botocore.exceptions.ClientError as exc:
            if not is_already_exists(exc):
                raise
        existing = self._client.describe_endpoint(EndpointName=desired.name)
        return CreateResult(arn=existing["EndpointArn"], created=False)

    def update_endpoint(
        self,
        name: str,
        config_name: str,
        owner_uid: str,
        *,
        retain_instance_count: bool = False,
        deployment_config: Mapping[str, Any] | None = None,
    ) -> str:
        """Start rolling the endpoint onto ``config_name``; returns the endpoint ARN.

        Without ``retain_instance_count`` the new config's instance count applies: the spec
        is the truth. With it (an autoscaled endpoint), ``RetainAllVariantProperties`` keeps
        the live instance count and weight that autoscaling set, so a change of image or
        instance type does not shrink a scaled-out fleet to ``spec.instanceCount``.
        SageMaker refuses an update while one is in progress; that error classifies as
        RETRYABLE. ``deployment_config`` (``spec.deploymentConfig``, see
        :mod:`mme_operator.sagemaker.deployment`) goes with every update. Raises :class:`NotOwnedError` (and changes nothing) for an endpoint
        ``owner_uid`` does not own: the plan never asks for that, this makes sure.
        """
        state = self.describe_endpoint(name)
        if state is not None:
            self._require_owned("Endpoint", name, state.arn, owner_uid)
        self._forget("endpoint", name)
        guardrails = {"DeploymentConfig": dict(deployment_config)} if deployment_config else {}
        response = self._client.update_endpoint(
            EndpointName=name,
            EndpointConfigName=config_name,
            RetainAllVariantProperties=retain_instance_count,
            **guardrails,  # type: ignore[arg-type]
        )
        return response["EndpointArn"]

    # -- deletes -------------------------------------------------------------------------

    def delete_endpoint(self, name: str, owner_uid: str) -> bool:
        """Delete the endpoint if ``owner_uid`` owns it; False when it was already gone.

        Raises :class:`NotOwnedError` (and deletes nothing) for anyone else's endpoint.
        """
        state = self.describe_endpoint(name)
        if state is None:
            return False
        self._require_owned("Endpoint", name, state.arn, owner_uid)
        self._forget("endpoint", name)
        return _deleted(lambda: self._client.delete_endpoint(EndpointName=name))

    def delete_endpoint_config(self, name: str, owner_uid: str) -> bool:
        """Delete the EndpointConfig if ``owner_uid`` owns it; False when already gone."""
        config = self.describe_endpoint_config(name)
        if config is None:
            return False
        self._require_owned("EndpointConfig", name, config["EndpointConfigArn"], owner_uid)
        self._forget("endpoint-config", name)
        return _deleted(lambda: self._client.delete_endpoint_config(EndpointConfigName=name))

    def delete_model(self, name: str, owner_uid: str) -> bool:
        """Delete the Model if ``owner_uid`` owns it; False when already gone."""
        model = self.describe_model(name)
        if model is None:
            return False
        self._require_owned("Model", name, model["ModelArn"], owner_uid)
        self._forget("model", name)
        return _deleted(lambda: self._client.delete_model(ModelName=name))

    def _require_owned(self, kind: str, name: str, arn: str, owner_uid: str) -> None:
        _require_owner_uid(owner_uid)
        found = self.tags_of(arn).get(OWNER_UID_TAG)
        if found != owner_uid:
            raise NotOwnedError(kind, name, found)

    # -- data plane ----------------------------------------------------------------------

    def invoke(
        self, endpoint_name: str, target_model: str, body: bytes, content_type: str
    ) -> bytes:
        """Invoke one model of the endpoint (e.g. to warm it up); returns the response body."""
        if self._runtime is None:
            raise RuntimeError("SageMakerGateway was created without a sagemaker-runtime client")
        response = self._runtime.invoke_endpoint(
            EndpointName=endpoint_name,
            TargetModel=target_model,
            Body=body,
            ContentType=content_type,
        )
        return response["Body"].read()


class _ThrottleRetrying:
    """A SageMaker client whose calls are tried again, with jitter, when AWS throttles them.

    botocore retries first; but its retry quota (a token bucket per client) empties under
    sustained throttling, and from then on it fails every throttled call at once, so a
    reconcile pass, which needs all of its reads, would never complete. Every call of the
    operator is idempotent (deterministic names; "already exists" is a read), so trying a
    throttled one again, after a full-jitter exponential pause, is safe.
    """

    def __init__(self, client: Any, attempts: int) -> None:
        self._wrapped = client
        self._attempts = attempts

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._wrapped, name)
        if name.startswith(("get_", "can_")) or not callable(attribute):
            return attribute  # get_paginator, meta, exceptions, ...
        return partial(self._call, attribute)

    def _call(self, method: Callable[..., Any], /, **kwargs: Any) -> Any:
        for attempt in range(self._attempts):
            try:
                return method(**kwargs)
            except botocore.exceptions.ClientError as exc:
                if attempt == self._attempts - 1 or not is_throttling(exc):
                    raise
                time.sleep(_jitter.uniform(0, min(_MAX_PAUSE_SECONDS, 0.2 * 2**attempt)))
        raise AssertionError("unreachable")  # pragma: no cover


_MAX_PAUSE_SECONDS = 5.0
_jitter = random.Random()


def _require_owner_uid(owner_uid: str) -> None:
    # An empty uid would match resources tagged by a uid-less (dry-run) resource: refuse.
    if not owner_uid:
        raise ValueError("owner_uid is empty: ownership cannot be established")


def _none_if_not_found(call: Callable[[], T]) -> T | None:
    try:
        return call()
    except botocore.exceptions.ClientError as exc:
        if classify(exc) is ErrorClass.NOT_FOUND:
            return None
        raise


def _deleted(call: Callable[[], object]) -> bool:
    try:
        call()
    except botocore.exceptions.ClientError as exc:
        if classify(exc) is ErrorClass.NOT_FOUND:
            return False
        raise
    return True

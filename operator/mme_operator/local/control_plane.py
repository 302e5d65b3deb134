"""SageMaker's control plane for Models, EndpointConfigs, Endpoints and their tags.

State is per region, names are case-insensitive (SageMaker lowercases them in ARNs), and
an endpoint's transitional states end by the clock: every call first settles what the
time says has happened, so no thread sleeps through ``Creating`` or ``Updating``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mme_operator.local.constraints import check_request
from mme_operator.local.errors import AwsError, validation
from mme_operator.local.faults import FaultController
from mme_operator.local.guardrails import (
    AlarmState,
    Rollout,
    deployment_errors,
    member_errors,
    plan_rollout,
    rollback_reason,
    tripped_alarms,
)
from mme_operator.sizing import get_catalogue

ACCOUNT_ID = "123456789012"
"""The account every local resource lives in (moto's default account too)."""

TRITON_IMAGE_MARKERS = ("sagemaker-tritonserver", "tritonserver")

BucketExists = Callable[[str], bool]
ScalingRegistered = Callable[[str, str], bool]
"""(region, Application Auto Scaling resource id) -> whether a scalable target is registered."""

# Fleet ids unique across endpoints, so a recreated endpoint never inherits loaded models.
_fleets = itertools.count(1)


def _image_repository(image: str) -> str:
    """``acct.dkr.ecr.region.amazonaws.com/sagemaker-tritonserver:24.09-py3`` -> the repo name."""
    path = image.split("@", 1)[0]
    repository = path.rsplit("/", 1)[-1]
    return repository.split(":", 1)[0]


def is_triton_image(image: str) -> bool:
    """Whether ``image`` names a Triton Inference Server container image."""
    repository = _image_repository(image)
    return any(marker in repository for marker in TRITON_IMAGE_MARKERS)


def model_data_url(container: dict[str, Any]) -> str | None:
    """The S3 URL of a container's model data, from ``ModelDataUrl`` or ``ModelDataSource``."""
    url = container.get("ModelDataUrl")
    if url:
        return str(url)
    source = container.get("ModelDataSource", {}).get("S3DataSource", {})
    return str(source["S3Uri"]) if source.get("S3Uri") else None


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> ``("bucket", "some/prefix/")``."""
    if not url.startswith("s3://"):
        raise ValueError(f"not an S3 URL: {url}")
    bucket, _, key = url[len("s3://") :].partition("/")
    return bucket, key


@dataclass
class Model:
    name: str
    arn: str
    request: dict[str, Any]
    created: float

    @property
    def containers(self) -> list[dict[str, Any]]:
        if "PrimaryContainer" in self.request:
            return [self.request["PrimaryContainer"]]
        return list(self.request.get("Containers", []))

    @property
    def is_multi_model(self) -> bool:
        return any(c.get("Mode") == "MultiModel" for c in self.containers)


@dataclass
class EndpointConfig:
    name: str
    arn: str
    request: dict[str, Any]
    created: float

    @property
    def variants(self) -> list[dict[str, Any]]:
        return list(self.request["ProductionVariants"])


@dataclass
class Deployment:
    """An endpoint config being rolled out, and how the rollout will end."""

    config: EndpointConfig
    started: float
    done_at: float
    failure: str | None
    deployment_config: dict[str, Any] | None = None
    instance_counts: dict[str, int] | None = None
    """Instance count per variant once deployed; None: the config's InitialInstanceCount."""
    rollout: Rollout | None = None
    """The steps of a guarded update (a DeploymentConfig); None: one step, all at once."""


@dataclass
class Endpoint:
    name: str
    arn: str
    status: str
    config: EndpointConfig
    created: float
    modified: float
    pending: Deployment | None = None
    """The deployment under way while Creating or Updating."""
    deleted_at: float | None = None
    failure_reason: str | None = None
    last_deployment_config: dict[str, Any] | None = None
    generation: int = 0
    """Bumped whenever the serving fleet changes, so the data plane drops loaded models."""
    deployed_at: float = 0.0
    instance_counts: dict[str, int] = field(default_factory=dict)
    """Live instance count per variant (UpdateEndpointWeightsAndCapacities changes it)."""

    def instance_count(self, variant: dict[str, Any]) -> int:
        name = str(variant["VariantName"])
        return self.instance_counts.get(name, int(variant.get("InitialInstanceCount", 1)))


@dataclass
class RegionState:
    models: dict[str, Model] = field(default_factory=dict)
    configs: dict[str, EndpointConfig] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    tags: dict[str, list[dict[str, str]]] = field(default_factory=dict)


def _arn(region: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{ACCOUNT_ID}:{kind}/{name.lower()}"


def _required(request: dict[str, Any], *names: str) -> None:
    for name in names:
        if name not in request:
            raise validation(
                f"1 validation error detected: Value null at '{name[0].lower() + name[1:]}' "
                "failed to satisfy constraint: Member must not be null"
            )


class SageMakerControlPlane:
    """The SageMaker operations the operator uses, with the real service's lifecycle.

    ``endpoint_delay`` is how long Creating, Updating and Deleting last. ``bucket_exists``
    tells whether an S3 bucket exists (the moto backend), for the check SageMaker makes
    when it deploys a model whose data lives in S3. ``scaling_registered`` tells whether a
    variant is a scalable target of Application Auto Scaling (the moto backend), for the
    check UpdateEndpoint makes before an instance-type change. ``alarm_state`` reads a
    CloudWatch alarm's state (the moto backend), for deployment guardrails' auto-rollback.
    """

    def __init__(
        self,
        endpoint_delay: float,
        faults: FaultController,
        bucket_exists: BucketExists,
        clock: Callable[[], float] = time.time,
        scaling_registered: ScalingRegistered | None = None,
        alarm_state: AlarmState | None = None,
    ) -> None:
        self.endpoint_delay = endpoint_delay
        self.faults = faults
        self._bucket_exists = bucket_exists
        self._scaling_registered = scaling_registered or (lambda region, resource_id: False)
        self._alarm_state = alarm_state or (lambda region, name: None)
        self._clock = clock
        self._lock = threading.RLock()
        self._regions: dict[str, RegionState] = {}

    # Plumbing.

    def _region(self, region: str) -> RegionState:
        return self._regions.setdefault(region, RegionState())

    def dispatch(self, region: str, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """Serve one JSON 1.1 call; raises ``AwsError`` as AWS would answer it."""
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            raise AwsError("UnknownOperationException", f"Unknown operation {operation}")
        check_request(request)
        with self._lock:
            state = self._region(region)
            self._settle(state, region)
            result: dict[str, Any] = handler(state, region, request)
            return result

    def find_endpoint(self, region: str, name: str) -> tuple[Endpoint, dict[str, Model]] | None:
        """An endpoint after settling its state, and the models of its serving config."""
        with self._lock:
            state = self._region(region)
            self._settle(state, region)
            endpoint = state.endpoints.get(name.lower())
            if endpoint is None:
                return None
            models = {
                m.lower(): state.models[m.lower()]
                for m in (v.get("ModelName", "") for v in endpoint.config.variants)
                if m.lower() in state.models
            }
            return copy.copy(endpoint), models

    # Lifecycle.

    def _settle(self, state: RegionState, region: str) -> None:
        """Apply every transition whose time has come."""
        now = self._clock()
        for key, endpoint in list(state.endpoints.items()):
            if endpoint.status == "Deleting":
                if endpoint.deleted_at is not None and now >= endpoint.deleted_at:
                    del state.endpoints[key]
                    state.tags.pop(endpoint.arn, None)
                continue
            pending = endpoint.pending
            if pending is not None and pending.rollout is not None:
                self._watch_rollout(endpoint, pending, pending.rollout, region, now)
            if pending is not None and now >= pending.done_at:
                self._finish_deployment(endpoint, pending)
            if endpoint.status == "InService":
                reason = self.faults.take_endpoint_failure(endpoint.name)
                if reason is not None:
                    endpoint.status = "Failed"
                    endpoint.failure_reason = reason
                    endpoint.modified = now

    def _watch_rollout(
        self, endpoint: Endpoint, pending: Deployment, rollout: Rollout, region: str, now: float
    ) -> None:
        """Roll a guarded update back when an alarm is in ALARM or its time limit passed."""
        if rollout.rollback_reason is not None:
            return
        tripped = tripped_alarms(rollout, region, now, self._alarm_state)
        timed_out = rollout.timeout_at is not None and now >= rollout.timeout_at
        if not tripped and not (timed_out and now < rollout.done_at):
            return
        rollout.rollback_reason = rollback_reason(tripped, rollout, now)
        rollout.rollback_started = now
        # All traffic returns to the old fleet at once (RollbackMaximumBatchSize aside);
        # the new fleet is taken down while the endpoint is RollingBack.
        pending.failure = rollout.rollback_reason
        pending.done_at = now + self.endpoint_delay
        endpoint.status = "RollingBack"
        endpoint.modified = now

    def _finish_deployment(self, endpoint: Endpoint, pending: Deployment) -> None:
        endpoint.pending = None
        endpoint.modified = pending.done_at
        creating = endpoint.status == "Creating"
        if endpoint.status == "RollingBack":
            endpoint.status = "Updating"  # ends as a failed update: InService, old config
        if pending.deployment_config is not None or not creating:
            endpoint.last_deployment_config = pending.deployment_config
        if pending.failure is None:
            endpoint.status = "InService"
            endpoint.instance_counts = dict(pending.instance_counts or {})
            endpoint.failure_reason = None
            if pending.config is not endpoint.config or creating:
                # A new fleet: nothing is loaded on it yet. Scaling keeps the fleet.
                endpoint.config = pending.config
                endpoint.generation = next(_fleets)
                endpoint.deployed_at = pending.done_at
        elif creating:
            endpoint.status = "Failed"
            endpoint.failure_reason = pending.failure
        else:
            # A failed update rolls back: the old fleet keeps serving the old config.
            endpoint.status = "InService"
            endpoint.failure_reason = pending.failure

    def _deployment_failure(self, state: RegionState, config: EndpointConfig) -> str | None:
        """Why deploying ``config`` would fail, the way SageMaker reports it; None if it works."""
        for variant in config.variants:
            model = state.models.get(str(variant.get("ModelName", "")).lower())
            if model is None:
                return f'Could not find model "{_arn_of_model(config, variant)}".'
            instance_type = variant.get("InstanceType")
            instance = get_catalogue().get(str(instance_type)) if instance_type else None
            if instance_type is not None and instance is None:
                return (
                    f"The instance type {instance_type} is not supported for endpoint hosting "
                    f"in this region (variant {variant['VariantName']})."
                )
            if instance is not None and model.is_multi_model and not instance.mme_capable:
                # The same catalogue backs the operator's admission check, so what the
                # operator refuses up front this stand-in refuses too.
                return (
                    f"The instance type {instance_type} is not supported for multi-model "
                    f"endpoints (variant {variant['VariantName']}): {instance.why}."
                )
            for container in model.containers:
                image = str(container.get("Image", ""))
                if not is_triton_image(image):
                    return (
                        f"The primary container for production variant {variant['VariantName']} "
                        f"did not pass the ping health check: image {image!r} is not an NVIDIA "
                        "Triton Inference Server image (sagemaker-tritonserver), the only "
                        "container this local SageMaker runs."
                    )
                url = model_data_url(container)
                if url is not None:
                    try:
                        bucket, _ = split_s3_url(url)
                    except ValueError:
                        return f"Invalid model data URL {url!r} for model {model.name}."
                    if not self._bucket_exists(bucket):
                        return (
                            f'Failed to download model data for container "{model.name}" from '
                            f'URL: "{url}". Please ensure that there is an object located at '
                            "the URL and that the role passed to CreateModel has permissions "
                            "to download the object."
                        )
        return None

    # Models.

    def _op_CreateModel(
        self, state: RegionState, region: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        _required(req, "ModelName")
        key = req["ModelName"].lower()
        arn = _arn(region, "model", req["ModelName"])
        if key in state.models:
            raise validation(f'Cannot create already existing model "{arn}".')
        if "PrimaryContainer" not in req and not req.get("Containers"):
            raise validation("Either PrimaryContainer or Containers must be specified.")
        _check_constraints(_model_constraint_errors(req))
        state.models[key] = Model(req["ModelName"], arn, req, self._clock())
        self._set_tags(state, arn, req.get("Tags", []))
        return {"ModelArn": arn}

    def _op_DescribeModel(
        self, state: RegionState, region: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        _required(req, "ModelName")
        model = self._model(state, region, req["ModelName"])
        out: dict[str, Any] = {
            "ModelName": model.name,
            "ModelArn": model.arn,
            "CreationTime": model.created,
        }
        for member in (
            "PrimaryContainer",
            "Containers",
            "InferenceExecutionConfig",
            "ExecutionRoleArn",
            "VpcConfig",
            "EnableNetworkIsolation",
        ):
            if member in model.request:
                out[member] = model.request[member]
        return out

    def _op_DeleteModel(
        self, state: RegionState, region: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        _required(req, "ModelName")
        # Allowed while endpoints use the model, as on real SageMaker.
        model = self._model(state, region, req["ModelName"])
        del state.models[model.name.lower()]
        state.tags.pop(model.arn, None)
        return {}

    def _op_ListModels(
        self, state: RegionState, region: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        items = [
            {"ModelName": m.name, "ModelArn": m.arn, "CreationTime": m.created}
            for m in state.models.values()
        ]
        page, token = _page(_filter_sort(items, req, "ModelName"), req)
        return {"Models": page, **token}

    def _model(self, state: RegionState, region: str, name: str) -> Model:
        model = state.models.get(name.lower())
        if model is None:
            raise validation(f'Could not find model "{_arn(region, "model", name)}".')
        return model

    # Endpoint configs.

    def _op_CreateEndpointConfig(
        self, state: RegionState, region: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        _required(req, "EndpointConfigName", "ProductionVariants")
        key = req["EndpointConfigName"].lower()
        arn = _arn(region, "endpoint-config", req["EndpointConfigName"])
        if key in state.configs:
            raise validation(f'Cannot create already existing endpoint configuration "{arn}".')
        if not req["ProductionVariants"]:
            raise validation("ProductionVariants must contain at least one variant.")
        _check_constraints(_variant_constraint_errors(req["ProductionVariants"]))
        for variant in req["ProductionVariants"]:
            model_name = variant.get("ModelName")
            if model_name and model_name.lower() not in state.models:
                raise validation(f'Could not find model "{_arn(region, "model", model_name)}".')
        state.configs[key] = EndpointConfig(req["EndpointConfigName"], arn, req, self._clock())
        self._set_tags(state, arn, req.get("Tags", []))
        return {"EndpointConfigArn": arn}

    def _op_DescribeEndpointConfig(
        self, state: RegionState, region: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        _required(req, "EndpointConfigName")
        config = self._config(state, region, req["EndpointConfigName"])
        out: dict[str, Any] = {
            "EndpointConfigName": config.name,
            "EndpointConfigArn": config.arn,
            "ProductionVariants": config.variants,
            "CreationTime": config.created,
        }
        for member in (
            "DataCaptureConfig",
            "KmsKeyId",
            "AsyncInferenceConfig",
            "ExplainerConfig",
            "ShadowProductionVariants",
            "ExecutionRoleArn",
            "VpcConfig",
            "EnableNetworkIsolation",
        ):
            if member in config.request:
                out[member] = config.request[member]
        return out

    def _op_DeleteEndpointConfig(
        self, state: RegionState, region: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        _required(req, "EndpointConfigName")
        # Allowed while an endpoint uses it, as on real SageMaker (the endpoint keeps serving).
        config = self._config(state, region, req["EndpointConfigName"])
        del state.configs[config.name.lower()]
        state.tags.pop(config.arn, None)
        return {}

    def _op_ListEndpointConfigs(
        self, state: RegionState, region: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        items = [
            {"EndpointConfigName": c.name, "EndpointConfigArn": c.arn, "CreationTime": c.created}
            for c in state.configs.values()
        ]
        page, token = _page(_filter_sort(items, req, "EndpointConfigName"), req)
        return {"EndpointConfigs": page, **token}

    def _config(self, state: RegionState, region: str, name: str) -> EndpointConfig:
        config = state.configs.get(name.lower())
        if config is None:
            arn = _arn(region, "endpoint-config", name)
            raise validation(f'Could not find endpoint configuration "{arn}".')
        return config

    # Endpoints.

    def _op_CreateEndpoint(
        self, state: RegionState, region: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        _required(req, "EndpointName", "EndpointConfigName")
        key = req["EndpointName"].lower()
        arn = _arn(region, "endpoint", req["EndpointName"])
        if key in state.endpoints:
            raise validation(f'Cannot create already existing endpoint "{arn}".')
        config = self._config(state, region, req["EndpointConfigName"])
        now = self._clock()
        failure = self.faults.take_create_failure() or self._deployment_failure(state, config)
        deployment = Deployment(config, now, now + self.endpoint_delay, failure)
        state.endpoints[key] = Endpoint(
            name=req["EndpointName"],
            arn=arn,
            status="Creating",
            config=config,
            created=now,
            modified=now,
            pending=deployment,
        )
        self._set_tags(state, arn, req.get("Tags", []))
        return {"EndpointArn": arn}

    def _op_UpdateEndpoint(
        self, state: RegionState, region: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        _required(req, "EndpointName", "EndpointConfigName")
        endpoint = self._endpoint(state, region, req["EndpointName"])
        if endpoint.status in ("Creating", "Updating", "RollingBack", "Deleting", "SystemUpdating"):
            raise validation(f'Cannot update in-progress endpoint "{endpoint.arn}".')
        if endpoint.status == "Failed":
            raise validation(f'Cannot update failed endpoint "{endpoint.arn}".')
        config = self._config(state, region, req["EndpointConfigName"])
        self._refuse_scaled_instance_type_change(region, endpoint, config)
        guardrails = req.get("DeploymentConfig")
        counts = _retained_counts(endpoint, config, req)
        first = config.variants[0]
        instances = counts.get(first["VariantName"], int(first.get("InitialInstanceCount", 1)))
        if guardrails is not None:
            _check_constraints(member_errors(guardrails))
            refused = deployment_errors(
                guardrails,
                endpoint.config.variants,
                config.variants,
                instances,
                lambda name: self._alarm_state(region, name) is not None,
            )
            if refused:
                raise validation(" ".join(refused))
        now = self._clock()
        failure = self.faults.take_update_failure() or self._deployment_failure(state, config)
        rollout = (
            plan_rollout(guardrails, instances, now, self.endpoint_delay)
            if guardrails is not None and failure is None
            else None
        )
        endpoint.pending = Deployment(
            config,
            now,
            rollout.done_at if rollout is not None else now + self.endpoint_delay,
            failure,
            guardrails,
            instance_counts=counts,
            rollout=rollout,
        )
        endpoint.status = "Updating"
        endpoint.modified = now
        return {"EndpointArn": endpoint.arn}

    def _refuse_scaled_instance_type_change(
        self, region: str, endpoint: Endpoint, config: EndpointConfig
    ) -> None:
        """SageMaker fails an update that changes the instance type of an autoscaled variant.

        ("Update endpoints that use auto scaling": deregister the scalable target first,
        update, register again.) Changing only the model of such a variant is allowed.
        """
        current = {v["VariantName"]: v for v in endpoint.config.variants}
        for variant in config.variants:
            old = current.get(variant["VariantName"])
            if old is None or old.get("InstanceType") == variant.get("InstanceType"):
                continue
            resource_id = f"endpoint/{endpoint.name}/variant/{variant['VariantName']}"
            if self._scaling_registered(region, resource_id):
                raise validation(
                    f"The variant {variant['VariantName']} of endpoint {endpoint.arn} is "
                    "registered as a scalable target with Application Auto Scaling; "
                    "deregister it before changing its instance type "
                    f"({old.get('InstanceType')} -> {variant.get('InstanceType')})."
                )

    def _op_UpdateEndpointWeightsAndCapacities(
        self, state: RegionState, region: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        """What Application Auto Scaling calls to scale a variant in or out."""
        _required(req, "EndpointName", "DesiredWeightsAndCapacities")
        endpoint = self._endpoint(state, region, req["EndpointName"])
        if endpoint.status != "InService":
            raise validation(f'Cannot update in-progress endpoint "{endpoint.arn}".')
        variants = {v["VariantName"]: v for v in endpoint.config.variants}
        counts = {name: endpoint.instance_count(v) for name, v in variants.items()}
        for desired in req["DesiredWeightsAndCapacities"]:
            name = desired.get("VariantName")
            if name not in variants:
                raise validation(
                    f"The variant name(s) [{name}] is/are not present in endpoint {endpoint.arn}."
                )
            if "DesiredInstanceCount" in desired:
                count = int(desired["DesiredInstanceCount"])
                if count < 0:
                    raise validation("DesiredInstanceCount must be at least 0.")
                counts[name] = count
        now = self._clock()
        endpoint.pending = Deployment(
            endpoint.config, now, now + self.endpoint_delay, None, instance_counts=counts
        )
        endpoint.status = "Updating"
        endpoint.modified = now
        return {"EndpointArn": endpoint.arn}

    def _op_DescribeEndpoint(
        self, state: RegionState, region: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        _required(req, "EndpointName")
        endpoint = self._endpoint(state, region, req["EndpointName"])
        out: dict[str, Any] = {
            "EndpointName": endpoint.name,
            "EndpointArn": endpoint.arn,
            "EndpointConfigName": endpoint.config.name,
            "EndpointStatus": endpoint.status,
            "CreationTime": endpoint.created,
            "LastModifiedTime": endpoint.modified,
        }
        if endpoint.status == "Creating":
            out["ProductionVariants"] = [
                self._variant_summary(state, v, endpoint.created, serving=False)
                for v in endpoint.config.variants
            ]
        elif endpoint.status in ("InService", "Updating", "RollingBack", "Deleting"):
            rollout = endpoint.pending.rollout if endpoint.pending else None
            out["ProductionVariants"] = [
                self._variant_summary(
                    state,
                    v,
                    endpoint.deployed_at,
                    serving=True,
                    counts=_old_fleet_count(rollout, endpoint.instance_count(v), self._clock()),
                )
                for v in endpoint.config.variants
            ]
        if endpoint.failure_reason:
            out["FailureReason"] = endpoint.failure_reason
        if endpoint.last_deployment_config is not None:
            out["LastDeploymentConfig"] = endpoint.last_deployment_config
        if endpoint.status in ("Updating", "RollingBack") and endpoint.pending is not None:
            pending = endpoint.pending
            variants = []
            for v in pending.config.variants:
                summary = self._variant_summary(state, v, pending.started, serving=False)
                if "InstanceType" in v:
                    summary["InstanceType"] = v["InstanceType"]
                if pending.rollout is not None:
                    summary.update(_rollout_summary(pending.rollout, v, self._clock()))
                variants.append(summary)
            out["PendingDeploymentSummary"] = {
                "EndpointConfigName": pending.config.name,
                "ProductionVariants": variants,
                "StartTime": pending.started,
            }
        if "DataCaptureConfig" in endpoint.config.request:
            capture = endpoint.config.request["DataCaptureConfig"]
            out["DataCaptureConfig"] = {
                "EnableCapture": capture.get("EnableCapture", True),
                "CaptureStatus": "Started",
                "CurrentSamplingPercentage": capture.get("InitialSamplingPercentage", 0),
                "DestinationS3Uri": capture.get("DestinationS3Uri", ""),
                **({"KmsKeyId": capture["KmsKeyId"]} if "KmsKeyId" in capture else {}),
            }
        return out

    def _variant_summary(
        self,
        state: RegionState,
        variant: dict[str, Any],
        since: float,
        *,
        serving: bool,
        counts: int | None = None,
    ) -> dict[str, Any]:
        weight = float(variant.get("InitialVariantWeight", 1.0))
        count = int(variant.get("InitialInstanceCount", 1)) if counts is None else counts
        summary: dict[str, Any] = {
            "VariantName": variant["VariantName"],
            "DesiredWeight": weight,
            "DesiredInstanceCount": count,
        }
        model = state.models.get(str(variant.get("ModelName", "")).lower())
        if model is not None:
            summary["DeployedImages"] = [
                {
                    "SpecifiedImage": c["Image"],
                    "ResolvedImage": _resolved_image(c["Image"]),
                    "ResolutionTime": since,
                }
                for c in model.containers
                if "Image" in c
            ]
        if serving:
            summary["CurrentWeight"] = weight
            summary["CurrentInstanceCount"] = count
        else:
            summary["VariantStatus"] = [{"Status": "Creating", "StartTime": since}]
        return summary

    def _op_DeleteEndpoint(
        self, state: RegionState, region: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        _required(req, "EndpointName")
        endpoint = self._endpoint(state, region, req["EndpointName"])
        if endpoint.status != "Deleting":
            now = self._clock()
            endpoint.status = "Deleting"
            endpoint.pending = None
            endpoint.modified = now
            endpoint.deleted_at = now + self.endpoint_delay
        return {}

    def _op_ListEndpoints(
        self, state: RegionState, region: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        items = [
            {
                "EndpointName": e.name,
                "EndpointArn": e.arn,
                "CreationTime": e.created,
                "LastModifiedTime": e.modified,
                "EndpointStatus": e.status,
            }
            for e in state.endpoints.values()
            if req.get("StatusEquals") in (None, e.status)
        ]
        page, token = _page(_filter_sort(items, req, "EndpointName"), req)
        return {"Endpoints": page, **token}

    def _endpoint(self, state: RegionState, region: str, name: str) -> Endpoint:
        endpoint = state.endpoints.get(name.lower())
        if endpoint is None:
            raise validation(f'Could not find endpoint "{_arn(region, "endpoint", name)}".')
        return endpoint

    # Tags.

    def _set_tags(self, state: RegionState, arn: str, tags: list[dict[str, str]]) -> None:
        current = {t["Key"]: t for t in state.tags.get(arn, [])}
        for tag in tags:
            current[tag["Key"]] = {"Key": tag["Key"], "Value": tag.get("Value", "")}
        if len(current) > 50:
            raise validation("Number of tags exceeds the limit of 50.")
        state.tags[arn] = list(current.values())

    def _resource_exists(self, state: RegionState, arn: str) -> bool:
        arns = {m.arn for m in state.models.values()}
        arns |= {c.arn for c in state.configs.values()}
        arns |= {e.arn for e in state.endpoints.values()}
        return arn in arns

    def _tagged_resource(self, state: RegionState, req: dict[str, Any]) -> str:
        _required(req, "ResourceArn")
        arn = str(req["ResourceArn"])
        if not self._resource_exists(state, arn):
            raise validation(f"Resource {arn} not found.")
        return arn

    def _op_AddTags(self, state: RegionState, region: str, req: dict[str, Any]) -> dict[str, Any]:
        arn = self._tagged_resource(state, req)
        _required(req, "Tags")
        self._set_tags(state, arn, req["Tags"])
        return {"Tags": req["Tags"]}

    def _op_ListTags(self, state: RegionState, region: str, req: dict[str, Any]) -> dict[str, Any]:
        arn = self._tagged_resource(state, req)
        page, token = _page(list(state.tags.get(arn, [])), req)
        return {"Tags": page, **token}

    def _op_DeleteTags(
        self, state: RegionState, region: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        arn = self._tagged_resource(state, req)
        _required(req, "TagKeys")
        keys = set(req["TagKeys"])
        state.tags[arn] = [t for t in state.tags.get(arn, []) if t["Key"] not in keys]
        return {}


# Bounds from botocore's sagemaker service model; botocore checks only ``min`` client-side,
# so the service refuses the rest, in its own words.
_VARIANT_TIMEOUTS = {
    "ContainerStartupHealthCheckTimeoutInSeconds": (60, 3600),
    "ModelDataDownloadTimeoutInSeconds": (60, 3600),
}
_MODEL_CACHE_SETTINGS = ("Enabled", "Disabled")


def _member(name: str) -> str:
    return name[0].lower() + name[1:]


def _variant_constraint_errors(variants: list[dict[str, Any]]) -> list[str]:
    errors = []
    for index, variant in enumerate(variants, start=1):
        for field_name, (low, high) in _VARIANT_TIMEOUTS.items():
            if field_name not in variant:
                continue
            value = int(variant[field_name])
            at = f"productionVariants.{index}.member.{_member(field_name)}"
            if value < low:
                errors.append(
                    f"Value '{value}' at '{at}' failed to satisfy constraint: "
                    f"Member must have value greater than or equal to {low}"
                )
            elif value > high:
                errors.append(
                    f"Value '{value}' at '{at}' failed to satisfy constraint: "
                    f"Member must have value less than or equal to {high}"
                )
    return errors


def _model_constraint_errors(req: dict[str, Any]) -> list[str]:
    containers = (
        [("primaryContainer", req["PrimaryContainer"])] if "PrimaryContainer" in req else []
    )
    containers += [
        (f"containers.{i}.member", c) for i, c in enumerate(req.get("Containers", []), start=1)
    ]
    errors = []
    for at, container in containers:
        setting = container.get("MultiModelConfig", {}).get("ModelCacheSetting")
        if setting is not None and setting not in _MODEL_CACHE_SETTINGS:
            errors.append(
                f"Value '{setting}' at '{at}.multiModelConfig.modelCacheSetting' failed to "
                "satisfy constraint: Member must satisfy enum value set: [Enabled, Disabled]"
            )
    return errors


def _check_constraints(errors: list[str]) -> None:
    """Raise SageMaker's ValidationException for request members outside their constraints."""
    if errors:
        count = len(errors)
        noun = "error" if count == 1 else "errors"
        raise validation(f"{count} validation {noun} detected: {'; '.join(errors)}")


def _retained_counts(
    endpoint: Endpoint, config: EndpointConfig, req: dict[str, Any]
) -> dict[str, int]:
    """Instance counts after UpdateEndpoint: the live ones with RetainAllVariantProperties.

    A variant the endpoint does not run yet, or ``DesiredInstanceCount`` listed in
    ExcludeRetainedVariantProperties, takes the new config's InitialInstanceCount.
    """
    if not req.get("RetainAllVariantProperties"):
        return {}
    excluded = {
        p.get("VariantPropertyType") for p in req.get("ExcludeRetainedVariantProperties", [])
    }
    if "DesiredInstanceCount" in excluded:
        return {}
    live = {v["VariantName"]: endpoint.instance_count(v) for v in endpoint.config.variants}
    return {
        v["VariantName"]: live[v["VariantName"]]
        for v in config.variants
        if v["VariantName"] in live
    }


def _rollout_summary(rollout: Rollout, variant: dict[str, Any], now: float) -> dict[str, Any]:
    """The new fleet's variant as DescribeEndpoint shows it during a guarded update."""
    weight = float(variant.get("InitialVariantWeight", 1.0))
    if rollout.rollback_reason is not None:
        since = rollout.rollback_started or now
        status = {"Status": "Deleting", "StartTime": since, "StatusMessage": "rolling back"}
        new = 0
    else:
        step = rollout.step_at(now)
        status = {"Status": step.status, "StartTime": step.start, "StatusMessage": step.message}
        new = step.new_instances
    return {
        "VariantStatus": [status],
        "CurrentInstanceCount": new,
        "DesiredInstanceCount": rollout.instances,
        "CurrentWeight": weight * new / rollout.instances,
        "DesiredWeight": weight,
    }


def _old_fleet_count(rollout: Rollout | None, count: int, now: float) -> int:
    """The old fleet's instances: linear and rolling updates take one out per new one."""
    if rollout is None or not rollout.replaces_in_place or rollout.rollback_reason is not None:
        return count
    return max(0, count - rollout.step_at(now).new_instances)


def _arn_of_model(config: EndpointConfig, variant: dict[str, Any]) -> str:
    region = config.arn.split(":")[3]
    return _arn(region, "model", str(variant.get("ModelName", "")))


def _resolved_image(image: str) -> str:
    if "@sha256:" in image:
        return image
    digest = hashlib.sha256(image.encode()).hexdigest()
    return (
        f"{image.rsplit(':', 1)[0] if ':' in image.rsplit('/', 1)[-1] else image}@sha256:{digest}"
    )


def _filter_sort(
    items: list[dict[str, Any]], req: dict[str, Any], name_key: str
) -> list[dict[str, Any]]:
    """ListX's NameContains, CreationTime bounds, SortBy and SortOrder, as SageMaker applies them."""
    contains = req.get("NameContains")
    if contains:
        items = [i for i in items if contains.lower() in i[name_key].lower()]
    if "CreationTimeAfter" in req:
        items = [i for i in items if i["CreationTime"] > float(req["CreationTimeAfter"])]
    if "CreationTimeBefore" in req:
        items = [i for i in items if i["CreationTime"] < float(req["CreationTimeBefore"])]
    sort_by = req.get("SortBy", "CreationTime")
    key = {"Name": name_key, "CreationTime": "CreationTime", "Status": "EndpointStatus"}.get(
        sort_by, "CreationTime"
    )
    # SageMaker lists newest first unless told otherwise.
    return sorted(items, key=lambda i: i.get(key, ""), reverse=req.get("SortOrder") != "Ascending")


def _page(items: list[Any], req: dict[str, Any]) -> tuple[list[Any], dict[str, str]]:
    start = int(req.get("NextToken") or 0)
    size = int(req.get("MaxResults") or 100)
    page = items[start : start + size]
    if start + size < len(items):
        return page, {"NextToken": str(start + size)}
    return page, {}

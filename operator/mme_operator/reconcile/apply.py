"""Apply: execute one plan, step by step, idempotently.

Every step is safe to repeat: names are deterministic, "already exists" is a read, deletes
of something already gone succeed, and nothing is deleted without this owner's tag. The
first AWS error stops the run: retryable ones come back later, terminal ones become a
condition. A model whose source cannot be packaged fails alone; the others go on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.exceptions

from mme_operator import metrics
from mme_operator.api import DataType, ModelSpec, Reason
from mme_operator.artifacts import (
    ArtifactError,
    ArtifactStore,
    ModelSource,
    PreparedArchives,
    StoredArchive,
)
from mme_operator.artifacts import NotOwnedError as ArchiveNotOwnedError
from mme_operator.reconcile import plan as p
from mme_operator.reconcile.desired import DesiredState
from mme_operator.sagemaker import apply_scaling, remove_scaling
from mme_operator.sagemaker.clients import AwsClients
from mme_operator.sagemaker.errors import (
    ACCESS_DENIED_CODES,
    ErrorClass,
    classify,
    describe_error,
    error_code,
    is_missing_bucket,
)
from mme_operator.sagemaker.gateway import NotOwnedError, SageMakerGateway

log = logging.getLogger("mme_operator.reconcile")

EventSink = Callable[[str, str], None]
"""Called with (reason, message) for every AWS action taken; becomes a Kubernetes event."""

SourceOpener = Callable[[str], ModelSource]


@dataclass(frozen=True)
class ApplyError:
    """Why an apply run stopped early."""

    retryable: bool
    reason: Reason
    message: str
    action: p.Action | None = None
    """The step that failed (the status tells a failed autoscaling step from the others)."""


@dataclass
class ApplyResult:
    """What an apply run did."""

    done: list[p.Action] = field(default_factory=list)
    uploaded: dict[str, StoredArchive] = field(default_factory=dict)
    model_errors: dict[str, str] = field(default_factory=dict)
    warmed: set[str] = field(default_factory=set)
    warmup_errors: dict[str, str] = field(default_factory=dict)
    """Model name -> why its warm-up invocation failed this pass."""
    requested_config: str | None = None
    endpoint_arn: str | None = None
    notes: list[str] = field(default_factory=list)
    error: ApplyError | None = None


def _zeros_request(model: ModelSpec) -> dict[str, Any]:
    """A KServe v2 inference request of zeros matching the model's declared inputs."""
    inputs = []
    for tensor in model.inputs or []:
        shape = [max(d, 1) for d in tensor.dims]
        if model.max_batch_size > 0:
            shape = [1, *shape]
        count = 1
        for d in shape:
            count *= d
        fill: Any = 0
        if tensor.data_type == DataType.TYPE_STRING:
            fill = ""
        elif tensor.data_type == DataType.TYPE_BOOL:
            fill = False
        datatype = (
            "BYTES"
            if tensor.data_type == DataType.TYPE_STRING
            else tensor.data_type.removeprefix("TYPE_")
        )
        inputs.append(
            {"name": tensor.name, "shape": shape, "datatype": datatype, "data": [fill] * count}
        )
    return {"inputs": inputs}


class Executor:
    """Runs the actions of a plan against AWS for one ModelEndpoint."""

    def __init__(
        self,
        clients: AwsClients,
        desired: DesiredState,
        *,
        open_source: SourceOpener,
        workdir: Path,
        emit: EventSink | None = None,
        gateway: SageMakerGateway | None = None,
        prepared: PreparedArchives | None = None,
    ) -> None:
        self.clients = clients
        self.prepared = prepared
        self.desired = desired
        self.open_source = open_source
        self.workdir = workdir
        self.emit = emit or (lambda reason, message: None)
        self.gateway = gateway or clients.gateway()
        self.store = ArtifactStore(
            clients.s3,
            desired.bucket,
            desired.prefix,
            desired.owner_uid,
            kms_key_id=desired.resource.spec.artifacts.kms_key_id,
        )

    def run(self, plan: p.Plan) -> ApplyResult:
        """Execute ``plan.actions`` in order; stop at the first AWS error."""
        result = ApplyResult()
        for action in plan.actions:
            try:
                self._do(action, result)
            except (NotOwnedError, ArchiveNotOwnedError) as exc:
                # Never delete what is not ours: note it, and go on with the rest.
                result.notes.append(str(exc))
                log.warning("Skipped %s: %s", action.describe(), exc)
                continue
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                kind = classify(exc)
                retryable = kind is ErrorClass.RETRYABLE
                message = f"{action.describe()} failed: {describe_error(exc)}"
                reason = Reason.RETRYING if retryable else terminal_reason(exc)
                if is_missing_bucket(exc):
                    # Deleted since the pass observed it: the user can create it again.
                    retryable, reason = True, Reason.BUCKET_MISSING
                result.error = ApplyError(retryable, reason, message, action)
                log.warning("AWS call failed (%s): %s", kind, message)
                return result
            result.done.append(action)
        return result

    def _do(self, action: p.Action, result: ApplyResult) -> None:
        sm = self.desired.sagemaker
        owner = self.desired.owner_uid
        match action:
            case p.UploadArchive(archive=archive):
                try:
                    source = self.open_source(archive.source_uri)
                    # The plan uploads only keys the observation just listed as missing.
                    stored = self.store.upload(
                        archive, source, self.workdir, seen_missing=True, prepared=self.prepared
                    )
                except ArtifactError as exc:
                    result.model_errors[archive.model_name] = str(exc)
                    self.emit("SourceError", f"model {archive.model_name!r}: {exc}")
                    return
                result.uploaded[archive.key] = stored
                metrics.BYTES_UPLOADED.inc(stored.size)
                self.emit(
                    "Uploaded",
                    f"uploaded model {archive.model_name!r} to s3://{self.desired.bucket}/{archive.key}",
                )
            case p.DeleteArchive(key=key, once_uploaded=replacement):
                if replacement is not None and replacement not in result.uploaded:
                    return  # the replacement failed: the archive that serves stays
                self.store.delete(key)
                self.emit("Deleted", f"deleted stale archive s3://{self.desired.bucket}/{key}")
            case p.AdoptEndpoint(name=name, arn=arn):
                self.gateway.adopt_endpoint(name, arn, sm.endpoint.tags)
                self.emit("Adopted", f"adopted existing endpoint {name}")
            case p.CreateModel(name=name):
                if self.gateway.create_model(sm.model).created:
                    self.emit("Created", f"created SageMaker model {name}")
            case p.CreateEndpointConfig(name=name):
                if self.gateway.create_endpoint_config(sm.endpoint_config).created:
                    self.emit("Created", f"created endpoint config {name}")
            case p.CreateEndpoint(name=name, config_name=config):
                result.requested_config = config
                created = self.gateway.create_endpoint(sm.endpoint)
                result.endpoint_arn = created.arn
                if created.created:
                    self.emit("Created", f"creating endpoint {name} with config {config}")
            case p.UpdateEndpoint(
                name=name, config_name=config, from_config=old, retain_instance_count=retain
            ):
                result.requested_config = config
                self.gateway.update_endpoint(name, config, owner, retain_instance_count=retain)
                self.emit("Updating", f"updating endpoint {name} from {old} to {config}")
            case p.DeleteEndpoint(name=name):
                if self.gateway.delete_endpoint(name, owner):
                    self.emit("Deleting", f"deleting endpoint {name}")
            case p.DeleteEndpointConfig(name=name):
                if self.gateway.delete_endpoint_config(name, owner):
                    self.emit("Deleted", f"deleted endpoint config {name}")
            case p.DeleteModel(name=name):
                if self.gateway.delete_model(name, owner):
                    self.emit("Deleted", f"deleted SageMaker model {name}")
            case p.ApplyScaling(endpoint_name=name):
                assert self.desired.scaling is not None
                apply_scaling(self.clients.autoscaling, name, self.desired.scaling)
                self.emit("Autoscaling", f"applied autoscaling to endpoint {name}")
            case p.RemoveScaling(endpoint_name=name):
                remove_scaling(self.clients.autoscaling, name)
                self.emit("Autoscaling", f"removed autoscaling from endpoint {name}")
            case p.WarmUp(endpoint_name=name, model_name=model_name, target_model=target):
                self._warm_up(name, model_name, target, result)
            case _:  # pragma: no cover - the plan only makes the actions above
                raise TypeError(f"unknown action {action!r}")

    def _warm_up(self, endpoint: str, model_name: str, target: str, result: ApplyResult) -> None:
        """Invoke the model once so that it is loaded before the first client asks for it.

        One invocation, not one per instance: SageMaker routes a TargetModel to an instance
        that already has it loaded, and only spreads it to more instances when its traffic
        grows ("How multi-model endpoints work"). Further warm-up calls would land on the
        same instance; the first client request lands there too, and finds the model warm.
        """
        model = next(m for m in self.desired.resource.spec.models if m.name == model_name)
        body = json.dumps(_zeros_request(model)).encode()
        try:
            self.gateway.invoke(endpoint, target, body, "application/json")
        except botocore.exceptions.ClientError as exc:
            # ModelError means the container loaded the model and the model itself answered
            # with an error (e.g. to zero inputs): the model is in memory, which is the point.
            # Anything else leaves it cold: a condition says so, and the next pass retries.
            if exc.response.get("Error", {}).get("Code") != "ModelError":
                why = describe_error(exc)
                result.warmup_errors[model_name] = why
                self.emit(
                    "WarmUpFailed", f"warm-up of model {model_name!r} ({target}) failed: {why}"
                )
                return
        except botocore.exceptions.BotoCoreError as exc:
            result.warmup_errors[model_name] = describe_error(exc)
            return
        result.warmed.add(target)
        self.emit("WarmedUp", f"warmed up model {model_name!r} ({target})")


def terminal_reason(exc: BaseException) -> Reason:
    """The reason of a terminal AWS error: AccessDenied when the operator's role lacks an
    action (or AWS does not recognise its credentials), AwsError for any other.

    One mapping for a failed step and for a failed observation, so both read the same.
    """
    code = error_code(exc) or ""
    if (
        code in ACCESS_DENIED_CODES
        or "AccessDenied" in code
        or code == "UnrecognizedClientException"
    ):
        return Reason.ACCESS_DENIED
    return Reason.AWS_ERROR

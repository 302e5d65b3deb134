"""The ModelEndpoint status: what the operator reports.

Every field here is in the CRD schema: a structural schema silently drops the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import Field

from mme_operator.api.spec import ApiModel


class Phase(StrEnum):
    """Coarse lifecycle of a ModelEndpoint, shown by ``kubectl get mep``."""

    PENDING = "Pending"
    SYNCING = "Syncing"
    CREATING = "Creating"
    UPDATING = "Updating"
    READY = "Ready"
    FAILED = "Failed"
    DELETING = "Deleting"


class ConditionType(StrEnum):
    """Condition types; ``Ready`` summarises the others."""

    READY = "Ready"
    SPEC_VALID = "SpecValid"
    ARTIFACTS_SYNCED = "ArtifactsSynced"
    ENDPOINT_READY = "EndpointReady"
    AUTOSCALING_READY = "AutoscalingReady"
    MODELS_WARM = "ModelsWarm"
    CAPACITY_FITS = "CapacityFits"
    CONFIG_MAP_WRITTEN = "ConfigMapWritten"
    """Set (False) only while the models ConfigMap cannot be written: someone else's holds its name."""
    ACCEPTED = "Accepted"
    """On a Model: whether its endpoint admits it (spec.attach, no name conflict, it exists)."""
    CACHE_HEALTHY = "CacheHealthy"
    """From the endpoint's MME metrics in CloudWatch (MME_METRICS_INTERVAL_SECONDS): whether
    the models it serves stay loaded; the message says what to change when not."""


class Reason(StrEnum):
    """Machine-readable condition reasons (CamelCase, as Kubernetes convention has them)."""

    FITS = "Fits"
    DOES_NOT_FIT = "DoesNotFit"
    RECONCILED = "Reconciled"
    INVALID_SPEC = "InvalidSpec"
    SOURCE_ERROR = "SourceError"
    UPLOADING = "Uploading"
    SYNCED = "Synced"
    BUCKET_MISSING = "BucketMissing"
    ARTIFACT_CONFLICT = "ArtifactConflict"
    NO_SERVABLE_MODELS = "NoServableModels"
    CREATING = "EndpointCreating"
    UPDATING = "EndpointUpdating"
    IN_SERVICE = "InService"
    ENDPOINT_FAILED = "EndpointFailed"
    UPDATE_FAILED = "UpdateFailed"
    ROLLING_BACK = "RollingBack"
    ROLLED_BACK = "RolledBack"
    """An update's auto-rollback alarm went off: the endpoint serves its old config."""
    ACCESS_DENIED = "AccessDenied"
    AWS_ERROR = "AwsError"
    RETRYING = "Retrying"
    NOT_OWNED = "NotOwned"
    IDENTITY_CHANGED = "IdentityChanged"
    DELETING = "Deleting"
    DISABLED = "Disabled"
    CONFIGURED = "Configured"
    WAITING_FOR_ENDPOINT = "WaitingForEndpoint"
    WARMED_UP = "WarmedUp"
    WARMING_UP = "WarmingUp"
    WARM_UP_FAILED = "WarmUpFailed"
    LOADED = "Loaded"
    LOAD_FAILED = "LoadFailed"

    CONFIG_MAP_NOT_OWNED = "ConfigMapNotOwned"
    POLICY_DENIED = "PolicyDenied"
    """The platform's tenancy policy refuses the spec: nothing is done in AWS."""
    SERVING_PREVIOUS = "ServingPrevious"
    """A model's new version is not in S3 or failed to load: its previous archive keeps serving."""

    # A Model's Accepted and Ready (reconcile/attach.py).
    ATTACHED = "Attached"
    NOT_ALLOWED_BY_ENDPOINT = "NotAllowedByEndpoint"
    """The endpoint's spec.attach does not admit the Model's namespace."""
    NAME_CONFLICT = "NameConflict"
    """An older Model of the same namespace has the same name on the endpoint."""
    ENDPOINT_NOT_FOUND = "EndpointNotFound"
    ENDPOINT_GONE = "EndpointGone"
    """The endpoint was deleted: the Model is served no more."""
    MODEL_AVAILABLE = "ModelAvailable"
    MODEL_PENDING = "ModelPending"
    ENDPOINT_NOT_READY = "EndpointNotReady"

    # CacheHealthy (reconcile/cache_signals.py).
    THRASHING = "Thrashing"
    """Few requests find their model loaded while models are loaded and unloaded often."""
    MEMORY_PRESSURE = "MemoryPressure"
    """GPU memory stays near full over the metrics window."""
    CACHE_EFFECTIVE = "CacheEffective"
    CACHE_DISABLED = "CacheDisabled"
    """ModelCacheSetting is Disabled: every invocation loads its model, by design."""
    INSUFFICIENT_DATA = "InsufficientData"
    """Too few invocations in the metrics window to judge the cache."""
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    """GetMetricData failed (e.g. cloudwatch:GetMetricData not granted)."""


class EventReason(StrEnum):
    """Reasons of Kubernetes events that are no condition's reason (steps of a pass)."""

    UPLOADED = "Uploaded"
    DELETED = "Deleted"
    ADOPTED = "Adopted"
    CREATED = "Created"
    UPDATING = "Updating"
    AUTOSCALING = "Autoscaling"
    DRIFT_DETECTED = "DriftDetected"
    CONFIGMAP_FAILED = "ConfigMapFailed"
    CONFIG_MERGED = "ConfigMerged"
    """A source's config.pbtxt was taken with fields the spec sets over it."""
    FAILED = "Failed"
    """A pass's one Warning event when several failure reasons occurred in it."""


class EventType(StrEnum):
    """Kubernetes event types: Warning for what someone should look at, Normal for progress."""

    NORMAL = "Normal"
    WARNING = "Warning"


_W, _N = EventType.WARNING, EventType.NORMAL
EVENT_TYPES: dict[str, EventType] = {
    # Failures: a Warning event, which alerting (event exporters, Argo CD notifications) sees.
    Reason.INVALID_SPEC: _W,
    Reason.SOURCE_ERROR: _W,
    Reason.BUCKET_MISSING: _W,
    Reason.ARTIFACT_CONFLICT: _W,
    Reason.ENDPOINT_FAILED: _W,
    Reason.UPDATE_FAILED: _W,
    Reason.ROLLING_BACK: _W,
    Reason.ROLLED_BACK: _W,
    Reason.ACCESS_DENIED: _W,
    Reason.AWS_ERROR: _W,
    Reason.RETRYING: _W,
    Reason.NOT_OWNED: _W,
    Reason.IDENTITY_CHANGED: _W,
    Reason.DOES_NOT_FIT: _W,
    Reason.WARM_UP_FAILED: _W,
    Reason.LOAD_FAILED: _W,
    Reason.NO_SERVABLE_MODELS: _W,
    Reason.SERVING_PREVIOUS: _W,
    Reason.CONFIG_MAP_NOT_OWNED: _W,
    Reason.POLICY_DENIED: _W,
    Reason.THRASHING: _W,
    Reason.MEMORY_PRESSURE: _W,
    Reason.METRICS_UNAVAILABLE: _W,
    Reason.NOT_ALLOWED_BY_ENDPOINT: _W,
    Reason.NAME_CONFLICT: _W,
    Reason.ENDPOINT_NOT_FOUND: _W,
    Reason.ENDPOINT_GONE: _W,
    EventReason.CONFIGMAP_FAILED: _W,
    EventReason.FAILED: _W,
    # Progress and success: Normal.
    Reason.FITS: _N,
    Reason.RECONCILED: _N,
    Reason.UPLOADING: _N,
    Reason.SYNCED: _N,
    Reason.CREATING: _N,
    Reason.UPDATING: _N,
    Reason.IN_SERVICE: _N,
    Reason.DELETING: _N,
    Reason.DISABLED: _N,
    Reason.CONFIGURED: _N,
    Reason.WAITING_FOR_ENDPOINT: _N,
    Reason.WARMED_UP: _N,
    Reason.WARMING_UP: _N,
    Reason.LOADED: _N,
    Reason.CACHE_EFFECTIVE: _N,
    Reason.CACHE_DISABLED: _N,
    Reason.INSUFFICIENT_DATA: _N,
    Reason.ATTACHED: _N,
    Reason.MODEL_AVAILABLE: _N,
    Reason.MODEL_PENDING: _N,
    Reason.ENDPOINT_NOT_READY: _N,
    EventReason.UPLOADED: _N,
    EventReason.DELETED: _N,
    EventReason.ADOPTED: _N,
    EventReason.CONFIG_MERGED: _N,
    EventReason.CREATED: _N,
    EventReason.UPDATING: _N,
    EventReason.AUTOSCALING: _N,
    EventReason.DRIFT_DETECTED: _N,
}
"""The event type of every condition and event reason: the one table (a test checks that
every constant above is in it)."""


def event_type(reason: str) -> EventType:
    """Warning or Normal for ``reason``; a reason missing from the table is a Warning."""
    return EVENT_TYPES.get(reason, EventType.WARNING)


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """A Kubernetes-style condition."""

    type: str = Field(description="Condition type, e.g. Ready.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="CamelCase reason for the last transition.")
    message: str = Field(default="", description="What happened and, on failure, what to change.")
    observed_generation: int | None = Field(
        default=None, description="metadata.generation this reflects."
    )
    last_transition_time: str | None = Field(
        default=None, description="When status last changed (RFC 3339)."
    )


class ModelState(StrEnum):
    PENDING = "Pending"
    UPLOADING = "Uploading"
    LOADING = "Loading"
    """In S3; the endpoint has not loaded it yet (the load check is to come)."""
    AVAILABLE = "Available"
    FAILED = "Failed"
    LOAD_FAILED = "LoadFailed"
    """In S3, but Triton on the endpoint could not load it (the message says why)."""


class ModelStatus(ApiModel):
    """Per-model status: what a client sends as TargetModel, and where the archive is."""

    name: str = Field(description="Model name from the spec.")
    target_model: str | None = Field(
        default=None, description="TargetModel to send to InvokeEndpoint."
    )
    s3_key: str | None = Field(default=None, description="S3 key of the model archive.")
    sha256: str | None = Field(default=None, description="sha256 of the model archive.")
    etag: str | None = Field(
        default=None,
        description="S3 ETag of the archive this ModelEndpoint uploaded: listed with this "
        "ETag, the object is known to be ours without reading its metadata.",
    )
    state: ModelState = Field(
        default=ModelState.PENDING,
        description="Pending (archive not in S3 yet), Loading (in S3, not loaded by the "
        "endpoint yet), Available (loaded once, or in S3 where no load check runs), Failed "
        "(source or archive unusable) or LoadFailed (Triton could not load it).",
    )
    message: str | None = Field(default=None, description="Why the model is not available.")
    loaded: bool | None = Field(
        default=None,
        description="Whether the endpoint loaded this TargetModel when the operator invoked it "
        "once (the load check, or the warm-up): true, loaded; false, Triton could not load it "
        "(state LoadFailed); unset, not checked. Checked once per TargetModel.",
    )
    warmed_up: bool | None = Field(
        default=None, description="The warm-up invocation of this archive succeeded."
    )
    serving_target_model: str | None = Field(
        default=None,
        description="While targetModel has not loaded (state Loading or LoadFailed): the "
        "TargetModel of the model's previous archive, which did load and still serves. The "
        "clients' ConfigMap maps the model to it, and its archive is kept (no expiry) until "
        "targetModel loads; then its grace period starts.",
    )
    serving_s3_key: str | None = Field(
        default=None, description="S3 key of the archive that still serves (servingTargetModel)."
    )
    previous_target_model: str | None = Field(
        default=None,
        description="TargetModel of the model's previous archive, still served until "
        "previousExpiresAt (the artifacts grace period); send targetModel instead.",
    )
    previous_s3_key: str | None = Field(
        default=None, description="S3 key of the previous archive, deleted at previousExpiresAt."
    )
    previous_expires_at: str | None = Field(
        default=None, description="When the previous archive is deleted (RFC 3339)."
    )


MAX_SUPERSEDED_ARCHIVES = 100
"""Superseded archives listed (and kept) at most; beyond, the soonest to expire go first."""


class SupersededArchiveStatus(ApiModel):
    """An archive no model serves any more, kept until its own expiry for clients still sending it."""

    model: str = Field(description="The model (possibly since removed or renamed) it was for.")
    target_model: str = Field(description="The TargetModel clients may still send until expiresAt.")
    s3_key: str = Field(description="S3 key of the archive, deleted at expiresAt.")
    expires_at: str = Field(description="When the archive is deleted (RFC 3339).")


class ModelCapacity(ApiModel):
    """GPU memory of one model at its instance count."""

    name: str = Field(description="Model name from the spec.")
    gpu_memory_mib: int = Field(
        alias="gpuMemoryMiB", description="GPU memory the model needs (MiB)."
    )
    basis: str = Field(
        description="estimate (weights x instances x platform factor + overhead), "
        "gpuMemoryMiB (the spec), measured, unknown (size unreadable) or KIND_CPU."
    )


class CapacityStatus(ApiModel):
    """GPU memory required by the endpoint's models and available on one instance."""

    gpu_memory_required_mib: int = Field(
        alias="gpuMemoryRequiredMiB", description="Sum over the models (MiB)."
    )
    gpu_memory_available_mib: int = Field(
        alias="gpuMemoryAvailableMiB",
        description="One instance's GPU memory less the headroom (MiB); host memory on a CPU type.",
    )
    headroom_percent: int = Field(description="GPU memory kept free (percent).")
    fits: bool = Field(description="Every model can stay loaded at once.")
    models: list[ModelCapacity] | None = Field(
        default=None,
        description="Per-model need of the inline models (attached Models are counted in "
        "gpuMemoryRequiredMiB and summed below, not listed: each Model's own status has it).",
    )
    attached_models: int | None = Field(
        default=None, description="Attached Models counted in gpuMemoryRequiredMiB."
    )
    attached_gpu_memory_mib: int | None = Field(
        default=None,
        alias="attachedGpuMemoryMiB",
        description="Their GPU memory (MiB), part of gpuMemoryRequiredMiB.",
    )
    refused_models: int | None = Field(
        default=None,
        description="Models refused for capacity (Accepted=False/DoesNotFit; "
        "spec.attach.beyondCapacity: Refuse), not counted in gpuMemoryRequiredMiB.",
    )


class RolloutStatus(ApiModel):
    """The last endpoint update (UpdateEndpoint) as it goes, and how it ended."""

    endpoint_config_name: str = Field(description="The EndpointConfig being rolled out.")
    phase: str = Field(
        description="Started, then SageMaker's phase of the new fleet (Creating, "
        "ActivatingTraffic, Baking, Updating, Deleting) or RollingBack; at the end Completed, "
        "RolledBack (an auto-rollback alarm went off) or Failed."
    )
    new_instances: int | None = Field(
        default=None, description="Instances of the new fleet taking traffic so far."
    )
    desired_instances: int | None = Field(
        default=None, description="Instances the new fleet will have."
    )
    message: str | None = Field(default=None, description="What SageMaker says of it.")


class CacheStatus(ApiModel):
    """The endpoint's MME cache over the metrics window, from CloudWatch (endpoint-level:
    MME publishes no per-model metrics)."""

    read_at: str = Field(
        description="When these figures were read (RFC 3339); a later read that finds the "
        "same figures and the same CacheHealthy writes nothing, so this is the first read "
        "that found them."
    )
    window_start: str = Field(
        description="Start of the window summarised: the window's length back, or when the "
        "operator first saw the endpoint config in effect (an update starts a new fleet)."
    )
    endpoint_config_name: str | None = Field(
        default=None, description="EndpointConfig of the fleet the window measured."
    )
    invocations: int | None = Field(
        default=None, description="Invocations in the window (ModelCacheHit's sample count)."
    )
    cache_hit_ratio: float | None = Field(
        default=None,
        description="Share of invocations whose model was already loaded (ModelCacheHit).",
    )
    model_loads: int | None = Field(
        default=None, description="Invocations that had to load their model first."
    )
    model_unloads: int | None = Field(
        default=None, description="Models unloaded in the window (ModelUnloadingTime's count)."
    )
    loaded_models: float | None = Field(
        default=None, description="Models loaded per instance, on average (LoadedModelCount)."
    )
    model_load_wait_ms: float | None = Field(
        default=None,
        description="Average wait of an invocation whose model was loading, in milliseconds "
        "(ModelLoadingWaitTime).",
    )
    gpu_memory_utilization_percent: float | None = Field(
        default=None,
        alias="gpuMemoryUtilizationPercent",
        description="Average GPU memory in use per instance (GPUMemoryUtilization).",
    )
    gpu_utilization_percent: float | None = Field(
        default=None,
        alias="gpuUtilizationPercent",
        description="Average GPU utilisation per instance (GPUUtilization).",
    )


class AttachedCounts(ApiModel):
    """The Models (kind Model) attached to an endpoint, counted: their own status says the rest."""

    accepted: int = Field(default=0, description="Models the endpoint admits.")
    ready: int = Field(default=0, description="Admitted Models that are served (Available).")
    failed: int = Field(
        default=0, description="Admitted Models whose source, archive or load failed."
    )
    refused: int = Field(
        default=0, description="Models refused (NotAllowedByEndpoint, NameConflict)."
    )


class ModelEndpointStatus(ApiModel):
    """Observed state of a ModelEndpoint."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    observed_generation: int | None = Field(
        default=None, description="metadata.generation last reconciled."
    )
    phase: Phase | None = Field(
        default=None, description="Pending, Syncing, Creating, Updating, Ready, Failed or Deleting."
    )
    conditions: list[Condition] | None = Field(default=None, description="Latest observations.")
    endpoint_name: str | None = Field(default=None, description="SageMaker endpoint name.")
    region: str | None = Field(
        default=None,
        description="AWS region of the endpoint; with endpointName and artifactsLocation, the "
        "identity a changed spec is compared against.",
    )
    artifacts_location: str | None = Field(
        default=None, description="s3://bucket/prefix/ holding the model archives."
    )
    endpoint_arn: str | None = Field(default=None, description="SageMaker endpoint ARN.")
    endpoint_status: str | None = Field(
        default=None, description="SageMaker EndpointStatus, e.g. InService."
    )
    endpoint_config_name: str | None = Field(default=None, description="EndpointConfig in effect.")
    requested_endpoint_config_name: str | None = Field(
        default=None,
        description="EndpointConfig last requested by CreateEndpoint or UpdateEndpoint.",
    )
    failed_endpoint_config_name: str | None = Field(
        default=None,
        description="EndpointConfig whose update failed; not retried until the spec changes "
        "or the mme-operator.io/retry-update annotation gets a new value.",
    )
    retry_update_consumed: str | None = Field(
        default=None,
        description="Value of the mme-operator.io/retry-update annotation last acted on "
        "(a failed update is retried once per new value).",
    )
    rollout: RolloutStatus | None = Field(
        default=None,
        description="The last endpoint update: its phase while it runs (deployment guardrails' "
        "canary or linear steps and baking periods), then its outcome.",
    )
    model_count: int | None = Field(default=None, description="Number of models declared.")
    models: list[ModelStatus] | None = Field(
        default=None, description="Per-model status of the inline models."
    )
    attached: AttachedCounts | None = Field(
        default=None,
        description="Models (kind Model) attached to this endpoint, counted (never listed: "
        "each Model's status has its own TargetModel and conditions).",
    )
    superseded_archives: list[SupersededArchiveStatus] | None = Field(
        default=None,
        max_length=MAX_SUPERSEDED_ARCHIVES,
        description="Archives superseded by a change, removal or rename of a model, each kept "
        "until its own expiresAt (spec.artifacts.gracePeriodSeconds after it was superseded), "
        f"at most {MAX_SUPERSEDED_ARCHIVES}.",
    )
    message: str | None = Field(default=None, description="Human-readable summary.")
    instance_type: str | None = Field(
        default=None,
        description="Instance type in effect: spec.instanceType, or the one the operator chose.",
    )
    instance_type_reason: str | None = Field(
        default=None, description="Why this instance type (the sizing's choice, or the spec's)."
    )
    capacity: CapacityStatus | None = Field(
        default=None, description="GPU memory the models need against what one instance has."
    )
    estimated_cost_per_hour: float | None = Field(
        default=None,
        description="On-demand USD per hour of all instances (the instance catalogue's price "
        "for the region); unset where no price is known.",
    )
    cache: CacheStatus | None = Field(
        default=None,
        description="MME cache signals over the metrics window (CacheHealthy says what they "
        "mean); unset until the metrics are first read.",
    )


def now_rfc3339() -> str:
    """The current time as Kubernetes writes it (second precision, Z suffix)."""
    return rfc3339(datetime.now(UTC))


def rfc3339(moment: datetime) -> str:
    """``moment`` as Kubernetes writes times (UTC, second precision, Z suffix)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime | None:
    """A time written by :func:`rfc3339` (or any ISO 8601 with zone); None when unreadable."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

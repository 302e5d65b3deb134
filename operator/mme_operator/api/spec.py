"""The ModelEndpoint spec: what a user declares.

Field descriptions end up in the CRD (``kubectl explain``), so they are written for users.
Constraints that one field can express live in ``Field(...)``; rules spanning several
fields live in :mod:`mme_operator.api.validation` (with exact field paths) and, where
CEL can express them, as ``x-kubernetes-validations`` on the model (see ``CEL_RULES``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

GROUP = "mme-operator.io"
VERSION = "v1alpha1"
KIND = "ModelEndpoint"
PLURAL = "modelendpoints"
SINGULAR = "modelendpoint"
SHORT_NAMES = ["mep"]
API_VERSION = f"{GROUP}/{VERSION}"

# Default Triton release of the SageMaker Triton image (``sagemaker-tritonserver:<v>-py3``).
DEFAULT_TRITON_VERSION = "24.09"

MODEL_NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$"
ENDPOINT_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
ROLE_ARN_PATTERN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$"
REGION_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$"
INSTANCE_TYPE_PATTERN = r"^ml\.[a-z0-9-]+\.[a-z0-9]+$"
# What the API server can refuse itself (RE2): control characters anywhere, user info,
# a port outside 1-65535, a host in file://. The rest (S3's bucket rules, key length) is
# checked by `validate` and the operator (api/aws_input.py).
_NO_CONTROL = r"[^\x00-\x1f\x7f]"
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_HTTPS_HOST = r"([^/?#@:\[\]\x00-\x20\x7f]+|\[[0-9A-Fa-f:.]+\])"
SOURCE_PATTERN = (
    rf"^(s3://[^/\x00-\x20\x7f]+/{_NO_CONTROL}+"
    rf"|https://{_HTTPS_HOST}(:{_PORT})?([/?#]{_NO_CONTROL}*)?"
    rf"|file:///{_NO_CONTROL}*)$"
)
PREFIX_PATTERN = rf"^[^/\x00-\x1f\x7f]{_NO_CONTROL}*/$"
MAX_MODELS = 1000
INT64_MAX = 2**63 - 1
"""Triton's config fields are int64 (dims) or uint64; larger values cannot be rendered."""


def _no_schema_maximum(schema: dict[str, Any]) -> None:
    """Keep ``le=INT64_MAX`` out of the CRD: the API server holds schema bounds as float64,
    where 2^63 - 1 rounds to 2^63 and overflows (it then refuses the CRD). Its own JSON
    decoding already refuses integers beyond int64."""
    schema.pop("maximum", None)


Int64 = Annotated[int, Field(le=INT64_MAX, json_schema_extra=_no_schema_maximum)]
"""An integer within int64, bounded in `validate` and by the API server's decoding."""

# AWS's limits on tags (SageMaker API: Tag; MME-FACTS #10). The operator adds three tags of
# its own (owner uid, owner, managed-by) to every resource, so users get the rest of 50.
AWS_MAX_TAGS = 50
OPERATOR_TAG_COUNT = 3
MAX_USER_TAGS = AWS_MAX_TAGS - OPERATOR_TAG_COUNT
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
TAG_PATTERN = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"
RESERVED_TAG_PREFIXES = ("aws:", "mme-operator.io/")

# SageMaker ContainerDefinition.Environment: at most 100 entries, keys and values up to 1024
# characters. A few entries are left for the variables the operator sets itself.
ENVIRONMENT_MAX_ENTRIES = 90
ENVIRONMENT_KEY_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
ENVIRONMENT_STRING_MAX = 1024

# Triton model parameters: no limit in Triton, bounded here so that a ModelEndpoint stays far
# below the API server's object size limit (about 1.5 MiB in etcd).
PARAMETERS_MAX_ENTRIES = 64
PARAMETER_KEY_MAX = 256
PARAMETER_VALUE_MAX = 4096
CONFIG_PBTXT_MAX = 64 * 1024
MAX_SPEC_BYTES = 512 * 1024
"""Largest spec (as JSON) accepted: a third of the API server's limit, leaving room for status."""


class ApiModel(BaseModel):
    """Base of every API model: camelCase in YAML, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
    )

    def to_k8s(self) -> dict[str, Any]:
        """The object as it is written to Kubernetes: camelCase, no unset optionals."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Platform(StrEnum):
    """Triton ``platform`` values (framework-specific model formats).

    ``ensemble`` is not offered here: an ensemble is served from a source that holds the
    ensemble's model directory (its config.pbtxt with ``ensemble_scheduling``) and its steps.
    """

    ONNXRUNTIME_ONNX = "onnxruntime_onnx"
    TENSORRT_PLAN = "tensorrt_plan"
    PYTORCH_LIBTORCH = "pytorch_libtorch"
    TENSORFLOW_SAVEDMODEL = "tensorflow_savedmodel"
    TENSORFLOW_GRAPHDEF = "tensorflow_graphdef"


# Triton backends that ship in the SageMaker Triton image (``sagemaker-tritonserver:<v>-py3``);
# any other name is accepted (custom backends exist, shipped inside the model archive).
KNOWN_BACKENDS = (
    "python",
    "onnxruntime",
    "pytorch",
    "tensorrt",
    "tensorflow",
    "fil",
    "dali",
    "openvino",
)

# Backends a multi-model endpoint cannot serve, and why (MME-FACTS #3 and #7).
UNSERVABLE_BACKENDS: dict[str, str] = {
    "vllm": "the SageMaker Triton image used for multi-model endpoints has no vLLM backend "
    "(it ships in a separate image), and vLLM models are decoupled, which MME's invoke path "
    "refuses; serve it from a single-model endpoint",
    "tensorrtllm": "the SageMaker Triton image used for multi-model endpoints has no "
    "TensorRT-LLM backend (it ships in a separate image); serve it from a single-model "
    "endpoint, or export the model to a TensorRT plan (platform: tensorrt_plan)",
}


class DataType(StrEnum):
    """Triton tensor data types."""

    TYPE_BOOL = "TYPE_BOOL"
    TYPE_UINT8 = "TYPE_UINT8"
    TYPE_UINT16 = "TYPE_UINT16"
    TYPE_UINT32 = "TYPE_UINT32"
    TYPE_UINT64 = "TYPE_UINT64"
    TYPE_INT8 = "TYPE_INT8"
    TYPE_INT16 = "TYPE_INT16"
    TYPE_INT32 = "TYPE_INT32"
    TYPE_INT64 = "TYPE_INT64"
    TYPE_FP16 = "TYPE_FP16"
    TYPE_FP32 = "TYPE_FP32"
    TYPE_FP64 = "TYPE_FP64"
    TYPE_STRING = "TYPE_STRING"
    TYPE_BF16 = "TYPE_BF16"


class InstanceKind(StrEnum):
    """Where Triton places the copies of a model."""

    KIND_GPU = "KIND_GPU"
    KIND_CPU = "KIND_CPU"
    KIND_AUTO = "KIND_AUTO"


class TensorReshapeSpec(ApiModel):
    """Triton's ``reshape``: the tensor's shape as the model sees it."""

    shape: list[Annotated[Int64, Field(ge=-1)]] = Field(
        max_length=16, description="Shape without the batch dimension; [] for a scalar."
    )


class TensorSpec(ApiModel):
    """One model input or output tensor."""

    name: str = Field(
        min_length=1, max_length=256, description="Tensor name as the model names it."
    )
    data_type: DataType = Field(description="Triton data type, e.g. TYPE_FP32.")
    dims: list[Annotated[Int64, Field(ge=-1)]] = Field(
        max_length=16,
        description="Shape without the batch dimension; -1 marks a variable-size dimension.",
    )
    reshape: TensorReshapeSpec | None = Field(
        default=None,
        description="Triton's reshape: the shape the model sees instead of dims (dims is what "
        "clients send).",
    )
    optional: bool | None = Field(
        default=None,
        description="Inputs only: requests may leave this input out (Triton's optional).",
    )
    allow_ragged_batch: bool | None = Field(
        default=None,
        description="Inputs only: requests in one batch may differ in this input's shape "
        "(Triton's allow_ragged_batch).",
    )


SINGLE_GPU_MESSAGE = (
    "GPU multi-model endpoints run on single-GPU instances only: gpus may only name GPU 0 "
    "(or leave gpus unset)"
)


class RateLimiterResourceSpec(ApiModel):
    """One resource a model instance takes while it runs."""

    name: str = Field(min_length=1, max_length=256, description="Resource name.")
    global_: bool | None = Field(
        default=None,
        alias="global",
        description="Shared by every device (true) rather than per device.",
    )
    count: int = Field(ge=0, le=2**32 - 1, description="Units of the resource an instance takes.")


class RateLimiterSpec(ApiModel):
    """Triton's ``ModelRateLimiter``."""

    resources: list[RateLimiterResourceSpec] | None = Field(
        default=None, max_length=32, description="Resources an instance needs to run."
    )
    priority: int | None = Field(
        default=None,
        ge=0,
        le=2**32 - 1,
        description="Weight of this instance among those ready to run (1 is the highest); "
        "0 means the default.",
    )


class InstanceGroupSpec(ApiModel):
    """Concurrent model execution: how many copies of the model run, and where."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.gpus) || size(self.gpus) == 0 || self.kind == 'KIND_GPU'",
                    "message": "gpus may only be set when kind is KIND_GPU",
                    "fieldPath": ".gpus",
                },
                {
                    "rule": "!has(self.gpus) || self.gpus.all(g, g == 0)",
                    "message": SINGLE_GPU_MESSAGE,
                    "fieldPath": ".gpus",
                },
            ]
        }
    )

    count: int = Field(default=1, ge=1, le=64, description="Copies of the model per device.")
    kind: InstanceKind = Field(
        default=InstanceKind.KIND_GPU, description="KIND_GPU, KIND_CPU or KIND_AUTO."
    )
    gpus: list[Annotated[int, Field(ge=0, le=63)]] | None = Field(
        default=None,
        max_length=64,
        description="GPU indices to place copies on (KIND_GPU only); all GPUs when unset.",
    )
    rate_limiter: RateLimiterSpec | None = Field(
        default=None,
        description="Triton's rate limiter: resources an instance needs before it runs, and its "
        "priority (Triton's instance_group.rate_limiter; takes effect with --rate-limit).",
    )


class QueuePolicySpec(ApiModel):
    """What the dynamic batcher does with requests that wait too long."""

    timeout_action: Literal["REJECT", "DELAY"] = Field(
        default="REJECT", description="REJECT or DELAY a request whose queue timeout expired."
    )
    default_timeout_microseconds: Int64 = Field(
        default=0, ge=0, description="Queue timeout; 0 means none."
    )
    allow_timeout_override: bool = Field(
        default=False, description="Let a request set a shorter timeout."
    )
    max_queue_size: Int64 = Field(
        default=0, ge=0, description="Maximum queued requests; 0 means unlimited."
    )


class DynamicBatchingSpec(ApiModel):
    """Dynamic batching: Triton merges requests into one batch within a short queue delay."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.defaultPriorityLevel) || !has(self.priorityLevels)"
                    " || self.defaultPriorityLevel <= self.priorityLevels",
                    "message": "defaultPriorityLevel must not exceed priorityLevels",
                    "fieldPath": ".defaultPriorityLevel",
                }
            ]
        }
    )

    max_queue_delay_microseconds: int = Field(
        default=100,
        ge=0,
        le=10_000_000,
        description="How long a request may wait for a batch to fill.",
    )
    preferred_batch_size: list[Annotated[int, Field(ge=1)]] | None = Field(
        default=None,
        max_length=32,
        description="Batch sizes the batcher aims for; each <= maxBatchSize.",
    )
    preserve_ordering: bool = Field(default=False, description="Return responses in request order.")
    priority_levels: int | None = Field(
        default=None, ge=0, le=1000, description="Number of priority levels."
    )
    default_priority_level: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="Priority of requests that set none (<= priorityLevels).",
    )
    default_queue_policy: QueuePolicySpec | None = Field(
        default=None, description="Queue policy for all requests."
    )
    priority_queue_policy: (
        Annotated[dict[str, QueuePolicySpec], Field(max_length=PRIORITY_LEVELS_MAX)] | None
    ) = Field(
        default=None,
        # The level's form is checked by `validate` and the operator: a regex over map keys
        # of unknown length would exceed the API server's CEL cost budget.
        description='Queue policy per priority level, by level ("1" .. priorityLevels); levels '
        "not listed use defaultQueuePolicy.",
    )


PRIORITY_LEVELS_MAX = 1000


class SequenceControlSpec(ApiModel):
    """One control signal Triton puts in a control input (Triton's ModelSequenceBatching.Control)."""

    kind: Literal[
        "CONTROL_SEQUENCE_START",
        "CONTROL_SEQUENCE_READY",
        "CONTROL_SEQUENCE_END",
        "CONTROL_SEQUENCE_CORRID",
    ] = Field(description="Which signal: sequence start, ready, end, or the correlation id.")
    int32_false_true: list[int] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="[false, true] values as INT32 (START, READY, END).",
    )
    fp32_false_true: list[float] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="[false, true] values as FP32 (START, READY, END).",
    )
    bool_false_true: list[bool] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="[false, true] values as BOOL (START, READY, END).",
    )
    data_type: DataType | None = Field(
        default=None,
        description="Data type of the correlation id (CORRID only): TYPE_UINT64 or TYPE_STRING.",
    )


class SequenceControlInputSpec(ApiModel):
    """A model input Triton fills with sequence control signals."""

    name: str = Field(min_length=1, max_length=256, description="Input tensor name.")
    control: list[SequenceControlSpec] = Field(
        min_length=1, max_length=4, description="The signals this input carries."
    )


class SequenceDirectSpec(ApiModel):
    """The direct strategy: each sequence keeps its own batch slot."""

    max_queue_delay_microseconds: Int64 | None = Field(
        default=None, ge=0, description="How long to wait for slots to fill."
    )
    minimum_slot_utilization: float | None = Field(
        default=None, ge=0, le=1, description="Fraction of slots that must be ready to run."
    )


class SequenceOldestSpec(ApiModel):
    """The oldest strategy: requests of the oldest sequences are batched dynamically."""

    max_candidate_sequences: int = Field(
        ge=1, le=65536, description="Sequences batched together at most."
    )
    preferred_batch_size: list[Annotated[int, Field(ge=1)]] | None = Field(
        default=None, max_length=32, description="Batch sizes aimed for."
    )
    max_queue_delay_microseconds: Int64 | None = Field(
        default=None, ge=0, description="How long a request may wait for a batch."
    )
    preserve_ordering: bool | None = Field(
        default=None, description="Return responses in request order."
    )


class SequenceBatchingSpec(ApiModel):
    """Triton's sequence batcher for stateful models: each sequence's requests go to one instance."""

    max_sequence_idle_microseconds: Int64 | None = Field(
        default=None, ge=0, description="A sequence idle this long is ended (default 1 s)."
    )
    control_input: list[SequenceControlInputSpec] | None = Field(
        default=None, max_length=8, description="Inputs carrying the sequence control signals."
    )
    direct: SequenceDirectSpec | None = Field(
        default=None, description="The direct strategy (the default when neither is set)."
    )
    oldest: SequenceOldestSpec | None = Field(default=None, description="The oldest strategy.")


class ResponseCacheSpec(ApiModel):
    """Triton's response cache (needs a cache set up on the server, e.g. --cache-config)."""

    enable: bool = Field(description="Cache this model's responses.")


class WarmupInputSpec(ApiModel):
    """One input of a Triton warm-up request: exactly one of zeroData, randomData, inputDataFile."""

    data_type: DataType = Field(description="Data type of the input.")
    dims: list[Annotated[Int64, Field(ge=0)]] = Field(
        max_length=16, description="Shape without the batch dimension."
    )
    zero_data: bool | None = Field(default=None, description="Send zeros.")
    random_data: bool | None = Field(default=None, description="Send random data.")
    input_data_file: str | None = Field(
        default=None,
        pattern=r"^[^/]+$",
        max_length=255,
        description="Send the bytes of this file of the model directory's warmup/ folder.",
    )


class ModelWarmupSpec(ApiModel):
    """One warm-up request Triton sends when it loads the model (Triton's model_warmup)."""

    name: str = Field(min_length=1, max_length=256, description="Name of the warm-up sample.")
    batch_size: int = Field(default=1, ge=0, le=65536, description="Batch size of the request.")
    inputs: dict[str, WarmupInputSpec] = Field(
        max_length=64, description="The request's inputs, by input name."
    )
    count: int | None = Field(default=None, ge=1, le=1000, description="How many times to send it.")


class LatestVersionsSpec(ApiModel):
    """Serve the newest versions."""

    num_versions: int = Field(ge=1, le=1000, description="How many of the newest versions.")


class AllVersionsSpec(ApiModel):
    """Serve every version."""


class SpecificVersionsSpec(ApiModel):
    """Serve the listed versions."""

    versions: list[Annotated[Int64, Field(ge=1)]] = Field(
        min_length=1, max_length=64, description="Version numbers."
    )


class VersionPolicySpec(ApiModel):
    """Which version directories Triton serves: exactly one of latest, all, specific."""

    latest: LatestVersionsSpec | None = Field(default=None, description="The newest versions.")
    all: AllVersionsSpec | None = Field(default=None, description="Every version.")
    specific: SpecificVersionsSpec | None = Field(default=None, description="Listed versions.")


class AcceleratorSpec(ApiModel):
    """An execution accelerator, e.g. tensorrt for ONNX Runtime, or openvino on CPU."""

    name: str = Field(
        min_length=1, max_length=64, description="Accelerator name, e.g. tensorrt or openvino."
    )
    parameters: (
        Annotated[dict[str, Annotated[str, Field(max_length=1024)]], Field(max_length=32)] | None
    ) = Field(default=None, description="Accelerator settings, e.g. precision_mode: FP16.")


class ExecutionAcceleratorsSpec(ApiModel):
    """Accelerators tried in order on GPU and on CPU."""

    gpu_execution_accelerator: list[AcceleratorSpec] | None = Field(
        default=None, max_length=8, description="On GPU instances."
    )
    cpu_execution_accelerator: list[AcceleratorSpec] | None = Field(
        default=None, max_length=8, description="On CPU instances."
    )


class PinnedMemorySpec(ApiModel):
    """Whether Triton stages tensors through pinned host memory."""

    enable: bool = Field(description="Use pinned memory.")


class CudaOptimizationSpec(ApiModel):
    """CUDA settings of GPU models."""

    graphs: bool | None = Field(default=None, description="Use CUDA graphs (TensorRT).")
    busy_wait_events: bool | None = Field(
        default=None, description="Busy-wait on CUDA events (lower latency, more CPU)."
    )
    output_copy_stream: bool | None = Field(
        default=None, description="Copy outputs on their own CUDA stream."
    )


class OptimizationSpec(ApiModel):
    """Triton's optimization policy: priority, execution accelerators, pinned memory, CUDA."""

    priority: Literal["PRIORITY_DEFAULT", "PRIORITY_MAX", "PRIORITY_MIN"] | None = Field(
        default=None, description="Priority of the model's instances."
    )
    execution_accelerators: ExecutionAcceleratorsSpec | None = Field(
        default=None, description="Execution accelerators, e.g. TensorRT for ONNX models."
    )
    input_pinned_memory: PinnedMemorySpec | None = Field(
        default=None, description="Pinned memory for inputs."
    )
    output_pinned_memory: PinnedMemorySpec | None = Field(
        default=None, description="Pinned memory for outputs."
    )
    cuda: CudaOptimizationSpec | None = Field(default=None, description="CUDA settings.")


_UNSERVABLE_LIST = "[" + ", ".join(f"'{name}'" for name in UNSERVABLE_BACKENDS) + "]"
_MODEL_RULES: list[JsonValue] = [
    {
        "rule": "!(has(self.platform) && has(self.backend))",
        "message": "set at most one of platform or backend (neither: the source's own "
        "config.pbtxt says)",
    },
    {
        "rule": "!(has(self.dynamicBatching) && has(self.sequenceBatching))",
        "message": "set one scheduler: dynamicBatching or sequenceBatching",
        "fieldPath": ".sequenceBatching",
    },
    {
        "rule": "!has(self.backend) || !(self.backend in " + _UNSERVABLE_LIST + ")",
        "message": "backends vllm and tensorrtllm are not in the SageMaker Triton image used for "
        "multi-model endpoints (and MME refuses decoupled models): serve them from a "
        "single-model endpoint",
        "fieldPath": ".backend",
    },
    {
        "rule": "!has(self.dynamicBatching) || self.maxBatchSize > 0",
        "message": "dynamicBatching needs maxBatchSize > 0",
        "fieldPath": ".dynamicBatching",
    },
    {
        "rule": "!has(self.dynamicBatching) || !has(self.dynamicBatching.preferredBatchSize)"
        " || self.dynamicBatching.preferredBatchSize.all(b, b <= self.maxBatchSize)",
        "message": "every dynamicBatching.preferredBatchSize must be <= maxBatchSize",
        "fieldPath": ".dynamicBatching.preferredBatchSize",
    },
]


class ModelSpec(ApiModel):
    """One model served by the endpoint."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _MODEL_RULES})

    name: str = Field(
        pattern=MODEL_NAME_PATTERN,
        max_length=128,
        description="Model name; the Triton model directory and the start of the TargetModel name.",
    )
    source: str = Field(
        pattern=SOURCE_PATTERN,
        max_length=2048,
        description="Where the weights are: s3://bucket/key (file, prefix or .tar.gz), https:// (one file) "
        "or file:// (a file or directory on a mounted volume).",
    )
    platform: Platform | None = Field(
        default=None,
        description="Triton platform, e.g. onnxruntime_onnx. Set this or backend, or neither "
        "when the source is a Triton model directory whose config.pbtxt names it.",
    )
    backend: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_]+$",
        max_length=64,
        description="Triton backend, e.g. python. Set this or platform, or neither when the "
        "source's config.pbtxt names it.",
    )
    max_batch_size: int = Field(
        default=0, ge=0, le=65536, description="Largest batch Triton forms; 0 disables batching."
    )
    inputs: list[TensorSpec] | None = Field(
        default=None, max_length=64, description="Input tensors."
    )
    outputs: list[TensorSpec] | None = Field(
        default=None, max_length=64, description="Output tensors."
    )
    instance_groups: list[InstanceGroupSpec] | None = Field(
        default=None,
        max_length=16,
        description="Concurrent model execution; e.g. [{count: 2, kind: KIND_GPU}] runs two copies per GPU.",
    )
    dynamic_batching: DynamicBatchingSpec | None = Field(
        default=None, description="Enable dynamic batching (needs maxBatchSize > 0)."
    )
    parameters: (
        Annotated[
            dict[str, Annotated[str, Field(max_length=PARAMETER_VALUE_MAX)]],
            Field(max_length=PARAMETERS_MAX_ENTRIES),
        ]
        | None
    ) = Field(
        default=None,
        description=f"Triton model parameters (string values), passed to the backend; at most "
        f"{PARAMETERS_MAX_ENTRIES}, keys up to {PARAMETER_KEY_MAX} characters.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self.all(k, size(k) >= 1 && size(k) <= {PARAMETER_KEY_MAX})",
                    "message": f"parameter names must be 1-{PARAMETER_KEY_MAX} characters",
                }
            ]
        },
    )
    sequence_batching: SequenceBatchingSpec | None = Field(
        default=None,
        description="Triton's sequence batcher (stateful models); not with dynamicBatching.",
    )
    response_cache: ResponseCacheSpec | None = Field(
        default=None, description="Triton's response cache for this model."
    )
    model_warmup: list[ModelWarmupSpec] | None = Field(
        default=None,
        max_length=16,
        description="Requests Triton itself sends while loading the model (Triton's "
        "model_warmup); see warmup for the operator's own first invocation.",
    )
    version_policy: VersionPolicySpec | None = Field(
        default=None, description="Which version directories Triton serves."
    )
    optimization: OptimizationSpec | None = Field(
        default=None,
        description="Triton's optimization policy (priority, execution accelerators such as "
        "TensorRT, pinned memory, CUDA graphs).",
    )
    default_model_filename: str | None = Field(
        default=None,
        pattern=r"^[^/]+$",
        max_length=255,
        description="File (or directory) Triton loads from each version directory instead of "
        "the backend's default (model.onnx, model.py, ...).",
    )
    config_pbtxt: str | None = Field(
        default=None,
        max_length=CONFIG_PBTXT_MAX,
        description="Triton config.pbtxt text for the fields this spec does not type (e.g. "
        "batch_input, model_operations, metric_tags); checked with Triton's schema and merged "
        "like the typed fields. Fields that have a typed field (name, platform, inputs, "
        "dynamic batching, parameters, ...) must be set with it.",
    )
    warmup: bool = Field(
        default=False,
        description="Invoke the model once after deployment so the first request is not cold.",
    )
    gpu_memory_mib: int | None = Field(
        alias="gpuMemoryMiB",
        default=None,
        ge=1,
        le=1_048_576,
        description="GPU memory (MiB) the model takes at its instance count; replaces the "
        "operator's estimate (weights size x instances x a per-platform factor + overhead).",
    )
    expected_requests_per_second: float | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        description="Expected load on this model; `mme-operator size` works out the instance "
        "count that carries it from a profile report.",
    )


class ArtifactsSpec(ApiModel):
    """Where the operator puts the model archives the endpoint loads."""

    bucket: str = Field(
        pattern=BUCKET_PATTERN, description="S3 bucket for the model archives. Immutable."
    )
    prefix: str | None = Field(
        default=None,
        max_length=512,
        pattern=PREFIX_PATTERN,
        description="Key prefix (ending in '/') for this endpoint's archives; default '<namespace>/<name>/'. Immutable.",
    )
    kms_key_id: str | None = Field(
        default=None,
        max_length=2048,
        description="KMS key (id, alias or ARN) for SSE-KMS on uploaded archives.",
    )
    grace_period_seconds: int | None = Field(
        default=None,
        ge=0,
        le=7 * 86400,
        description="How long the previous archive of a changed model stays in S3, so that "
        "clients still sending its TargetModel keep being served (status.models[].previousTargetModel "
        "and previousExpiresAt say which and until when); 0 deletes it at once. Default: the "
        "operator's setting (MME_ARCHIVE_GRACE_PERIOD_SECONDS, one hour).",
    )


class AutoscalingSpec(ApiModel):
    """Target-tracking autoscaling of the endpoint's instances on invocations per instance."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.minInstances <= self.maxInstances",
                    "message": "minInstances must be <= maxInstances",
                    "fieldPath": ".minInstances",
                }
            ]
        }
    )

    min_instances: int = Field(default=1, ge=1, le=1000, description="Fewest instances.")
    max_instances: int = Field(ge=1, le=1000, description="Most instances.")
    target_invocations_per_instance: int = Field(
        ge=1,
        le=1_000_000,
        description="Target of SageMakerVariantInvocationsPerInstance (per minute).",
    )
    scale_in_cooldown_seconds: int = Field(
        default=300, ge=0, le=86400, description="Wait after scaling in."
    )
    scale_out_cooldown_seconds: int = Field(
        default=60, ge=0, le=86400, description="Wait after scaling out."
    )


class ModelCacheSetting(StrEnum):
    """``MultiModelConfig.ModelCacheSetting`` of the SageMaker Model."""

    ENABLED = "Enabled"
    DISABLED = "Disabled"


# The container environment the serving fields become (read by the image's ``serve``).
MODEL_LOAD_GPU_LIMIT_ENV = "SAGEMAKER_TRITON_MODEL_LOAD_GPU_LIMIT"
LOG_VERBOSE_ENV = "SAGEMAKER_TRITON_LOG_VERBOSE"
# SageMaker's bounds of ProductionVariant.ContainerStartupHealthCheckTimeoutInSeconds and
# ModelDataDownloadTimeoutInSeconds (botocore's sagemaker service model).
VARIANT_TIMEOUT_MIN = 60
VARIANT_TIMEOUT_MAX = 3600


class ServingSpec(ApiModel):
    """How SageMaker and Triton serve the models: memory, logs, caching, timeouts."""

    model_load_gpu_limit: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Fraction of GPU memory models may take (SAGEMAKER_TRITON_MODEL_LOAD_GPU_LIMIT, "
        "Triton's --model-load-gpu-limit): a load beyond it is refused, so SageMaker evicts "
        "least-recently-used models instead of failing loads. Unset: no limit.",
    )
    log_verbosity: int | None = Field(
        default=None,
        ge=0,
        le=10,
        description="Triton's --log-verbose level (SAGEMAKER_TRITON_LOG_VERBOSE). Default 0 (off): "
        "the image logs verbosely when unset, and verbose logs cost money in CloudWatch.",
    )
    model_cache: ModelCacheSetting | None = Field(
        default=None,
        description="MultiModelConfig.ModelCacheSetting: Enabled (SageMaker's default) keeps "
        "loaded models in memory; Disabled suits many rarely invoked models.",
    )
    container_startup_health_check_timeout_seconds: int | None = Field(
        default=None,
        ge=VARIANT_TIMEOUT_MIN,
        le=VARIANT_TIMEOUT_MAX,
        description="How long the container may take to pass SageMaker's health check "
        "(ContainerStartupHealthCheckTimeoutInSeconds, 60-3600).",
    )
    model_data_download_timeout_seconds: int | None = Field(
        default=None,
        ge=VARIANT_TIMEOUT_MIN,
        le=VARIANT_TIMEOUT_MAX,
        description="How long downloading model data to an instance may take "
        "(ModelDataDownloadTimeoutInSeconds, 60-3600).",
    )


class DeletionPolicy(StrEnum):
    """What happens to AWS resources when the ModelEndpoint is deleted."""

    DELETE = "Delete"
    RETAIN = "Retain"


class SizingPolicy(StrEnum):
    """How the operator chooses the instance type."""

    CHEAPEST_THAT_FITS = "CheapestThatFits"


class SizingSpec(ApiModel):
    """Let the operator choose (and report) the instance type from the models' GPU memory."""

    policy: SizingPolicy = Field(
        default=SizingPolicy.CHEAPEST_THAT_FITS,
        description="CheapestThatFits: the cheapest MME instance type whose GPU memory, less "
        "the headroom, holds every model at its instance count.",
    )
    headroom_percent: int = Field(
        default=10, ge=0, le=90, description="GPU memory kept free (percent of the GPU)."
    )
    allowed_families: (
        list[Annotated[str, Field(pattern=r"^ml\.[a-z0-9-]+$", max_length=32)]] | None
    ) = Field(
        default=None,
        max_length=32,
        description="Instance families to choose from, e.g. [ml.g5, ml.g4dn]; all MME "
        "families when unset.",
    )


# SageMaker's DeploymentConfig (UpdateEndpoint), field for field. Bounds from botocore's
# sagemaker service model (shapes WaitIntervalInSeconds, TerminationWaitInSeconds,
# MaximumExecutionTimeoutInSeconds, CapacitySizeValue, AlarmList, AlarmName; read 2026-12);
# the rules between fields are in mme_operator.api.deployment (SageMaker docs: "Deployment
# guardrails", "Exclusions"; API: TrafficRoutingConfig, RollingUpdatePolicy).
WAIT_INTERVAL_MAX = 3600
TERMINATION_WAIT_MAX = 3600
EXECUTION_TIMEOUT_MIN = 600
EXECUTION_TIMEOUT_MAX = 28800
ROLLBACK_ALARMS_MAX = 10
ALARM_NAME_MAX = 255


class CapacitySizeType(StrEnum):
    """How a capacity size counts: instances, or percent of the variant's instances."""

    INSTANCE_COUNT = "INSTANCE_COUNT"
    CAPACITY_PERCENT = "CAPACITY_PERCENT"


class CapacitySizeSpec(ApiModel):
    """SageMaker CapacitySize: a number of instances or a percentage of the fleet."""

    type: CapacitySizeType = Field(description="INSTANCE_COUNT or CAPACITY_PERCENT.")
    value: int = Field(ge=1, le=100_000, description="Instances, or percent (1-100).")


class TrafficRoutingType(StrEnum):
    """How blue/green shifts traffic to the new fleet."""

    ALL_AT_ONCE = "ALL_AT_ONCE"
    CANARY = "CANARY"
    LINEAR = "LINEAR"


class TrafficRoutingConfigSpec(ApiModel):
    """SageMaker TrafficRoutingConfig: the steps traffic moves to the new fleet in."""

    type: TrafficRoutingType = Field(
        description="ALL_AT_ONCE (one step), CANARY (canarySize, then the rest) or LINEAR "
        "(steps of linearStepSize)."
    )
    wait_interval_in_seconds: int = Field(
        ge=0,
        le=WAIT_INTERVAL_MAX,
        description="Baking period after each step, while the alarms are watched (0-3600).",
    )
    canary_size: CapacitySizeSpec | None = Field(
        default=None,
        description="The canary (CANARY only): at most 50% of the variant's instances.",
    )
    linear_step_size: CapacitySizeSpec | None = Field(
        default=None,
        description="Each step (LINEAR only): 10-50% of the variant's instances.",
    )


class BlueGreenUpdatePolicySpec(ApiModel):
    """SageMaker BlueGreenUpdatePolicy: a new fleet, traffic shifted to it, the old one removed."""

    traffic_routing_configuration: TrafficRoutingConfigSpec = Field(
        description="How traffic shifts to the new fleet."
    )
    termination_wait_in_seconds: int | None = Field(
        default=None,
        ge=0,
        le=TERMINATION_WAIT_MAX,
        description="Wait before the old fleet is terminated once all traffic moved (0-3600).",
    )
    maximum_execution_timeout_in_seconds: int | None = Field(
        default=None,
        ge=EXECUTION_TIMEOUT_MIN,
        le=EXECUTION_TIMEOUT_MAX,
        description="Time limit of the whole deployment (600-28800).",
    )


class RollingUpdatePolicySpec(ApiModel):
    """SageMaker RollingUpdatePolicy: the fleet replaced batch by batch."""

    maximum_batch_size: CapacitySizeSpec = Field(
        description="Instances replaced per step: 5-50% of the variant's instances."
    )
    wait_interval_in_seconds: int = Field(
        ge=0, le=WAIT_INTERVAL_MAX, description="Baking period after each batch (0-3600)."
    )
    maximum_execution_timeout_in_seconds: int | None = Field(
        default=None,
        ge=EXECUTION_TIMEOUT_MIN,
        le=EXECUTION_TIMEOUT_MAX,
        description="Time limit of the whole deployment (600-28800).",
    )
    rollback_maximum_batch_size: CapacitySizeSpec | None = Field(
        default=None,
        description="Instances restored per step on rollback; default the whole old fleet at once.",
    )


class AlarmSpec(ApiModel):
    """A CloudWatch alarm watched during the deployment's baking periods."""

    alarm_name: str = Field(
        min_length=1,
        max_length=ALARM_NAME_MAX,
        pattern=r"^.*\S.*$",
        description="Name of an existing CloudWatch alarm in the endpoint's region.",
    )


class AutoRollbackSpec(ApiModel):
    """SageMaker AutoRollbackConfig: alarms that roll the update back when they go to ALARM."""

    alarms: list[AlarmSpec] | None = Field(
        default=None,
        min_length=1,
        max_length=ROLLBACK_ALARMS_MAX,
        description=f"1-{ROLLBACK_ALARMS_MAX} CloudWatch alarms.",
    )


class DeploymentConfigSpec(ApiModel):
    """SageMaker DeploymentConfig, sent with every UpdateEndpoint (deployment guardrails)."""

    blue_green_update_policy: BlueGreenUpdatePolicySpec | None = Field(
        default=None,
        description="Blue/green: a new fleet, traffic shifted all at once, canary or linear.",
    )
    rolling_update_policy: RollingUpdatePolicySpec | None = Field(
        default=None,
        description="Rolling: the fleet replaced in batches (not with blueGreenUpdatePolicy).",
    )
    auto_rollback_configuration: AutoRollbackSpec | None = Field(
        default=None,
        description="CloudWatch alarms that roll the update back during baking; the endpoint "
        "stays on its old config and the update is not retried until the spec changes.",
    )


IMMUTABLE_MESSAGE = (
    "{field} cannot change after creation (the AWS resources made for the old value would be "
    "left behind, still running): delete this ModelEndpoint and create a new one"
)


_SPEC_RULES: list[JsonValue] = [
    {
        "rule": "has(self.instanceType) || has(self.sizing)",
        "message": "set instanceType, or sizing for the operator to choose one",
    },
    {
        # Guarded so that min > max is reported once, by the autoscaling rule.
        "rule": "!has(self.autoscaling) || self.autoscaling.minInstances > self.autoscaling.maxInstances"
        " || (self.instanceCount >= self.autoscaling.minInstances"
        " && self.instanceCount <= self.autoscaling.maxInstances)",
        "message": "instanceCount must lie within autoscaling.minInstances..maxInstances",
        "fieldPath": ".instanceCount",
    },
    # Transition rules (run on update only): fields the AWS resources' identity derives
    # from. Changing one would leave the old endpoint (still billing) or the old archives
    # behind, owned by nobody; the operator refuses such a change too (IdentityChanged).
    {
        "rule": "self.region == oldSelf.region",
        "message": IMMUTABLE_MESSAGE.format(field="region"),
        "fieldPath": ".region",
    },
    {
        "rule": "has(self.endpointName) == has(oldSelf.endpointName)"
        " && (!has(self.endpointName) || self.endpointName == oldSelf.endpointName)",
        "message": IMMUTABLE_MESSAGE.format(field="endpointName"),
        "fieldPath": ".endpointName",
    },
    {
        "rule": "self.artifacts.bucket == oldSelf.artifacts.bucket"
        " && has(self.artifacts.prefix) == has(oldSelf.artifacts.prefix)"
        " && (!has(self.artifacts.prefix) || self.artifacts.prefix == oldSelf.artifacts.prefix)",
        "message": IMMUTABLE_MESSAGE.format(field="artifacts.bucket and artifacts.prefix"),
        "fieldPath": ".artifacts",
    },
]


class AttachFrom(StrEnum):
    """Which namespaces' Models may attach to an endpoint (Gateway API's ``allowedRoutes``)."""

    SAME = "Same"
    ALL = "All"
    SELECTOR = "Selector"


class LabelSelectorRequirement(ApiModel):
    """One requirement of a label selector (Kubernetes' LabelSelectorRequirement)."""

    key: str = Field(min_length=1, max_length=317, description="The label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In, NotIn, Exists or DoesNotExist."
    )
    values: list[Annotated[str, Field(max_length=63)]] | None = Field(
        default=None,
        max_length=64,
        description="Values for In and NotIn (not empty); empty for Exists and DoesNotExist.",
    )


class LabelSelector(ApiModel):
    """A Kubernetes label selector: every matchLabels entry and matchExpressions item holds."""

    match_labels: (
        Annotated[dict[str, Annotated[str, Field(max_length=63)]], Field(max_length=64)] | None
    ) = Field(default=None, description="Labels the namespace must carry, with these values.")
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None, max_length=64, description="Requirements on the namespace's labels."
    )


class BeyondCapacity(StrEnum):
    """What an endpoint does with a newly attached Model its GPU memory cannot hold."""

    ACCEPT = "Accept"
    REFUSE = "Refuse"


class AttachSpec(ApiModel):
    """Who may attach Models (kind Model) to this endpoint, as Gateway API's allowedRoutes."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.from != 'Selector' || has(self.selector)",
                    "message": "attach.from Selector needs attach.selector",
                    "fieldPath": ".selector",
                }
            ]
        }
    )

    from_: AttachFrom = Field(
        default=AttachFrom.SAME,
        alias="from",
        description="Same (Models of this endpoint's namespace only), All (any namespace) or "
        "Selector (namespaces whose labels match selector).",
    )
    selector: LabelSelector | None = Field(
        default=None,
        description="With from: Selector, the labels of the namespaces whose Models may attach.",
    )
    beyond_capacity: BeyondCapacity = Field(
        default=BeyondCapacity.ACCEPT,
        description="A Model whose GPU memory would take the endpoint's models past one "
        "instance's (the instance type's less the sizing headroom): Accept (default: served, "
        "CapacityFits=False warns that SageMaker will load and evict models in turn) or "
        "Refuse (Accepted=False/DoesNotFit on that Model). Inline models and Models already "
        "accepted keep their place; newcomers are taken oldest first while they fit.",
    )


class ModelEndpointSpec(ApiModel):
    """A SageMaker Multi-Model Endpoint on GPU instances, served by NVIDIA Triton."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _SPEC_RULES})

    region: str = Field(
        pattern=REGION_PATTERN,
        max_length=32,
        description="AWS region of the endpoint, e.g. us-east-1. Immutable.",
    )
    execution_role_arn: str = Field(
        pattern=ROLE_ARN_PATTERN,
        max_length=2048,
        description="IAM role SageMaker assumes to read the archives and pull the image.",
    )
    artifacts: ArtifactsSpec = Field(description="S3 location of the model archives.")
    endpoint_name: str | None = Field(
        default=None,
        pattern=ENDPOINT_NAME_PATTERN,
        max_length=63,
        description="SageMaker endpoint name; default derived from namespace and name. "
        "Immutable: it cannot be set, changed or removed after creation.",
    )
    instance_type: str | None = Field(
        default=None,
        pattern=INSTANCE_TYPE_PATTERN,
        max_length=64,
        description="SageMaker instance type, e.g. ml.g5.xlarge; may be left out when sizing "
        "is set (the operator then chooses one and reports it in status.instanceType, why in "
        "status.instanceTypeReason).",
    )
    sizing: SizingSpec | None = Field(
        default=None,
        description="Instance choice by GPU-memory fit and cost (CheapestThatFits); the type "
        "changes only when the models stop fitting.",
    )
    instance_count: int = Field(
        default=1, ge=1, le=1000, description="Instances behind the endpoint."
    )
    image: str | None = Field(
        default=None,
        max_length=512,
        description="Serving image; default the SageMaker Triton image for region and tritonVersion.",
    )
    triton_version: str = Field(
        default=DEFAULT_TRITON_VERSION,
        pattern=r"^[0-9]{2}\.[0-9]{2}$",
        description="Triton release of the default image, e.g. 24.09.",
    )
    environment: (
        Annotated[
            dict[str, Annotated[str, Field(max_length=ENVIRONMENT_STRING_MAX)]],
            Field(max_length=ENVIRONMENT_MAX_ENTRIES),
        ]
        | None
    ) = Field(
        default=None,
        description="Environment of the serving container (e.g. SAGEMAKER_TRITON_* settings); "
        f"at most {ENVIRONMENT_MAX_ENTRIES} variables, names like SOME_NAME of up to "
        f"{ENVIRONMENT_STRING_MAX} characters, values up to {ENVIRONMENT_STRING_MAX}.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    # The name's pattern is checked by `validate` and the operator: a regex
                    # over map keys of unknown length would exceed the API server's CEL
                    # cost budget.
                    "rule": f"self.all(k, size(k) >= 1 && size(k) <= {ENVIRONMENT_STRING_MAX})",
                    "message": f"environment variable names must be 1-{ENVIRONMENT_STRING_MAX} "
                    "characters",
                }
            ]
        },
    )
    serving: ServingSpec | None = Field(
        default=None,
        description="Triton and SageMaker serving settings (GPU memory limit, log verbosity, "
        "model cache, startup and download timeouts).",
    )
    autoscaling: AutoscalingSpec | None = Field(
        default=None, description="Autoscaling of the instance count."
    )
    deployment_config: DeploymentConfigSpec | None = Field(
        default=None,
        description="Deployment guardrails of endpoint updates (SageMaker DeploymentConfig: "
        "blue/green canary or linear, rolling, auto-rollback on CloudWatch alarms); unset: "
        "SageMaker's default blue/green, all at once.",
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.DELETE,
        description="Delete removes the endpoint, its configs, model and archives with the resource; "
        "Retain leaves them in place.",
    )
    tags: (
        Annotated[
            dict[str, Annotated[str, Field(max_length=TAG_VALUE_MAX, pattern=TAG_PATTERN)]],
            Field(max_length=MAX_USER_TAGS),
        ]
        | None
    ) = Field(
        default=None,
        description=f"Extra tags on every AWS resource created: at most {MAX_USER_TAGS} (AWS "
        f"allows {AWS_MAX_TAGS} and the operator adds {OPERATOR_TAG_COUNT}); keys 1-{TAG_KEY_MAX} "
        f"and values 0-{TAG_VALUE_MAX} letters, digits, spaces and _.:/=+-@; keys may not start "
        "with aws: or mme-operator.io/.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self.all(k, size(k) >= 1 && size(k) <= {TAG_KEY_MAX})",
                    "message": f"tag keys must be 1-{TAG_KEY_MAX} characters",
                },
                {
                    # Cheap prefix tests only (CEL cost budget); `validate` and the operator
                    # also refuse mixed case (Aws:) and the characters AWS does not allow.
                    "rule": "self.all(k, !k.startsWith('aws:') && !k.startsWith('AWS:')"
                    " && !k.startsWith('mme-operator.io/'))",
                    "message": "tag keys starting with aws: are reserved by AWS and "
                    "mme-operator.io/ by the operator",
                },
            ]
        },
    )
    models: list[ModelSpec] = Field(
        default_factory=list,
        max_length=MAX_MODELS,
        description="Models served by the endpoint (inline); names unique. May be empty when "
        "Models (kind Model) attach to it.",
    )
    attach: AttachSpec | None = Field(
        default=None,
        description="Which namespaces' Models (kind Model) may attach to this endpoint: Same "
        "(default: this namespace only), All, or Selector (namespace labels).",
    )

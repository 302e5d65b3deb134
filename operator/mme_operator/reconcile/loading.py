"""Why a model is not loaded: the load check of each new TargetModel, and how MME answers it.

After a new archive is uploaded the operator invokes its TargetModel once, which makes MME
download and load it (a warm-up when the model asks for one). What comes back tells three
cases apart, read from Triton's MME front end (server ``src/sagemaker_server.cc``) and the
answers of a real tritonserver:

- The model loaded: the invocation succeeded, or Triton refused the probe's input ("expected
  1 inputs but got 0 inputs for model ...", "unexpected inference input ...") or the model's
  own code failed on it ("Failed to process the request(s) ..."). Both come from a loaded model.
- Triton could not load it: its load error ("load failed for model 'X': version 1 is at
  UNAVAILABLE state: Internal: ModuleNotFoundError ...", "failed to load 'X', failed to poll
  from model repository"). MME's container answers a failed load with 400 and
  ``{"error": "<Triton's message>"}``, as it answers a refused request, so the status code
  does not tell them apart: the message does. SageMaker returns either as a ``ModelError``
  carrying ``OriginalStatusCode`` and ``OriginalMessage``.
- Not known yet: anything else (throttling, ``ModelNotReadyException`` while a large model is
  still loading, 507 when the instance is out of memory, the network). Tried again later.

A warm-up (``warmup: true``) is a real inference of zeros shaped like the model's inputs:
the spec's, or, for a model whose spec declares none (a source with its own config.pbtxt),
those of the config the archive carries, read back from S3 at the check.

Once per TargetModel: the outcome is kept in the model's status (``loaded``), so the steady
state makes no invocation at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import botocore.exceptions

from mme_operator.api import DataType, ModelEndpointStatus, ModelSpec, ModelState, ModelStatus
from mme_operator.api.triton_schema import model_config_pb2
from mme_operator.artifacts.naming import DesiredArchive
from mme_operator.sagemaker.errors import describe_error

# Triton's load errors: model_lifecycle ("load failed for model"), the repository manager
# ("failed to load '<name>', failed to poll from model repository") and the version state.
LOAD_ERROR_MARKERS = (
    "load failed for model",
    "failed to load '",
    "failed to poll from model repository",
    "is at UNAVAILABLE state",
    "has no available versions",
)

# What MME's container answers when the instance has no memory left for the model (its
# SageMakerMMECheckOOMError): not the model's fault; tried again.
OUT_OF_MEMORY_STATUS = 507


class LoadVerdict(StrEnum):
    LOADED = "Loaded"
    LOAD_FAILED = "LoadFailed"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class LoadOutcome:
    """What one load-check invocation showed, and the answer that showed it."""

    verdict: LoadVerdict
    message: str = ""


def container_message(exc: botocore.exceptions.ClientError) -> str:
    """The message the container sent (``OriginalMessage``, Triton's ``{"error": ...}``
    unwrapped), else the AWS error's message."""
    response: Any = exc.response
    original = response.get("OriginalMessage")
    if not isinstance(original, str) or not original:
        return str(response.get("Error", {}).get("Message", ""))
    try:
        body = json.loads(original)
    except ValueError:
        return original
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return original


def judge_invocation(exc: BaseException | None) -> LoadOutcome:
    """Loaded, LoadFailed or Unknown from how a load-check invocation ended (None: it succeeded)."""
    if exc is None:
        return LoadOutcome(LoadVerdict.LOADED)
    if isinstance(exc, botocore.exceptions.ClientError):
        code = exc.response.get("Error", {}).get("Code")
        if code == "ModelError":
            message = container_message(exc)
            status = exc.response.get("OriginalStatusCode")
            if status == OUT_OF_MEMORY_STATUS:
                return LoadOutcome(LoadVerdict.UNKNOWN, describe_error(exc))
            if any(marker in message for marker in LOAD_ERROR_MARKERS):
                return LoadOutcome(LoadVerdict.LOAD_FAILED, message.strip())
            # Triton answered for a model it has in memory: the input, or the model's code.
            return LoadOutcome(LoadVerdict.LOADED, message.strip())
    return LoadOutcome(LoadVerdict.UNKNOWN, describe_error(exc))


@dataclass(frozen=True)
class ProbeInput:
    """One input tensor of a warm-up request: its name, Triton data type and dims."""

    name: str
    data_type: str
    """Triton's name, e.g. ``TYPE_FP32``."""
    dims: tuple[int, ...]


@dataclass(frozen=True)
class ProbeInputs:
    """What a warm-up request is generated from: the inputs a model declares."""

    inputs: tuple[ProbeInput, ...]
    max_batch_size: int


def spec_inputs(model: ModelSpec) -> ProbeInputs:
    """The inputs ``spec.models[]`` declares (optional ones left out)."""
    return ProbeInputs(
        tuple(
            ProbeInput(t.name, str(t.data_type), tuple(t.dims))
            for t in model.inputs or []
            if not t.optional
        ),
        model.max_batch_size,
    )


def config_inputs(config: model_config_pb2.ModelConfig) -> ProbeInputs:
    """The inputs a parsed ``config.pbtxt`` declares (optional ones left out): the config the
    archive carries, for a model whose inputs come from its source's own config."""
    return ProbeInputs(
        tuple(
            ProbeInput(t.name, model_config_pb2.DataType.Name(t.data_type), tuple(t.dims))
            for t in config.input
            if not t.optional
        ),
        config.max_batch_size,
    )


def inputs_from_archive(model: ModelSpec, *, warm_up: bool) -> bool:
    """Whether the warm-up request needs the inputs of the config the archive carries: a
    ``warmup: true`` model whose spec declares none (they come from its source's config)."""
    return warm_up and not model.inputs


def probe_request(model: ModelSpec, *, warm_up: bool, inputs: ProbeInputs | None = None) -> bytes:
    """The body of the load check: a real inference of zeros for ``warmup: true`` (from
    ``inputs``, else the spec's), else a request with no inputs, which a loaded model refuses
    before running anything."""
    if not warm_up:
        return json.dumps({"inputs": []}).encode()
    return json.dumps(zeros_request(inputs or spec_inputs(model))).encode()


STRING_FILL = "0"
"""What a TYPE_STRING (KServe BYTES) input of a warm-up request holds: a short string."""


def zeros_request(declared: ProbeInputs) -> dict[str, Any]:
    """A KServe v2 inference request of zeros matching ``declared``: -1 dims as 1, the batch
    dimension (1) first when the model batches, strings as :data:`STRING_FILL`."""
    inputs = []
    for tensor in declared.inputs:
        shape = [max(d, 1) for d in tensor.dims]
        if declared.max_batch_size > 0:
            shape = [1, *shape]
        count = 1
        for d in shape:
            count *= d
        fill: Any = 0
        if tensor.data_type == DataType.TYPE_STRING:
            fill = STRING_FILL
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


def checked_before(
    status: ModelEndpointStatus | None, generation: int | None = None
) -> dict[str, ModelStatus]:
    """The models of ``status`` whose TargetModel was load-checked, by TargetModel.

    A LoadFailed one counts only for the generation it was checked at: a change of the spec
    (e.g. another image) checks it again, once.
    """
    if status is None:
        return {}
    same_generation = generation is None or status.observed_generation == generation
    return {
        m.target_model: m
        for m in status.models or []
        if m.target_model and (m.loaded is True or (m.loaded is False and same_generation))
    }


def served_archive(model: ModelStatus) -> tuple[str | None, str | None]:
    """(S3 key, TargetModel) of the archive that served ``model`` at the last pass: the one
    its status keeps serving while the current one has not loaded, else the current one."""
    if model.serving_s3_key and model.serving_target_model:
        return model.serving_s3_key, model.serving_target_model
    return model.s3_key, model.target_model


def serves(
    load_check: bool,
    status: ModelEndpointStatus,
    archive: DesiredArchive,
    ours: Callable[[str], bool],
) -> bool:
    """Whether a model's new ``archive`` serves already, by the last pass's ``status``: it is
    in S3 (``ours``) and was Available there (loaded); or, not recorded yet, it needs no
    load check (``load_check`` off: an archive in S3 is Available)."""
    if not ours(archive.key):
        return False
    recorded = [m.state for m in status.models or [] if m.target_model == archive.target_model]
    if recorded:
        return ModelState.AVAILABLE in recorded
    return not load_check

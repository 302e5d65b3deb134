"""A fixed-concurrency load generator over Triton's HTTP API (tritonclient, asyncio).

``concurrency`` workers each keep one request in flight: send, wait for the answer, send
again (a closed loop, as ``perf_analyzer --concurrency-range`` does). Requests finished
during the warm-up are discarded; throughput and latency percentiles come from the
requests that *finished* inside the measurement window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tritonclient.http.aio as triton_http
from tritonclient.http import InferInput
from tritonclient.utils import InferenceServerException

from mme_operator.api import ModelSpec
from mme_operator.api.spec import DataType
from mme_operator.profile.grid import ProfileError

_NUMPY_TYPES: dict[DataType, Any] = {
    DataType.TYPE_BOOL: np.bool_,
    DataType.TYPE_UINT8: np.uint8,
    DataType.TYPE_UINT16: np.uint16,
    DataType.TYPE_UINT32: np.uint32,
    DataType.TYPE_UINT64: np.uint64,
    DataType.TYPE_INT8: np.int8,
    DataType.TYPE_INT16: np.int16,
    DataType.TYPE_INT32: np.int32,
    DataType.TYPE_INT64: np.int64,
    DataType.TYPE_FP16: np.float16,
    DataType.TYPE_FP32: np.float32,
    DataType.TYPE_FP64: np.float64,
    DataType.TYPE_STRING: np.object_,
}

VARIABLE_DIM_SIZE = 16
"""Size given to a ``-1`` dimension in generated inputs."""


@dataclass(frozen=True)
class Measurement:
    """What one (variant, concurrency) run measured."""

    concurrency: int
    requests: int
    errors: int
    seconds: float
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    latencies_ms: tuple[float, ...] = field(default=(), repr=False, compare=False)
    """Every latency measured (for :func:`combine`); not part of reports."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": self.errors,
            "seconds": self.seconds,
            "throughput_rps": self.throughput_rps,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
        }


def summarise(
    concurrency: int, latencies_ms: Sequence[float], errors: int, seconds: float
) -> Measurement:
    """Throughput and percentiles of the latencies measured over ``seconds``."""
    ms = np.array(latencies_ms) if latencies_ms else np.array([float("nan")])
    return Measurement(
        concurrency=concurrency,
        requests=len(latencies_ms),
        errors=errors,
        seconds=seconds,
        throughput_rps=round(len(latencies_ms) / seconds, 2),
        p50_ms=round(float(np.percentile(ms, 50)), 3),
        p95_ms=round(float(np.percentile(ms, 95)), 3),
        p99_ms=round(float(np.percentile(ms, 99)), 3),
        latencies_ms=tuple(latencies_ms),
    )


def combine(runs: Sequence[Measurement]) -> Measurement:
    """Several runs of one configuration (interleaved with others) as one measurement."""
    latencies = [x for run in runs for x in run.latencies_ms]
    return summarise(
        runs[0].concurrency,
        latencies,
        sum(r.errors for r in runs),
        sum(r.seconds for r in runs),
    )


Inputs = list[tuple[str, list[int], str, np.ndarray[Any, Any]]]
"""(name, shape, Triton datatype, data) of every input of one request."""


def generate_inputs(model: ModelSpec, seed: int = 0) -> Inputs:
    """One request's inputs from the spec's declared ``inputs`` (batch 1 when it batches).

    A ``-1`` dimension becomes :data:`VARIABLE_DIM_SIZE`. A model without declared inputs
    cannot be driven: the message says what to add.
    """
    if not model.inputs:
        raise ProfileError(
            f"model {model.name!r} declares no inputs, so no request can be generated: add "
            "inputs to its spec, e.g. inputs: [{name: INPUT0, dataType: TYPE_FP32, dims: [16]}]"
        )
    if model.backend == "python" and not model.outputs:
        raise ProfileError(
            f"model {model.name!r} declares no outputs; the Python backend needs them: add "
            "outputs to its spec, e.g. outputs: [{name: OUTPUT0, dataType: TYPE_FP32, dims: [16]}]"
        )
    rng = np.random.default_rng(seed)
    inputs: Inputs = []
    for tensor in model.inputs:
        shape = [VARIABLE_DIM_SIZE if d == -1 else d for d in tensor.dims]
        if model.max_batch_size > 0:
            shape = [1, *shape]
        dtype = tensor.data_type
        if dtype is DataType.TYPE_STRING:
            data = np.array([b"profile"] * int(np.prod(shape)), dtype=np.object_).reshape(shape)
        elif dtype is DataType.TYPE_BF16:
            raise ProfileError(
                f"input {tensor.name!r} of model {model.name!r} is TYPE_BF16, which "
                "tritonclient cannot send from numpy; profile a TYPE_FP16/FP32 variant"
            )
        elif dtype is DataType.TYPE_BOOL:
            data = rng.integers(0, 2, size=shape).astype(np.bool_)
        elif np.issubdtype(_NUMPY_TYPES[dtype], np.integer):
            data = rng.integers(0, 8, size=shape).astype(_NUMPY_TYPES[dtype])
        else:
            data = rng.standard_normal(size=shape).astype(_NUMPY_TYPES[dtype])
        inputs.append((tensor.name, shape, dtype.value.removeprefix("TYPE_"), data))
    return inputs


def _infer_inputs(inputs: Inputs) -> list[InferInput]:
    out = []
    for name, shape, datatype, data in inputs:
        tensor = InferInput(name, shape, "BYTES" if datatype == "STRING" else datatype)
        tensor.set_data_from_numpy(data, binary_data=True)
        out.append(tensor)
    return out


async def _run(
    url: str,
    model: str,
    inputs: Inputs,
    concurrency: int,
    warmup_s: float,
    duration_s: float,
) -> Measurement:
    host = url.removeprefix("http://").rstrip("/")
    client = triton_http.InferenceServerClient(host, conn_limit=concurrency + 1)
    latencies: list[float] = []
    errors: list[str] = []
    request_inputs = _infer_inputs(inputs)
    start = time.perf_counter()
    window = (start + warmup_s, start + warmup_s + duration_s)

    async def worker() -> None:
        while True:
            sent = time.perf_counter()
            if sent >= window[1]:
                return
            try:
                await client.infer(model, request_inputs)
            except InferenceServerException as exc:
                errors.append(str(exc))
                if len(errors) > 10:
                    return
                continue
            done = time.perf_counter()
            if window[0] <= done <= window[1]:
                latencies.append(done - sent)

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await client.close()
    if errors and not latencies:
        raise ProfileError(f"every request to {model} failed: {errors[0]}")
    return summarise(concurrency, [x * 1000.0 for x in latencies], len(errors), duration_s)


def measure(
    url: str,
    model: str,
    inputs: Inputs,
    *,
    concurrency: int,
    warmup_s: float = 1.0,
    duration_s: float = 5.0,
    progress: Callable[[str], None] | None = None,
) -> Measurement:
    """Drive ``model`` at ``url`` with ``concurrency`` requests in flight; measure after warm-up."""
    if progress is not None:
        progress(f"{model}: concurrency {concurrency}, {warmup_s:g}s warm-up + {duration_s:g}s")
    return asyncio.run(_run(url, model, inputs, concurrency, warmup_s, duration_s))

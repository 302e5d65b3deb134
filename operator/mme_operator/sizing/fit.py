"""GPU-memory fit of an endpoint's models and the choice of instance type (pure, no I/O).

Per model, GPU memory = weights size x GPU instance count x a per-platform factor + a
per-instance overhead; ``gpuMemoryMiB`` in the spec replaces the estimate, and a figure
measured by ``mme-operator profile`` on a GPU replaces it too. The endpoint needs the sum
of its models (an MME keeps every model it serves loaded unless memory runs short, then
loads and evicts them in turn: it thrashes). That sum is compared with one instance's
GPU memory less the headroom.

The factors are rules of thumb, written down so a user can see and override them
(``gpuMemoryMiB``): framework runtimes hold activations, workspaces and allocator
slack beside the weights, and each model instance on a GPU holds its own copy of the
weights plus its own execution context.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mme_operator.api import ModelSpec
from mme_operator.api.spec import InstanceKind
from mme_operator.sizing.catalogue import HOURS_PER_MONTH, InstanceCatalogue, InstanceType

MIB = 1024**2

PLATFORM_FACTORS: Mapping[str, float] = {
    "tensorrt_plan": 1.2,
    "tensorrt": 1.2,
    "onnxruntime_onnx": 1.5,
    "onnxruntime": 1.5,
    "pytorch_libtorch": 2.0,
    "pytorch": 2.0,
    "tensorflow_savedmodel": 2.0,
    "tensorflow_graphdef": 2.0,
    "tensorflow": 2.0,
    "python": 2.0,
}
"""GPU memory per byte of weights, by platform or backend."""
DEFAULT_FACTOR = 2.0
INSTANCE_OVERHEAD_MIB = 256
"""Execution context, CUDA streams and workspace of one model instance on a GPU."""
DEFAULT_HEADROOM_PERCENT = 10
PROXY_REGION = "us-east-1"
"""The region whose prices order the types where a region has none."""


@dataclass(frozen=True)
class ModelNeed:
    """GPU memory one model needs at its instance count, and how that figure was found."""

    name: str
    gpu_instances: int
    required_mib: int
    basis: str
    """``gpuMemoryMiB`` (the spec), ``measured`` (a profile), ``estimate`` or ``unknown``."""
    cpu_only: bool = False


def gpu_instances(model: ModelSpec) -> int:
    """Copies of the model that live on the GPU (Triton's default: one)."""
    groups = model.instance_groups
    if not groups:
        return 1
    return sum(g.count for g in groups if g.kind != InstanceKind.KIND_CPU)


UNKNOWN_BASIS = "unknown"
"""The basis of a need whose weights size is unknown: per-instance overhead only."""


def model_need(
    model: ModelSpec, weights_bytes: int | None, measured_mib: float | None = None
) -> ModelNeed:
    """GPU memory of ``model``: the spec's figure, a measured one, or the estimate."""
    instances = gpu_instances(model)
    if instances == 0:
        return ModelNeed(model.name, 0, 0, "KIND_CPU", cpu_only=True)
    if model.gpu_memory_mib is not None:
        return ModelNeed(model.name, instances, model.gpu_memory_mib, "gpuMemoryMiB")
    if measured_mib is not None:
        return ModelNeed(model.name, instances, math.ceil(measured_mib), "measured")
    if weights_bytes is None:
        return ModelNeed(model.name, instances, instances * INSTANCE_OVERHEAD_MIB, UNKNOWN_BASIS)
    required = estimate_mib(weights_bytes, model.platform or model.backend or "", instances)
    return ModelNeed(model.name, instances, required, "estimate")


def estimate_mib(weights_bytes: int, platform: str, instances: int) -> int:
    """The rule of thumb: ``instances`` copies of the weights x the platform's factor, plus
    each copy's overhead (MiB). The local SageMaker loads models with the same figure."""
    factor = PLATFORM_FACTORS.get(platform, DEFAULT_FACTOR)
    per_instance = weights_bytes / MIB * factor + INSTANCE_OVERHEAD_MIB
    return math.ceil(per_instance * instances)


@dataclass(frozen=True)
class Candidate:
    """One instance type against an endpoint's need."""

    instance: InstanceType
    required_mib: int
    available_mib: int
    """Memory of one instance less the headroom (GPU memory; host memory on a CPU type)."""
    fits: bool
    cost_per_hour: float | None
    why: str

    @property
    def cost_per_month(self) -> float | None:
        return (
            None if self.cost_per_hour is None else round(self.cost_per_hour * HOURS_PER_MONTH, 2)
        )


def _available_mib(instance: InstanceType, headroom_percent: float) -> int:
    total = instance.gpu_memory_mib * instance.gpus if instance.gpus else instance.memory_gib * 1024
    return int(total * (1 - headroom_percent / 100))


def candidates(
    needs: Sequence[ModelNeed],
    catalogue: InstanceCatalogue,
    region: str,
    *,
    headroom_percent: float = DEFAULT_HEADROOM_PERCENT,
    families: Sequence[str] | None = None,
    instance_count: int = 1,
) -> list[Candidate]:
    """Every MME type (of ``families`` when given), cheapest first; unpriced types last.

    A CPU type fits only when every model runs on CPU; then host memory is what holds them.
    """
    required = sum(n.required_mib for n in needs)
    gpu_models = [n.name for n in needs if not n.cpu_only]
    out = []
    for instance in catalogue.mme_types():
        if families and instance.family not in families:
            continue
        available = _available_mib(instance, headroom_percent)
        if not instance.gpus and gpu_models:
            fits, why = False, f"no GPU, and {', '.join(gpu_models)} run on KIND_GPU"
        elif required <= available:
            fits, why = True, f"{required} MiB needed <= {available} MiB available"
        else:
            fits, why = False, f"{required} MiB needed > {available} MiB available"
        price = catalogue.price(instance.name, region)
        cost = None if price is None else round(price * instance_count, 4)
        out.append(Candidate(instance, required, available, fits, cost, why))

    # Where the region has no price, us-east-1's orders the types (prices move together
    # across regions); such a type is never recommended, only chosen when nothing is priced.
    def order(c: Candidate) -> tuple[bool, float, int, str]:
        proxy = c.cost_per_hour
        if proxy is None:
            proxy = catalogue.price(c.instance.name, PROXY_REGION)
        return (proxy is None, proxy or 0.0, c.instance.gpu_memory_mib, c.instance.name)

    out.sort(key=order)
    return out


def recommend(found: Sequence[Candidate]) -> Candidate | None:
    """The cheapest priced type that fits; None when none fits (or none is priced)."""
    return next((c for c in found if c.fits and c.cost_per_hour is not None), None)


def largest_gpu_mib(catalogue: InstanceCatalogue) -> int:
    """GPU memory of the largest single-GPU MME type (for "nothing fits" messages)."""
    return max((t.gpu_memory_mib for t in catalogue.mme_types() if t.gpus), default=0)

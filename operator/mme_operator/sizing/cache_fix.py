"""What to change when the MME cache thrashes or GPU memory stays full (pure, no I/O).

The sizing's own figures decide: the models' GPU memory (``CapacityFits``' estimate, or
what the metrics show when that is more: GPU memory in use / models loaded per instance x
models served) against one instance's usable memory. A cache that thrashes needs its hot
set to fit: a type whose GPU memory holds it, or enough instances to hold it between them
(MME sends a request to an instance that has its model loaded, so N instances hold N
instances' worth of models); the cheaper is proposed first. Memory that stays near full
without thrashing leaves inference no room: a lower ``modelLoadGpuLimit`` makes SageMaker
evict before a load fills the GPU, or a larger type.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mme_operator.sizing.catalogue import InstanceCatalogue
from mme_operator.sizing.fit import Candidate, ModelNeed, candidates, recommend

SUGGESTED_GPU_LIMIT = 0.8
"""The modelLoadGpuLimit proposed under memory pressure (20% of the GPU kept for inference)."""


@dataclass(frozen=True)
class CacheFix:
    """One proposal: what to set, and the sentence that says it."""

    message: str
    instance_type: str | None = None
    instance_count: int | None = None
    model_load_gpu_limit: float | None = None


@dataclass(frozen=True)
class Observed:
    """What the metrics window showed (None: no data)."""

    loaded_models: float | None = None
    gpu_memory_percent: float | None = None


def hot_set_mib(
    needs: Sequence[ModelNeed],
    catalogue: InstanceCatalogue,
    instance_type: str,
    observed: Observed,
) -> tuple[int, str]:
    """GPU memory the served models need together, and where the figure comes from."""
    estimate = sum(n.required_mib for n in needs)
    instance = catalogue.get(instance_type)
    gpu_models = [n for n in needs if not n.cpu_only]
    if (
        instance is None
        or not instance.gpus
        or not gpu_models
        or not observed.loaded_models
        or observed.loaded_models < 1
        or observed.gpu_memory_percent is None
    ):
        return estimate, "the sizing estimate"
    per_model = observed.gpu_memory_percent / 100 * instance.gpu_memory_mib / observed.loaded_models
    seen = math.ceil(per_model * len(gpu_models))
    if seen > estimate:
        return seen, "GPU memory in use per loaded model, from the metrics"
    return estimate, "the sizing estimate"


def _price(cost: float | None) -> str:
    return f"${cost:g}/h" if cost is not None else "no price"


def fix_thrashing(
    needs: Sequence[ModelNeed],
    catalogue: InstanceCatalogue,
    region: str,
    instance_type: str,
    instance_count: int,
    headroom_percent: float,
    observed: Observed = Observed(),
) -> CacheFix:
    """A larger type or more instances, whichever costs less, so the hot set stays loaded."""
    required, basis = hot_set_mib(needs, catalogue, instance_type, observed)
    hot = [ModelNeed("hot set", 1, required, basis)]
    found = candidates(
        hot, catalogue, region, headroom_percent=headroom_percent, instance_count=instance_count
    )
    current = next((c for c in found if c.instance.name == instance_type), None)
    larger: Candidate | None = recommend([c for c in found if c.instance.name != instance_type])
    options: list[tuple[float, CacheFix]] = []
    if larger is not None:
        options.append(
            (
                larger.cost_per_hour or math.inf,
                CacheFix(
                    f"use {larger.instance.name} ({larger.available_mib} MiB usable, "
                    f"{_price(larger.cost_per_hour)} for {instance_count})",
                    instance_type=larger.instance.name,
                ),
            )
        )
    if current is not None and current.available_mib > 0:
        count = max(math.ceil(required / current.available_mib), instance_count + 1)
        price = catalogue.price(instance_type, region)
        cost = None if price is None else round(price * count, 4)
        options.append(
            (
                cost or math.inf,
                CacheFix(
                    f"run {count} instances of {instance_type} ({_price(cost)}; each request "
                    "goes to an instance that has its model loaded)",
                    instance_count=count,
                ),
            )
        )
    why = (
        f"the models need {required} MiB of GPU memory ({basis}), one {instance_type} has "
        f"{current.available_mib if current else 0} MiB usable"
    )
    if not options:
        return CacheFix(
            f"{why}; no single-GPU MME type holds them: split the models over several "
            "ModelEndpoints"
        )
    options.sort(key=lambda o: o[0])
    best = options[0][1]
    others = "; or ".join(o[1].message for o in options[1:])
    message = f"{why}: {best.message}" + (f"; or {others}" if others else "")
    return CacheFix(message, best.instance_type, best.instance_count, None)


def fix_memory_pressure(
    needs: Sequence[ModelNeed],
    catalogue: InstanceCatalogue,
    region: str,
    instance_type: str,
    instance_count: int,
    headroom_percent: float,
    model_load_gpu_limit: float | None,
    observed: Observed = Observed(),
) -> CacheFix:
    """A lower ``modelLoadGpuLimit`` where it is above the suggestion; else a larger type."""
    if model_load_gpu_limit is None or model_load_gpu_limit > SUGGESTED_GPU_LIMIT:
        now = "unset" if model_load_gpu_limit is None else f"{model_load_gpu_limit:g}"
        return CacheFix(
            f"set spec.serving.modelLoadGpuLimit to {SUGGESTED_GPU_LIMIT:g} (now {now}) so "
            "that SageMaker evicts before a load fills the GPU and inference keeps room",
            model_load_gpu_limit=SUGGESTED_GPU_LIMIT,
        )
    larger = fix_thrashing(
        needs, catalogue, region, instance_type, instance_count, headroom_percent, observed
    )
    return CacheFix(
        f"modelLoadGpuLimit is already {model_load_gpu_limit:g}; {larger.message}",
        larger.instance_type,
        larger.instance_count,
        None,
    )

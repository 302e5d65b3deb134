"""The model cache of each instance of a local MME endpoint, and the metrics it publishes.

As on SageMaker (MME-FACTS #16, #17): every instance of the endpoint's variant keeps its own
least-recently-used set of loaded models, bounded by the instance type's memory (the
instance catalogue: GPU memory on a GPU type, host memory for CPU copies and on a CPU
type). A request goes to the instance that has its model loaded (a cache hit); otherwise
the instance with the most free memory loads it (a miss), first unloading its least
recently used models until the new one fits. ``ModelCacheSetting: Disabled`` unloads the
model after every invocation.

How much memory a model takes: the stand-in runs no GPU, so it cannot measure it. It
takes the operator's own sizing estimate (:func:`mme_operator.sizing.fit.estimate_mib`)
of the archive as loaded: per model folder (an ensemble's steps each count), the bytes
of its files besides ``config.pbtxt`` x the platform's factor + the per-copy overhead,
times the copies ``instance_group`` declares (none declared: one). GPU copies (KIND_GPU,
KIND_AUTO, KIND_MODEL) take GPU memory on a GPU type, KIND_CPU copies host memory; on a
CPU type every copy takes host memory. So a spec whose ``CapacityFits`` is False thrashes
here as it would on AWS, and ``gpuMemoryMiB`` measured on a GPU is what to compare. With
``SAGEMAKER_TRITON_MODEL_LOAD_GPU_LIMIT`` in the container's environment, loads fill at most
that share of the GPU (models are unloaded first), as Triton's ``--model-load-gpu-limit``.

The metrics go to the local CloudWatch per invocation, with the dimensions AWS uses
(EndpointName, VariantName): in ``AWS/SageMaker`` ``ModelCacheHit`` (1 or 0, unit None),
``LoadedModelCount`` (models on the serving instance), and on a miss
``ModelLoadingWaitTime``, ``ModelDownloadingTime`` and ``ModelLoadingTime``, per unload
``ModelUnloadingTime`` (microseconds, as measured here); in ``/aws/sagemaker/Endpoints``
``GPUMemoryUtilization`` and ``GPUUtilization`` (GPU types) and ``MemoryUtilization``
(percent of the serving instance). ``GPUUtilization`` is the share of the last minute the
instance spent serving invocations (loads included): the stand-in's only measure of work.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from mme_operator.sizing.catalogue import InstanceType
from mme_operator.sizing.fit import MIB, estimate_mib
from mme_operator.triton.schema import model_config_pb2

T = TypeVar("T")

LOADING_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
UTILIZATION_WINDOW_SECONDS = 60.0

Datum = dict[str, Any]
Publish = Callable[[str, str, list[Datum]], None]
"""(region, namespace, CloudWatch MetricData entries) -> None: puts them to CloudWatch."""

_GPU_KINDS = (
    model_config_pb2.ModelInstanceGroup.KIND_AUTO,
    model_config_pb2.ModelInstanceGroup.KIND_GPU,
    model_config_pb2.ModelInstanceGroup.KIND_MODEL,
)


@dataclass(frozen=True)
class MemoryNeed:
    """Memory a loaded model takes on one instance (bytes)."""

    gpu_bytes: int = 0
    host_bytes: int = 0

    def __add__(self, other: MemoryNeed) -> MemoryNeed:
        return MemoryNeed(self.gpu_bytes + other.gpu_bytes, self.host_bytes + other.host_bytes)


def memory_need(
    folders: Iterable[tuple[model_config_pb2.ModelConfig, int]], gpu_type: bool
) -> MemoryNeed:
    """What the model folders of one archive take: (config, weights bytes) per folder."""
    total = MemoryNeed()
    for config, weights in folders:
        if config.platform == "ensemble":
            continue  # an ensemble only routes between its steps
        groups = list(config.instance_group) or [model_config_pb2.ModelInstanceGroup()]
        platform = config.platform or config.backend
        gpu = sum(max(g.count, 1) for g in groups if g.kind in _GPU_KINDS) if gpu_type else 0
        host = sum(max(g.count, 1) for g in groups) - gpu
        total += MemoryNeed(
            estimate_mib(weights, platform, gpu) * MIB if gpu else 0,
            estimate_mib(weights, platform, host) * MIB if host else 0,
        )
    return total


@dataclass(frozen=True)
class Capacity:
    """Memory of one instance that holds loaded models (bytes).

    ``gpu_load_limit`` is ``SAGEMAKER_TRITON_MODEL_LOAD_GPU_LIMIT`` (Triton's
    ``--model-load-gpu-limit``): a load that would take more of the GPU than that fraction
    is refused, so MME unloads models first (MME-FACTS #4).
    """

    gpu_bytes: int
    host_bytes: int
    gpu_load_limit: float | None = None

    @classmethod
    def of(
        cls,
        instance: InstanceType | None,
        override_bytes: int | None = None,
        gpu_load_limit: float | None = None,
    ) -> Capacity:
        """The instance type's GPU and host memory; ``override_bytes`` replaces both."""
        if override_bytes is not None:
            gpu = override_bytes if instance is None or instance.gpus else 0
            return cls(gpu, override_bytes, gpu_load_limit)
        if instance is None:
            return cls(0, 0)
        gpu = int(instance.total_gpu_memory_gib * 1024**3)
        return cls(gpu, int(instance.memory_gib * 1024**3), gpu_load_limit)

    @property
    def gpu_loadable_bytes(self) -> int:
        """GPU memory loads may fill: all of it, or the load limit's share."""
        if self.gpu_load_limit is None:
            return self.gpu_bytes
        return int(self.gpu_bytes * self.gpu_load_limit)

    def holds(self, need: MemoryNeed) -> bool:
        return need.gpu_bytes <= self.gpu_loadable_bytes and need.host_bytes <= self.host_bytes


@dataclass
class InstanceCache(Generic[T]):
    """One instance's loaded models, least recently used first, and its recent work."""

    index: int
    capacity: Capacity
    models: OrderedDict[str, tuple[T, MemoryNeed]] = field(default_factory=OrderedDict)
    busy: deque[tuple[float, float]] = field(default_factory=deque)

    @property
    def used(self) -> MemoryNeed:
        total = MemoryNeed()
        for _, need in self.models.values():
            total += need
        return total

    def free(self) -> tuple[int, int]:
        used = self.used
        gpu = self.capacity.gpu_loadable_bytes - used.gpu_bytes
        return gpu, self.capacity.host_bytes - used.host_bytes

    def fits(self, need: MemoryNeed) -> bool:
        return self.capacity.holds(self.used + need)

    def least_recently_used(self) -> tuple[str, T]:
        target, (loaded, _) = next(iter(self.models.items()))
        return target, loaded

    def worked(self, start: float, end: float) -> None:
        self.busy.append((start, end))
        while self.busy and self.busy[0][1] < end - UTILIZATION_WINDOW_SECONDS:
            self.busy.popleft()

    def utilization_percent(self, now: float) -> float:
        since = now - UTILIZATION_WINDOW_SECONDS
        spent = sum(max(0.0, end - max(start, since)) for start, end in self.busy)
        return min(100.0, 100.0 * spent / UTILIZATION_WINDOW_SECONDS)


@dataclass
class Fleet(Generic[T]):
    """The instances of one endpoint's fleet (a new fleet starts with nothing loaded)."""

    generation: int
    capacity: Capacity
    instances: list[InstanceCache[T]] = field(default_factory=list)

    def resize(self, count: int) -> list[T]:
        """Match the live instance count (scaling keeps the fleet); the models of the
        instances taken away, to unload."""
        dropped: list[T] = []
        while len(self.instances) > max(count, 1):
            gone = self.instances.pop()
            dropped.extend(loaded for loaded, _ in gone.models.values())
        while len(self.instances) < max(count, 1):
            self.instances.append(InstanceCache(len(self.instances), self.capacity))
        return dropped

    def holding(self, target_model: str) -> InstanceCache[T] | None:
        """The instance that has ``target_model`` loaded (requests go there)."""
        return next((i for i in self.instances if target_model in i.models), None)

    def place(self, need: MemoryNeed) -> InstanceCache[T]:
        """The instance a cold model loads on: one it fits without unloading, else the
        one with the most free memory."""
        fitting = [i for i in self.instances if i.fits(need)]
        return max(fitting or self.instances, key=lambda i: (i.free(), -i.index))

    def loaded(self) -> list[tuple[str, T]]:
        return [(t, m) for i in self.instances for t, (m, _) in i.models.items()]


@dataclass
class Invocation:
    """What serving one request did to the cache, for its metrics (times in seconds)."""

    target_model: str
    hit: bool
    download_seconds: float = 0.0
    load_seconds: float = 0.0
    wait_seconds: float = 0.0
    unload_seconds: list[float] = field(default_factory=list)


def _micros(seconds: float) -> float:
    return round(seconds * 1e6, 1)


def invocation_metrics(
    endpoint_name: str,
    variant_name: str,
    invocation: Invocation,
    instance: InstanceCache[Any],
    gpu_type: bool,
    now: float | None = None,
) -> dict[str, list[Datum]]:
    """The MetricData to put for one served invocation, by namespace."""
    now = time.time() if now is None else now
    stamp = datetime.fromtimestamp(now, UTC).replace(tzinfo=None)  # moto keeps naive UTC
    dimensions = [
        {"Name": "EndpointName", "Value": endpoint_name},
        {"Name": "VariantName", "Value": variant_name},
    ]

    def datum(name: str, value: float, unit: str) -> Datum:
        return {
            "MetricName": name,
            "Value": float(value),
            "Unit": unit,
            "Dimensions": dimensions,
            "Timestamp": stamp,
        }

    loading = [
        datum("ModelCacheHit", 1.0 if invocation.hit else 0.0, "None"),
        datum("LoadedModelCount", len(instance.models), "None"),
    ]
    if not invocation.hit:
        loading += [
            datum("ModelLoadingWaitTime", _micros(invocation.wait_seconds), "Microseconds"),
            datum("ModelDownloadingTime", _micros(invocation.download_seconds), "Microseconds"),
            datum("ModelLoadingTime", _micros(invocation.load_seconds), "Microseconds"),
        ]
    loading += [
        datum("ModelUnloadingTime", _micros(s), "Microseconds") for s in invocation.unload_seconds
    ]
    used = instance.used
    capacity = instance.capacity
    host = 100.0 * used.host_bytes / capacity.host_bytes if capacity.host_bytes else 0.0
    usage = [datum("MemoryUtilization", round(host, 2), "Percent")]
    if gpu_type and capacity.gpu_bytes:
        gpu_memory = 100.0 * used.gpu_bytes / capacity.gpu_bytes
        usage += [
            datum("GPUMemoryUtilization", round(gpu_memory, 2), "Percent"),
            datum("GPUUtilization", round(instance.utilization_percent(now), 2), "Percent"),
        ]
    return {LOADING_NAMESPACE: loading, INSTANCE_NAMESPACE: usage}


def publish_all(publish: Publish | None, region: str, batches: dict[str, list[Datum]]) -> None:
    """Put ``batches`` (namespace -> MetricData) to CloudWatch through ``publish``."""
    if publish is None:
        return
    for namespace, data in batches.items():
        if data:
            publish(region, namespace, data)


def describe_need(need: MemoryNeed) -> str:
    """``6144 MiB of GPU memory`` (and host memory when any)."""
    parts = []
    if need.gpu_bytes:
        parts.append(f"{need.gpu_bytes // MIB} MiB of GPU memory")
    if need.host_bytes:
        parts.append(f"{need.host_bytes // MIB} MiB of host memory")
    return " and ".join(parts) or "no memory"


def describe_capacity(capacity: Capacity) -> str:
    return describe_need(MemoryNeed(capacity.gpu_bytes, capacity.host_bytes))

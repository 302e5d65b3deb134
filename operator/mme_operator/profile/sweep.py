"""The profile sweep: a bounded grid of variants x concurrencies, and its recommendation.

Why a grid and not a search: the grid is small (instance counts x batching delays x
concurrencies, 18 points by default) and its cost is known before it starts, so the user
sees how long it takes; it yields the whole throughput-latency curve of every variant,
which is what the plot shows and what sizing for a given load needs; and a greedy search
is easily misled by one noisy point on a shared machine, where a grid's neighbours show
the noise for what it is.
"""

from __future__ import annotations

import math
import re
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mme_operator.api import ModelSpec
from mme_operator.profile.grid import Grid, Variant
from mme_operator.profile.load import Measurement, generate_inputs, measure
from mme_operator.profile.server import Target
from mme_operator.profile.variants import (
    ProfileError,
    load_variant,
    package_files,
    unload_variant,
    variant_spec,
)
from mme_operator.settings import Settings


@dataclass(frozen=True)
class Point:
    """One measured point of the grid."""

    variant: Variant
    measurement: Measurement
    gpu_memory_mib: float | None = None

    def row(self) -> dict[str, Any]:
        return {
            "instances": self.variant.instances,
            "queueDelayUs": self.variant.queue_delay_us,
            **self.measurement.as_dict(),
            "gpuMemoryMiB": self.gpu_memory_mib,
        }


@dataclass(frozen=True)
class Profile:
    """A finished sweep of one model."""

    model: ModelSpec
    server: str
    grid: Grid
    points: list[Point] = field(default_factory=list)
    latency_budget_ms: float | None = None

    def recommendation(self) -> Point | None:
        """Highest throughput whose p99 is within the budget (any p99 without a budget)."""
        within = [
            p
            for p in self.points
            if p.measurement.requests > 0
            and (self.latency_budget_ms is None or p.measurement.p99_ms <= self.latency_budget_ms)
        ]
        return max(within, key=lambda p: p.measurement.throughput_rps, default=None)

    def patch(self, best: Point) -> str:
        """The recommended config as a YAML patch of the ModelEndpoint, numbers beside it."""
        groups = self.model.instance_groups
        kind = groups[0].kind.value if groups else "KIND_GPU"
        entry: dict[str, Any] = {
            "name": self.model.name,
            "instanceGroups": [{"count": best.variant.instances, "kind": kind}],
        }
        if best.variant.queue_delay_us is not None:
            entry["dynamicBatching"] = {"maxQueueDelayMicroseconds": best.variant.queue_delay_us}
        if best.gpu_memory_mib is not None:
            # Measured on a GPU: sizing uses it instead of its estimate.
            entry["gpuMemoryMiB"] = max(1, math.ceil(best.gpu_memory_mib))
        m = best.measurement
        budget = (
            f"within p99 <= {self.latency_budget_ms:g} ms"
            if self.latency_budget_ms is not None
            else "no latency budget given"
        )
        header = (
            f"# measured on {self.server}: {m.throughput_rps:g} req/s, p50 {m.p50_ms:g} ms, "
            f"p95 {m.p95_ms:g} ms, p99 {m.p99_ms:g} ms at concurrency {m.concurrency} ({budget})\n"
        )
        body = yaml.safe_dump(
            {"spec": {"models": [entry]}}, sort_keys=False, default_flow_style=None
        )
        if self.model.dynamic_batching is None and best.variant.queue_delay_us is None:
            body += "# (no dynamicBatching: batching did not help within the budget)\n"
        return header + body

    def report(self) -> dict[str, Any]:
        best = self.recommendation()
        return {
            "model": self.model.name,
            "server": self.server,
            "method": "bounded grid (instances x queue delays x concurrency)",
            "grid": {
                "instances": list(self.grid.instances),
                "queueDelaysUs": list(self.grid.delays_us),
                "concurrency": list(self.grid.concurrency),
                "warmupSeconds": self.grid.warmup_s,
                "seconds": self.grid.duration_s,
            },
            "latencyBudgetMs": self.latency_budget_ms,
            "results": [p.row() for p in self.points],
            "recommendation": None if best is None else {**best.row(), "patch": self.patch(best)},
        }


_GPU_MEMORY = re.compile(r"^nv_gpu_memory_used_bytes\{[^}]*\}\s+([0-9.eE+]+)", re.M)


def gpu_memory_used_mib(metrics_url: str | None) -> float | None:
    """Triton's ``nv_gpu_memory_used_bytes`` summed over GPUs, in MiB; None without GPU metrics."""
    if metrics_url is None:
        return None
    try:
        with urllib.request.urlopen(metrics_url, timeout=5.0) as response:
            text = response.read().decode(errors="replace")
    except OSError:
        return None
    values = [float(v) for v in _GPU_MEMORY.findall(text)]
    return sum(values) / 1024**2 if values else None


def run_profile(
    model: ModelSpec,
    target: Target,
    grid: Grid,
    *,
    settings: Settings,
    latency_budget_ms: float | None = None,
    metrics_url: str | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> Profile:
    """Load each variant of ``model`` in turn, drive it at each concurrency, unload it."""
    inputs = generate_inputs(model)
    batching = model.max_batch_size > 0
    variants = grid.variants(batching)
    if not batching:
        progress(f"{model.name}: maxBatchSize is 0, so batching delays are skipped")
    profile = Profile(model, target.description, grid, latency_budget_ms=latency_budget_ms)
    total = len(variants) * len(grid.concurrency)
    progress(
        f"{model.name}: {len(variants)} variants x {len(grid.concurrency)} concurrencies "
        f"= {total} points, about {grid.seconds(batching):.0f} s of load"
    )
    done = 0
    with tempfile.TemporaryDirectory(prefix="mme-profile-") as scratch:
        for variant in variants:
            spec = variant_spec(model, variant, cpu=target.cpu_only)
            name = f"{model.name}-{variant.slug}"
            before = gpu_memory_used_mib(metrics_url)
            load_variant(target.url, name, package_files(spec, settings, Path(scratch)))
            after = gpu_memory_used_mib(metrics_url)
            used = None if before is None or after is None else round(after - before, 1)
            try:
                for concurrency in grid.concurrency:
                    done += 1
                    m = measure(
                        target.url,
                        name,
                        inputs,
                        concurrency=concurrency,
                        warmup_s=grid.warmup_s,
                        duration_s=grid.duration_s,
                    )
                    profile.points.append(Point(variant, m, used))
                    progress(
                        f"[{done}/{total}] {variant.label} concurrency={concurrency}: "
                        f"{m.throughput_rps:g} req/s, p50 {m.p50_ms:g} ms, p99 {m.p99_ms:g} ms"
                    )
            finally:
                unload_variant(target.url, name)
    if not profile.points:
        raise ProfileError(f"nothing was measured for {model.name}")
    return profile

"""Throughput and latency of one model under four Triton configs the operator renders.

Run: ``python benchmarks/serving.py [--json] [--seconds 4] [--rounds 2] [--concurrency 16]``.

One ModelEndpoint (below) declares the shipped ``mlp`` model four times: plain (1 instance,
no batching), dynamic batching, 2 instances, and both. The operator's renderer writes each
``config.pbtxt`` and its packager builds each archive; all four are loaded into one real
``tritonserver`` (the bundled CPU one from the ``triton`` extra, or ``--url`` of another,
e.g. a GPU server). A closed-loop load generator keeps ``--concurrency`` requests in
flight and measures throughput, p50, p95 and p99 after a warm-up. The configs run in
interleaved rounds (plain, batching, instances, both, plain, ...) and each config's rounds
are pooled, so a neighbour's CPU load hits all four alike and the ratios against plain
stay meaningful on a shared machine.

With ``--json`` it prints one object instead of the table:
``{"device": ..., "configs": {"plain": {"throughput_rps", "p50_ms", "p95_ms", "p99_ms"}, ...}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from mme_operator.api import validate_resource
from mme_operator.demo_models import demo_models_dir
from mme_operator.profile.grid import ProfileError
from mme_operator.profile.load import Measurement, combine, generate_inputs, measure
from mme_operator.profile.server import triton_target
from mme_operator.profile.variants import load_variant, on_cpu, package_files
from mme_operator.settings import Settings

CONFIGS = ("plain", "batching", "instances", "both")
MAX_BATCH = 16
QUEUE_DELAY_US = 2000


def endpoint(models_dir: Path) -> dict[str, Any]:
    """The ModelEndpoint whose four models are the four configs (same weights, same code)."""
    source = (models_dir / "mlp" / "model.py").absolute().as_uri()
    tensors = {
        "inputs": [{"name": "INPUT", "dataType": "TYPE_FP32", "dims": [256]}],
        "outputs": [{"name": "OUTPUT", "dataType": "TYPE_FP32", "dims": [256]}],
    }
    batching = {"maxQueueDelayMicroseconds": QUEUE_DELAY_US}
    shapes: dict[str, dict[str, Any]] = {
        "plain": {"instanceGroups": [{"count": 1, "kind": "KIND_GPU"}]},
        "batching": {
            "instanceGroups": [{"count": 1, "kind": "KIND_GPU"}],
            "dynamicBatching": batching,
        },
        "instances": {"instanceGroups": [{"count": 2, "kind": "KIND_GPU"}]},
        "both": {
            "instanceGroups": [{"count": 2, "kind": "KIND_GPU"}],
            "dynamicBatching": batching,
        },
    }
    return {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "serving-benchmark", "namespace": "default"},
        "spec": {
            "region": "us-east-1",
            "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
            "artifacts": {"bucket": "mme-benchmark"},
            "instanceType": "ml.g5.xlarge",
            "models": [
                {
                    "name": f"mlp-{config}",
                    "source": source,
                    "backend": "python",
                    "maxBatchSize": MAX_BATCH,
                    **tensors,
                    **shapes[config],
                }
                for config in CONFIGS
            ],
        },
    }


def device_description(target_description: str, cpu_only: bool) -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    where = "CPU" if cpu_only else "GPU (KIND_GPU)"
    return f"{target_description}, {where}, {cores} CPU cores, {platform.processor() or platform.machine()}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    resource, problems = validate_resource(endpoint(demo_models_dir()))
    if resource is None:
        raise ProfileError("; ".join(map(str, problems)))
    progress = None if args.json else (lambda line: print(f"  {line}", file=sys.stderr))
    with triton_target(url=args.url) as target, tempfile.TemporaryDirectory() as scratch:
        for spec in resource.spec.models:
            served = on_cpu(spec) if target.cpu_only else spec
            load_variant(target.url, spec.name, package_files(served, Settings(), Path(scratch)))
        inputs = generate_inputs(resource.spec.models[0])
        runs: dict[str, list[Measurement]] = {c: [] for c in CONFIGS}
        for _ in range(args.rounds):
            for config in CONFIGS:
                runs[config].append(
                    measure(
                        target.url,
                        f"mlp-{config}",
                        inputs,
                        concurrency=args.concurrency,
                        warmup_s=args.warmup,
                        duration_s=args.seconds,
                        progress=progress,
                    )
                )
        device = device_description(target.description, target.cpu_only)
    pooled = {c: combine(r) for c, r in runs.items()}
    return {
        "device": device,
        "concurrency": args.concurrency,
        "configs": {
            c: {
                "throughput_rps": m.throughput_rps,
                "p50_ms": m.p50_ms,
                "p95_ms": m.p95_ms,
                "p99_ms": m.p99_ms,
            }
            for c, m in pooled.items()
        },
    }


def table(result: dict[str, Any]) -> str:
    plain = result["configs"]["plain"]
    lines = [
        f"device: {result['device']}; concurrency {result['concurrency']}",
        f"{'config':<10} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        f" {'x plain':>8} {'p50 vs plain':>13}",
    ]
    for name, m in result["configs"].items():
        speedup = m["throughput_rps"] / plain["throughput_rps"]
        p50_change = (m["p50_ms"] - plain["p50_ms"]) / plain["p50_ms"] * 100
        lines.append(
            f"{name:<10} {m['throughput_rps']:>9.1f} {m['p50_ms']:>8.2f} {m['p95_ms']:>8.2f}"
            f" {m['p99_ms']:>8.2f} {speedup:>7.2f}x {p50_change:>+12.0f}%"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--url", help="a running tritonserver (explicit model control)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per round")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per round")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per config")
    args = parser.parse_args()
    try:
        result = run(args)
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

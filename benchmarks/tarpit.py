"""One namespace's hanging sources must not hold up another's: time to Ready, alone and beside
a tarpit.

Run: ``python benchmarks/tarpit.py [--json] [--read-timeout S] [--no-fair-share]``.

In one process (the integration tests' stand-ins): the local SageMaker and S3, the local
Kubernetes API (kmock) and the operator with ``max_concurrent_reconciles`` 8. A tarpit on
127.0.0.1 accepts connections and never answers (allowlisted with
``MME_HTTPS_ALLOWED_NETWORKS``, the operator's https sources may reach it). Measured:

1. alone: team-b's ModelEndpoint (one S3 model) -> seconds until Ready;
2. beside the tarpit: team-a's 8 ModelEndpoints, each with an https:// source on the tarpit,
   hold workers until their read deadline; then team-b's ModelEndpoint -> seconds until Ready.

The figure is the ratio (2)/(1); the issue's bar is 2x. ``--no-fair-share`` runs the same
without the namespace fair share (MME_NAMESPACE_FAIR_SHARE=false), for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from datetime import UTC, datetime
from typing import Any

from mme_operator.local.environment import LocalEnvironment
from mme_operator.local.tarpit import Tarpit

ROLE = "arn:aws:iam::123456789012:role/sagemaker-mme"
HOSTILE = 8


def manifest(namespace: str, name: str, bucket: str, source: str) -> dict[str, Any]:
    return {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "region": "us-east-1",
            "executionRoleArn": ROLE,
            "artifacts": {"bucket": bucket, "prefix": f"{namespace}/{name}/"},
            "instanceType": "ml.g5.xlarge",
            "instanceCount": 1,
            "models": [
                {
                    "name": "m",
                    "source": source,
                    "platform": "onnxruntime_onnx",
                    "maxBatchSize": 8,
                    "instanceGroups": [{"count": 1, "kind": "KIND_GPU"}],
                }
            ],
        },
    }


async def time_to_ready(env: LocalEnvironment, doc: dict[str, Any], timeout: float) -> float:
    started = time.monotonic()
    await env.apply(doc)
    await env.wait_ready(doc["metadata"]["name"], doc["metadata"]["namespace"], timeout=timeout)
    return time.monotonic() - started


async def measure(read_timeout: float, fair_share: bool) -> dict[str, Any]:
    tarpit = Tarpit()
    overrides = {
        "https_allowed_networks": "127.0.0.1/32",
        "https_timeout_seconds": read_timeout,
        "https_connect_timeout_seconds": read_timeout,
        "max_concurrent_reconciles": 8,
        "namespace_fair_share": fair_share,
        "retry_delay_seconds": 1.0,
    }
    try:
        async with LocalEnvironment(endpoint_delay=0.3, settings_overrides=overrides) as env:
            s3 = env.aws.client("s3")
            await asyncio.to_thread(s3.create_bucket, Bucket="tarpit-artifacts")
            await asyncio.to_thread(s3.create_bucket, Bucket="tarpit-sources")
            await asyncio.to_thread(
                s3.put_object, Bucket="tarpit-sources", Key="m.onnx", Body=b"\x08\x07 onnx"
            )
            await env.start_operator()
            good = "s3://tarpit-sources/m.onnx"
            limit = 20 * read_timeout + 60
            # A first endpoint warms the operator up (first connections, imports).
            await time_to_ready(env, manifest("team-c", "warm", "tarpit-artifacts", good), limit)
            alone = await time_to_ready(
                env, manifest("team-b", "alone", "tarpit-artifacts", good), limit
            )
            slow = f"https://127.0.0.1:{tarpit.port}/m.onnx"
            for i in range(HOSTILE):
                await env.apply(manifest("team-a", f"hang-{i}", "tarpit-artifacts", slow))
            await asyncio.sleep(1.0)  # let team-a's passes take the workers
            crowded = await time_to_ready(
                env, manifest("team-b", "crowded", "tarpit-artifacts", good), limit
            )
    finally:
        tarpit.close()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {platform.processor() or ''} cpus={_cpus()}".strip(),
        "workers": 8,
        "hanging_sources": HOSTILE,
        "read_timeout_seconds": read_timeout,
        "fair_share": fair_share,
        "alone_seconds": round(alone, 2),
        "beside_tarpit_seconds": round(crowded, 2),
        "ratio": round(crowded / alone, 2),
    }


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--read-timeout", type=float, default=10.0, help="MME_HTTPS_TIMEOUT_SECONDS"
    )
    parser.add_argument("--no-fair-share", action="store_true", help="without the fair share")
    args = parser.parse_args()
    found = asyncio.run(measure(args.read_timeout, not args.no_fair_share))
    if args.json:
        print(json.dumps(found, indent=2))
        return
    print(f"tarpit benchmark ({found['date']}, {found['machine']})")
    print(
        f"  workers {found['workers']}, team-a's hanging https sources {found['hanging_sources']}, "
        f"read timeout {found['read_timeout_seconds']:g}s, fair share {'on' if found['fair_share'] else 'off'}"
    )
    print(f"  team-b time to Ready alone:             {found['alone_seconds']:.2f} s")
    print(f"  team-b time to Ready beside the tarpit: {found['beside_tarpit_seconds']:.2f} s")
    print(f"  ratio: {found['ratio']:.2f}x (bar: 2x)")


if __name__ == "__main__":
    main()

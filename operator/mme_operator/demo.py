"""``mme-operator demo``: the whole product on this machine, with no cloud and no cluster.

It starts the local SageMaker/S3 and a local Kubernetes API, installs the CRD, applies
the demo ModelEndpoint (two tiny Python-backend models shipped in the package), runs the
operator until the resource is Ready, prints its status, and invokes one model by its
``TargetModel`` as a client would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any, TextIO

from mme_operator.demo_models import demo_manifest, demo_models_dir
from mme_operator.extras import install_command
from mme_operator.local.environment import LocalEnvironment
from mme_operator.local.triton import TritonServer, python_backend_problem

log = logging.getLogger("mme_operator.demo")


def _print_status(obj: dict[str, Any], out: TextIO) -> None:
    status = obj.get("status") or {}
    meta = obj["metadata"]
    print(f"\nModelEndpoint {meta['namespace']}/{meta['name']}", file=out)
    print(f"  phase:           {status.get('phase')}", file=out)
    print(
        f"  endpoint:        {status.get('endpointName')} ({status.get('endpointStatus')})",
        file=out,
    )
    print(f"  endpoint config: {status.get('endpointConfigName')}", file=out)
    for condition in status.get("conditions") or []:
        print(
            f"  condition {condition['type']:<16} {condition['status']:<6} {condition['reason']}: "
            f"{condition['message']}",
            file=out,
        )
    print("  models (send TargetModel to InvokeEndpoint):", file=out)
    for model in status.get("models") or []:
        print(
            f"    {model['name']:<12} {model.get('state'):<10} TargetModel={model.get('targetModel')}",
            file=out,
        )


def _inference_mode(out: TextIO) -> bool | None:
    """None: a real tritonserver answers; False: the echo fallback (said why, in one line)."""
    if not TritonServer.available():
        return False
    problem = python_backend_problem()
    if problem is not None:
        print(f"note: {problem}; the demo answers with the echo fallback", file=out)
        return False
    return None


async def _demo(out: TextIO, timeout: float) -> int:
    manifest = demo_manifest()
    bucket = manifest["spec"]["artifacts"]["bucket"]
    # One local team: the tenancy policy is open (its role is no platform-named one).
    overrides = {"file_roots": str(demo_models_dir()), "tenancy_open": True}
    triton = _inference_mode(out)
    started = time.monotonic()
    async with LocalEnvironment(
        endpoint_delay=2.0, settings_overrides=overrides, triton=triton
    ) as env:
        print(f"local AWS (SageMaker, S3):  {env.aws.endpoint_url}", file=out)
        print(f"local Kubernetes API:       {env.k8s_url}", file=out)
        await asyncio.to_thread(env.aws.client("s3").create_bucket, Bucket=bucket)
        await env.start_operator()
        name = manifest["metadata"]["name"]
        namespace = manifest["metadata"]["namespace"]
        print(
            f"applied ModelEndpoint {namespace}/{name} with {len(manifest['spec']['models'])} models",
            file=out,
        )
        await env.apply(manifest)
        obj = await env.wait_ready(name, namespace, timeout=timeout)
        _print_status(obj, out)
        model = next(m for m in obj["status"]["models"] if m["name"] == "add_sub")
        request = {
            "inputs": [
                {"name": "INPUT0", "shape": [4], "datatype": "FP32", "data": [1, 2, 3, 4]},
                {"name": "INPUT1", "shape": [4], "datatype": "FP32", "data": [10, 20, 30, 40]},
            ]
        }
        runtime = env.aws.client("sagemaker-runtime")
        response = await asyncio.to_thread(
            runtime.invoke_endpoint,
            EndpointName=obj["status"]["endpointName"],
            TargetModel=model["targetModel"],
            ContentType="application/json",
            Body=json.dumps(request).encode(),
        )
        answer = json.loads(response["Body"].read())
        if env.aws.triton_running:
            source = "answered by a real tritonserver (CPU) running the model"
        else:
            source = (
                "answered by the echo fallback: a description of the loaded model, no "
                f"inference (for real Triton: {install_command('triton')})"
            )
        print(f"\nInvokeEndpoint TargetModel={model['targetModel']} ({source}):", file=out)
        print(f"  {json.dumps(answer)[:600]}", file=out)
        print(f"\nReady in {time.monotonic() - started:.1f}s.", file=out)
    return 0


def run_demo(out: TextIO = sys.stdout, timeout: float = 50.0) -> int:
    """Run the demo; 0 when the endpoint became Ready and answered, 1 otherwise."""
    try:
        return asyncio.run(_demo(out, timeout))
    except TimeoutError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1

"""What the load check costs: InvokeEndpoint calls and seconds per model, at N models.

Run: ``python benchmarks/load_check.py [--models 1 100] [--triton] [--json]``.

One ModelEndpoint of N Python-backend models is reconciled to Ready against the local
SageMaker (moto S3 + the project's SageMaker, over HTTP), once with the load check on
(``MME_LOAD_CHECK=true``, the default) and once with it off; the passes are the operator's
own :func:`mme_operator.reconcile.reconcile`, with no Kubernetes in between. Reported per
setting: InvokeEndpoint calls of the pass that reached Ready, its seconds against those of
the next pass (the same reads, nothing to load: the difference is the load check), and the
AWS calls of a drift check (the steady state). ``--triton`` has the local
SageMaker load every model into a real tritonserver (CPU), as MME does; without it the
local SageMaker answers from the archive alone, which leaves the operator's own cost.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from typing import Any

import boto3
from mme_operator.local import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, LocalAWS
from mme_operator.reconcile import check_drift, reconcile
from mme_operator.sagemaker.clients import make_clients
from mme_operator.settings import Settings

MODEL_PY = """\
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            out = pb_utils.Tensor("OUTPUT0", x.astype(np.float32))
            responses.append(pb_utils.InferenceResponse([out]))
        return responses
"""


def body(models: int, load_check: bool, tag: str = "") -> dict[str, Any]:
    name = f"bench{tag}-{models}-{'on' if load_check else 'off'}"
    return {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "generation": 1},
        "spec": {
            "region": "us-east-1",
            "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
            "artifacts": {"bucket": "bench-artifacts", "prefix": f"{name}/"},
            "instanceType": "ml.g5.xlarge",
            "models": [
                {
                    "name": f"m{i:03d}",
                    "source": f"s3://bench-src/m{i:03d}/model.py",
                    "backend": "python",
                    "maxBatchSize": 8,
                    "inputs": [{"name": "INPUT0", "dataType": "TYPE_FP32", "dims": [-1]}],
                    "outputs": [{"name": "OUTPUT0", "dataType": "TYPE_FP32", "dims": [-1]}],
                    "instanceGroups": [{"count": 1, "kind": "KIND_CPU"}],
                }
                for i in range(models)
            ],
        },
    }


def measure(local: LocalAWS, models: int, load_check: bool, tag: str = "") -> dict[str, Any]:
    settings = Settings(
        aws_endpoint_url=local.endpoint_url,
        retry_delay_seconds=0.1,
        poll_interval_seconds=0.1,
        load_check=load_check,
    )
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_ACCESS_KEY, aws_secret_access_key=DUMMY_SECRET_KEY
    )
    clients = make_clients("us-east-1", settings, session)
    doc = body(models, load_check, tag)
    # Passes until the endpoint is InService and only the last pass remains.
    last_seconds = 0.0
    for _ in range(600):
        local.reset_calls()
        started = time.monotonic()
        outcome = reconcile(doc, clients, settings)
        last_seconds = time.monotonic() - started
        doc["status"] = outcome.status.model_dump(by_alias=True, mode="json", exclude_none=True)
        if outcome.status.phase == "Ready":
            break
        if outcome.status.phase == "Failed":
            raise RuntimeError(f"{doc['metadata']['name']} failed: {outcome.status.message}")
        time.sleep(0.05)
    else:
        raise RuntimeError(f"{doc['metadata']['name']} not Ready")
    ready_calls = dict(local.calls)
    local.reset_calls()
    started = time.monotonic()
    reconcile(doc, clients, settings)  # a pass with nothing new to upload or load
    again_seconds = time.monotonic() - started
    local.reset_calls()
    drift = check_drift(doc, clients)  # what the steady state does each drift interval
    steady = dict(local.calls)
    return {
        "models": models,
        "load_check": load_check,
        "ready_pass_seconds": round(last_seconds, 3),
        "ready_pass_invocations": ready_calls.get("InvokeEndpoint", 0),
        "next_pass_seconds": round(again_seconds, 3),
        "load_check_seconds_per_model": round((last_seconds - again_seconds) / models, 4),
        "drift_check_aws_calls": sum(steady.values()),
        "drift_check_invocations": steady.get("InvokeEndpoint", 0),
        "drift_found": drift,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--triton", action="store_true", help="load into a real tritonserver")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with LocalAWS(endpoint_delay=0.05, triton=args.triton) as local:
        s3 = local.client("s3")
        s3.create_bucket(Bucket="bench-artifacts")
        s3.create_bucket(Bucket="bench-src")
        for i in range(max(args.models)):
            s3.put_object(Bucket="bench-src", Key=f"m{i:03d}/model.py", Body=MODEL_PY.encode())
        measure(
            local, 1, load_check=True, tag="-warm"
        )  # warms the clients and servers up; not reported
        for models in args.models:
            rows.append(measure(local, models, load_check=False))
            rows.append(measure(local, models, load_check=True))
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.node()}",
        "tritonserver": args.triton,
        "results": rows,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['date']} on {report['machine']}; real tritonserver: {args.triton}")
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()

"""The fault suite's figures: runs, kills, faults injected, lost / orphaned / duplicated, crashes.

Every part runs in its own process, as in production: a real kube-apiserver (envtest,
scripts/envtest.sh), the local SageMaker + S3 (``mme-operator local-aws``) and the operator
(``mme-operator run``). Each scenario drives ModelEndpoints through create, update and
delete under one kind of trouble and ends with an inventory of Kubernetes, SageMaker and S3.

    python benchmarks/faults.py                  # every scenario, a table
    python benchmarks/faults.py --json           # one JSON object
    python benchmarks/faults.py --heavy-throttle # also: 10 endpoints at 70% throttling

``--heavy-throttle`` measures how long 10 ModelEndpoints take to be Ready with 70% of all
SageMaker calls throttled (docs/benchmarks.md quotes it).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "operator")]

from tests.cluster import ControlPlane, build_envtest, envtest_binaries  # noqa: E402
from tests.faults import scenarios  # noqa: E402
from tests.faults.harness import (  # noqa: E402
    Cluster,
    LocalAwsProcess,
    OperatorProcess,
    World,
    unique,
)


def heavy_throttle(world: World, count: int = 10, percent: float = 70) -> scenarios.Result:
    """``count`` endpoints created at once with ``percent`` % of SageMaker calls throttled."""

    def body(result: scenarios.Result) -> list[str]:
        names = [f"heavy-{i}" for i in range(count)]
        world.aws.fault(action="throttle", percent=percent)
        started = time.monotonic()
        for name in names:
            world.cluster.create(world.manifest(name, [world.python_model(f"{name}-a")]))
        world.wait_converged(names, timeout=900)
        result.figures["seconds_to_all_ready"] = round(time.monotonic() - started, 1)
        world.aws.clear_faults()
        for name in names:
            world.cluster.delete(name)
        world.wait_gone(names, 300)
        return names

    return scenarios._run(f"throttle-{percent:g}%-x{count}", world, body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--heavy-throttle", action="store_true", help="also 10 endpoints at 70%% throttling"
    )
    parser.add_argument(
        "--retry-mode",
        choices=("adaptive", "standard"),
        help="the operator's botocore retry mode (MME_AWS_RETRY_MODE; default standard)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[*sorted(scenarios.SCENARIOS), "heavy-throttle"],
        help="run only these",
    )
    args = parser.parse_args(argv)
    # SIGTERM (timeout, Ctrl-C's cousin) still stops the processes started below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if envtest_binaries() is None:
        build_envtest()

    results: list[scenarios.Result] = []
    with tempfile.TemporaryDirectory(prefix="mme-faults-") as scratch:
        root = Path(scratch)
        plane = ControlPlane.start(root / "envtest")
        aws = LocalAwsProcess(root, endpoint_delay=0.5)
        try:
            plane.install_crds()
            chosen = {
                k: v for k, v in scenarios.SCENARIOS.items() if not args.only or k in args.only
            }
            runs: list[tuple[str, Any]] = list(chosen.items())
            if args.heavy_throttle or "heavy-throttle" in (args.only or []):
                runs.append(("heavy-throttle", heavy_throttle))
            for key, scenario in runs:
                workdir = root / key
                workdir.mkdir()
                aws.clear_faults()
                overrides = {"MME_AWS_RETRY_MODE": args.retry_mode} if args.retry_mode else {}
                operator = OperatorProcess(plane.kubeconfig, aws.url, workdir, overrides)
                world = World(
                    Cluster(plane, unique("faults")),
                    aws,
                    operator,
                    unique("art"),
                    unique("src"),
                )
                operator.start()
                try:
                    results.append(scenario(world))
                finally:
                    operator.stop()
                if not args.json:
                    print(json.dumps(results[-1].summary()), file=sys.stderr)
        finally:
            aws.stop()
            plane.stop()

    rows = [r.summary() for r in results]
    totals = {
        "runs": len(rows),
        "resources": sum(r["resources"] for r in rows),
        "kills": sum(r["kills"] for r in rows),
        "faults_injected": sum(r["faults_injected"] for r in rows),
        "lost": sum(r["lost"] for r in rows),
        "orphaned": sum(r["orphaned"] for r in rows),
        "duplicated": sum(r["duplicated"] for r in rows),
        "stuck_finalizers": sum(r["stuck_finalizers"] for r in rows),
        "crashes": sum(r["crashes"] for r in rows),
    }
    if args.json:
        print(json.dumps({"totals": totals, "scenarios": rows}, indent=2))
    else:
        columns = ["scenario", "resources", "kills", "faults_injected", "lost", "orphaned"]
        columns += ["duplicated", "stuck_finalizers", "crashes", "seconds"]
        print(" | ".join(columns))
        for row in rows:
            print(" | ".join(str(row.get(c, "")) for c in columns))
        print("totals: " + ", ".join(f"{k}={v}" for k, v in totals.items()))
        for row in rows:
            if "seconds_to_all_ready" in row:
                print(f"{row['scenario']}: all Ready after {row['seconds_to_all_ready']} s")
    clean = all(r.clean for r in results)
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The fault scenarios: each drives ModelEndpoints through create, update and delete under one
kind of trouble, then takes the inventory. Shared by the suite (tests/faults) and
``benchmarks/faults.py``, which prints their figures.
"""

from __future__ import annotations

import io
import random
import tarfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mme_operator.api import validate_resource

from tests.faults.harness import Inventory, World, condition, inventory, settle, wait_until

CREATES = ["CreateModel", "CreateEndpointConfig", "CreateEndpoint"]
DELETES = ["DeleteEndpoint", "DeleteEndpointConfig", "DeleteModel"]


@dataclass
class Result:
    """What one scenario did and how it ended."""

    name: str
    resources: int = 0
    kills: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    inventory: Inventory = field(default_factory=Inventory)
    seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return self.inventory.clean and not self.crashes

    def summary(self) -> dict[str, Any]:
        inv = self.inventory
        return {
            "scenario": self.name,
            "resources": self.resources,
            "kills": self.kills,
            "faults_injected": sum(self.faults.values()),
            "lost": len(inv.lost),
            "orphaned": len(inv.orphaned),
            "duplicated": len(inv.duplicated),
            "not_converged": len(inv.not_converged),
            "stuck_finalizers": len(inv.stuck_finalizers),
            "foreign_touched": len(inv.foreign_touched),
            "crashes": len(self.crashes),
            "seconds": round(self.seconds, 1),
            **self.figures,
            **({"problems": inv.problems()} if inv.problems() else {}),
        }


def _run(name: str, world: World, body: Callable[[Result], list[str]]) -> Result:
    """Run ``body`` (it returns the CR names to take stock of) and take the inventory."""
    result = Result(name)
    before = Counter(world.aws.injected())
    started = time.monotonic()
    names = body(result)
    world.aws.clear_faults()
    result.inventory = settle(world, names, timeout=30)
    result.seconds = time.monotonic() - started
    result.faults = Counter(world.aws.injected()) - before
    result.kills = world.operator.kills
    result.crashes = world.operator.tracebacks() + world.operator.crashes
    result.resources = len(names)
    return result


def _lifecycle(
    world: World, names: list[str], timeout: float, arm: Callable[[], None] = lambda: None
) -> None:
    """Create ``names``, change each (a model and the instance count), delete them.

    The model sources are uploaded first; ``arm`` then sets the faults.
    """
    first = {name: [world.python_model(f"{name}-a")] for name in names}
    second = {
        name: [world.python_model(f"{name}-a", version=2), world.python_model(f"{name}-b")]
        for name in names
    }
    arm()
    for name in names:
        world.cluster.create(world.manifest(name, first[name]))
    world.wait_converged(names, timeout)
    for name in names:
        world.cluster.patch_spec(name, {"models": second[name], "instanceCount": 2})
    world.wait_converged(names, timeout)
    for name in names:
        world.cluster.delete(name)
    world.wait_gone(names, timeout)


def throttling(world: World, percent: float = 30, count: int = 3) -> Result:
    """``percent`` % of SageMaker calls throttled through a whole create / update / delete."""

    def body(result: Result) -> list[str]:
        names = [f"throttled-{i}" for i in range(count)]
        _lifecycle(world, names, 120, lambda: world.aws.fault(action="throttle", percent=percent))
        return names

    return _run(f"throttle-{percent:g}%", world, body)


def storm(world: World, seconds: float = 6.0) -> Result:
    """Every SageMaker call and every S3 write answered 500/503 for ``seconds``, then calm."""

    def body(result: Result) -> list[str]:
        names = ["stormy-0", "stormy-1"]
        for name in names:
            world.cluster.create(world.manifest(name, [world.python_model(f"{name}-a")]))
        time.sleep(0.5)
        world.aws.fault(action="server_error", code="InternalFailure", percent=50)
        world.aws.fault(action="server_error", code="ServiceUnavailable", percent=100)
        world.aws.fault(
            action="server_error",
            code="InternalFailure",
            operations=["PutObject", "DeleteObject", "ListObjectsV2"],
            service="s3",
            percent=50,
        )
        time.sleep(seconds)
        world.aws.clear_faults()
        world.wait_converged(names, 60)
        for name in names:
            world.cluster.delete(name)
        world.wait_gone(names, 60)
        return names

    return _run(f"5xx-storm-{seconds:g}s", world, body)


def lost_answers(world: World) -> Result:
    """Calls that took effect but whose answer was a 500 or never came (read timeout)."""

    def arm() -> None:
        aws = world.aws
        aws.fault(action="server_error", operations=CREATES, count=4, after=True)
        aws.fault(action="timeout_after", seconds=3, operations=["CreateEndpoint"], count=1)
        aws.fault(
            action="server_error", operations=["PutObject"], count=3, after=True, service="s3"
        )
        aws.fault(action="server_error", operations=["UpdateEndpoint"], count=1, after=True)
        aws.fault(action="server_error", operations=DELETES, count=4, after=True)
        aws.fault(
            action="server_error", operations=["DeleteObject"], count=2, after=True, service="s3"
        )

    def body(result: Result) -> list[str]:
        names = ["unlucky-0", "unlucky-1"]
        _lifecycle(world, names, 90, arm)
        return names

    return _run("faults-after-side-effects", world, body)


def kills(world: World, per_phase: int = 4, seed: int = 11) -> Result:
    """SIGKILL the operator ``per_phase`` times during each of create, update and delete."""
    rng = random.Random(seed)

    def kill_during(phase_done: Callable[[], bool]) -> None:
        for _ in range(per_phase):
            time.sleep(rng.uniform(0.3, 2.5))
            world.operator.restart()
        # The last restart must carry the phase through on its own.
        del phase_done

    def body(result: Result) -> list[str]:
        names = ["killed-0", "killed-1"]
        for name in names:
            world.cluster.create(world.manifest(name, [world.python_model(f"{name}-a")]))
        kill_during(lambda: True)
        world.wait_converged(names, 90)
        for name in names:
            models = [world.python_model(f"{name}-a", version=2), world.python_model(f"{name}-b")]
            world.cluster.patch_spec(name, {"models": models, "instanceCount": 2})
        kill_during(lambda: True)
        world.wait_converged(names, 90)
        for name in names:
            world.cluster.delete(name)
        kill_during(lambda: True)
        world.wait_gone(names, 90)
        return names

    return _run(f"sigkill-x{3 * per_phase}", world, body)


def foreign(world: World) -> Result:
    """An endpoint under our name that someone else created, and a stranger's archive in our
    prefix: reported, never adopted without the annotation, never changed or deleted."""

    def body(result: Result) -> list[str]:
        name = "squatted"
        doc = world.manifest(name, [world.python_model(f"{name}-a")])
        parsed, problems = validate_resource(doc)
        assert parsed is not None, problems
        endpoint = parsed.endpoint_name
        image = "785573368785.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3"
        world.sm.create_model(
            ModelName=f"{endpoint}-theirs",
            ExecutionRoleArn=doc["spec"]["executionRoleArn"],
            PrimaryContainer={
                "Image": image,
                "ModelDataUrl": f"s3://{world.bucket}/theirs/",
                "Mode": "MultiModel",
            },
        )
        world.sm.create_endpoint_config(
            EndpointConfigName=f"{endpoint}-theirs",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"{endpoint}-theirs",
                    "InstanceType": "ml.g5.xlarge",
                    "InitialInstanceCount": 1,
                }
            ],
        )
        world.sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-theirs")
        stranger = f"mme/{name}/stranger.tar.gz"
        world.s3.put_object(Bucket=world.bucket, Key=stranger, Body=b"not ours")

        world.cluster.create(doc)
        wait_until(
            lambda: condition(world.cluster.get(name), "Ready").get("reason") == "NotOwned",
            "Ready=False NotOwned",
            timeout=60,
        )
        world.cluster.delete(name)
        world.wait_gone([name], 60)
        result.figures["foreign_kept"] = 4
        theirs = {
            f"endpoint/{endpoint}": "",
            f"config/{endpoint}-theirs": "",
            f"model/{endpoint}-theirs": "",
        }
        found = inventory(world, [name], foreign=theirs, foreign_keys={stranger})
        result.inventory = found
        # Clean up the stranger's things so later scenarios start from an empty account.
        world.sm.delete_endpoint(EndpointName=endpoint)
        wait_until(
            lambda: not world.sm.list_endpoints(NameContains=endpoint)["Endpoints"],
            "foreign endpoint deleted",
            timeout=30,
        )
        world.sm.delete_endpoint_config(EndpointConfigName=f"{endpoint}-theirs")
        world.sm.delete_model(ModelName=f"{endpoint}-theirs")
        world.s3.delete_object(Bucket=world.bucket, Key=stranger)
        return [name]

    return _run("foreign-objects", world, body)


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def unsafe_archives() -> dict[str, bytes]:
    """Model sources no one should unpack: traversal, absolute paths, links out, devices."""

    def file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
        return tarfile.TarInfo(name), data

    def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        return info, None

    device = tarfile.TarInfo("1/dev")
    device.type = tarfile.CHRTYPE
    return {
        "traversal": _tar([file("1/model.py"), file("../../escape.py")]),
        "absolute": _tar([file("/etc/cron.d/evil")]),
        "symlink-out": _tar([file("1/model.py"), link("1/weights", "../../../../etc/passwd")]),
        "symlink-chain": _tar(
            [
                link("1/a/b/s", "../../../.."),
                link("1/model.py", "a/b/s/../../etc/passwd"),
            ]
        ),
        "hardlink-out": _tar([link("1/model.py", "../../etc/shadow", tarfile.LNKTYPE)]),
        "device": _tar([file("1/model.py"), (device, None)]),
    }


def unsafe(world: World) -> Result:
    """Each unsafe archive fails its own model with a condition; nothing of it is uploaded."""

    def body(result: Result) -> list[str]:
        bad_models = []
        for kind, data in unsafe_archives().items():
            key = f"unsafe/{kind}.tar.gz"
            world.s3.put_object(Bucket=world.sources, Key=key, Body=data)
            bad_models.append(
                {
                    "name": f"bad-{kind}",
                    "source": f"s3://{world.sources}/{key}",
                    "backend": "python",
                    "maxBatchSize": 4,
                }
            )
        name = "unsafe"
        world.cluster.create(world.manifest(name, [world.python_model("good"), *bad_models]))

        def settled() -> dict[str, Any] | None:
            obj = world.cluster.get(name)
            models = ((obj or {}).get("status") or {}).get("models") or []
            failed = {m["name"] for m in models if m.get("state") == "Failed"}
            return obj if failed == {m["name"] for m in bad_models} else None

        obj = wait_until(settled, "every unsafe model Failed", timeout=60)
        assert condition(obj, "ArtifactsSynced").get("reason") == "SourceError"
        uploaded = {k.rsplit("/", 1)[-1] for k in world.archive_keys()}
        leaked = [m["name"] for m in bad_models if any(m["name"] in k for k in uploaded)]
        result.figures["unsafe_refused"] = len(bad_models) - len(leaked)
        if leaked:
            result.inventory.lost.append(f"unsafe archives uploaded: {leaked}")
        world.cluster.delete(name)
        world.wait_gone([name], 60)
        return [name]

    return _run("unsafe-archives", world, body)


SCENARIOS: dict[str, Callable[[World], Result]] = {
    "throttle": throttling,
    "storm": storm,
    "lost-answers": lost_answers,
    "kills": kills,
    "foreign": foreign,
    "unsafe": unsafe,
}

"""Models (kind Model) from several teams' namespaces on one shared ModelEndpoint, on the real
kube-apiserver with the operator on the chart's RBAC. Each team is a ServiceAccount with RBAC
on Models in its own namespace only; the platform team owns the endpoint."""

from __future__ import annotations

import asyncio
import copy
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster import ControlPlane
from tests.integration.conftest import (
    World,
    clean_namespace,
    condition,
    eventually,
    kube_connection,
)
from tests.integration.test_tenants import tenant_rbac

pytestmark = pytest.mark.envtest

PLATFORM = "ml-platform"
TEAMS = ("team-a", "team-b", "team-c")
ADMITTED = {"mme-operator.io/models": "true"}


@dataclass
class Team:
    namespace: str
    token: str
    plane: ControlPlane

    async def apply(self, *docs: dict[str, Any]) -> None:
        copies = [copy.deepcopy(doc) for doc in docs]
        for doc in copies:
            doc["metadata"]["namespace"] = self.namespace
        text = yaml.safe_dump_all(copies)
        await asyncio.to_thread(
            self.plane.kubectl, "apply", "-f", "-", stdin=text, token=self.token
        )

    async def delete(self, name: str) -> None:
        await asyncio.to_thread(
            self.plane.kubectl,
            "delete",
            "models",
            name,
            "-n",
            self.namespace,
            "--wait=false",
            token=self.token,
        )

    async def get(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The Model as this team reads it; None when absent or refused."""
        done = await asyncio.to_thread(
            self.plane.kubectl,
            "get",
            "models",
            name,
            "-n",
            namespace or self.namespace,
            "-o",
            "json",
            check=False,
            token=self.token,
        )
        if done.returncode != 0:
            return None
        found: dict[str, Any] = yaml.safe_load(done.stdout)
        return found

    async def wait(
        self, name: str, holds: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        found = None
        while time.monotonic() < deadline:
            found = await self.get(name)
            if found is not None and holds(found):
                return found
            await asyncio.sleep(0.3)
        raise TimeoutError(
            f"Model {self.namespace}/{name}: {what} not reached; {found and found.get('status')}"
        )

    async def ready(self, name: str, timeout: float = 60) -> dict[str, Any]:
        return await self.wait(
            name, lambda m: condition(m, "Ready").get("status") == "True", "Ready", timeout
        )


def reason(obj: dict[str, Any], type_: str) -> tuple[str, str]:
    found = condition(obj, type_)
    return found.get("status", ""), found.get("reason", "")


@pytest.fixture
async def teams(world: World, request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Team]]:
    real = kube_connection(request)
    if real is None:
        pytest.skip("needs the real kube-apiserver (tenant RBAC)")
    plane = real[1]
    found = {}
    await asyncio.to_thread(plane.ensure_namespace, PLATFORM)
    for namespace in TEAMS:
        await asyncio.to_thread(plane.ensure_namespace, namespace)
        labels = [f"{k}={v}" for k, v in ADMITTED.items()] if namespace != "team-c" else []
        if labels:
            await asyncio.to_thread(
                plane.kubectl, "label", "namespace", namespace, *labels, "--overwrite"
            )
        await asyncio.to_thread(plane.apply, tenant_rbac(namespace, "models"))
        token = await asyncio.to_thread(plane.token, "tenant", namespace)
        found[namespace] = Team(namespace, token, plane)
    try:
        yield found
    finally:
        for namespace in (*TEAMS, PLATFORM):
            await asyncio.to_thread(
                plane.kubectl,
                "delete",
                "models",
                "--all",
                "-n",
                namespace,
                "--wait=true",
                check=False,
                timeout=600,  # a thousand Models take a while
            )
            await asyncio.to_thread(clean_namespace, plane, namespace)


def shared_endpoint(world: World, **spec: Any) -> dict[str, Any]:
    doc = world.manifest(
        "shared", [], attach={"from": "Selector", "selector": {"matchLabels": ADMITTED}}, **spec
    )
    doc["metadata"]["namespace"] = PLATFORM
    return doc


def model(world: World, object_name: str, source: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "Model",
        "metadata": {"name": object_name},
        "spec": {
            "endpointRef": {"name": "shared", "namespace": PLATFORM},
            "source": source,
            "platform": "onnxruntime_onnx",
            "maxBatchSize": 16,
            "instanceGroups": [{"count": 1, "kind": "KIND_GPU"}],
            **spec,
        },
    }


async def onnx(world: World, key: str) -> str:
    return await world.put_source(key, b"\x08\x07\x12\x04fake-onnx-model")


async def invoke(world: World, endpoint: str, target: str) -> int:
    runtime = world.env.aws.client("sagemaker-runtime")
    answer = await world.aws(
        runtime.invoke_endpoint,
        EndpointName=endpoint,
        TargetModel=target,
        ContentType="application/json",
        Body=b"{}",
    )
    return int(answer["ResponseMetadata"]["HTTPStatusCode"])


async def endpoint_and_model(world: World, team: Team, name: str, **endpoint: Any) -> None:
    """The shared endpoint and ``team``'s Model ``name`` (an ONNX source of its own)."""
    await world.apply(shared_endpoint(world, **endpoint))
    source = await onnx(world, f"{team.namespace}/{name}/model.onnx")
    await team.apply(model(world, name, source))


async def bert_and_gpt(world: World, teams: dict[str, Team], **spec: Any) -> list[dict[str, Any]]:
    """The shared endpoint with team-a's Model bert and team-b's gpt, both Ready."""
    await world.apply(shared_endpoint(world, **spec))
    a, b = teams["team-a"], teams["team-b"]
    await a.apply(model(world, "bert", await onnx(world, "a/bert/model.onnx")))
    await b.apply(model(world, "gpt", await onnx(world, "b/gpt/model.onnx")))
    return [await a.ready("bert"), await b.ready("gpt")]


async def test_two_namespaces_models_are_served_by_one_endpoint(
    world: World, teams: dict[str, Team]
) -> None:
    await world.apply(shared_endpoint(world))
    a, b = teams["team-a"], teams["team-b"]
    # The same name in two namespaces: no collision, each is <namespace>/<name>.
    await a.apply(model(world, "bert", await onnx(world, "a/bert/model.onnx")))
    await b.apply(model(world, "bert", await onnx(world, "b/bert/model.onnx")))
    mine, theirs = await a.ready("bert"), await b.ready("bert")

    endpoint = mine["status"]["endpointName"]
    assert theirs["status"]["endpointName"] == endpoint
    assert mine["status"]["targetModel"].startswith("team-a/bert-")
    assert theirs["status"]["targetModel"].startswith("team-b/bert-")
    assert reason(mine, "Accepted") == ("True", "Attached")
    assert reason(mine, "Ready") == ("True", "ModelAvailable")
    assert mine["status"]["state"] == "Available"
    keys = await world.keys("mme/shared/")
    assert [k.rsplit("-", 1)[0] for k in keys] == [
        "mme/shared/team-a/bert",
        "mme/shared/team-b/bert",
    ]
    assert world.env.aws.calls_about(endpoint)["InvokeEndpoint"] == 2  # a load check each
    for found in (mine, theirs):
        assert await invoke(world, endpoint, found["status"]["targetModel"]) == 200

    # Each team reads its own Model's mapping, and no other team's.
    assert await a.get("bert", "team-b") is None
    shared = await world.env.wait_for(
        "shared",
        lambda obj: (
            obj is not None and (obj.get("status") or {}).get("attached", {}).get("ready") == 2
        ),
        namespace=PLATFORM,
        timeout=30,
        what="attached.ready == 2",
    )
    assert shared is not None
    assert shared["status"]["attached"] == {"accepted": 2, "ready": 2, "failed": 0, "refused": 0}
    assert "models" not in shared["status"]  # counts, never a list of the Models
    assert reason(shared, "Ready")[0] == "True"
    assert "; 2 attached Models" in condition(shared, "Ready")["message"]


async def test_refused_and_broken_models_change_nothing_else(
    world: World, teams: dict[str, Team]
) -> None:
    await world.apply(shared_endpoint(world))
    a, c = teams["team-a"], teams["team-c"]
    await a.apply(model(world, "bert", await onnx(world, "a/bert/model.onnx")))
    served = await a.ready("bert")
    endpoint = served["status"]["endpointName"]
    gpt, copy_of_bert = (
        await onnx(world, "c/gpt/model.onnx"),
        await onnx(world, "a/copy/model.onnx"),
    )
    before = await world.keys("mme/shared/")
    calls = dict(world.calls)

    # team-c's namespace is not labelled: the endpoint does not admit it.
    await c.apply(model(world, "gpt", gpt))
    refused = await c.wait("gpt", lambda m: reason(m, "Accepted")[0] == "False", "Accepted=False")
    assert reason(refused, "Accepted") == ("False", "NotAllowedByEndpoint")
    assert "targetModel" not in refused["status"] and "endpointName" not in refused["status"]

    # A second Model of team-a served under the same name: the older one keeps it.
    await asyncio.sleep(1.1)  # creationTimestamp has second precision
    await a.apply(model(world, "bert-copy", copy_of_bert, name="bert"))
    conflict = await a.wait(
        "bert-copy", lambda m: reason(m, "Accepted")[0] == "False", "Accepted=False"
    )
    assert reason(conflict, "Accepted") == ("False", "NameConflict")
    assert "team-a/bert" in condition(conflict, "Accepted")["message"]
    assert await world.keys("mme/shared/") == before
    assert world.calls["PutObject"] == calls.get("PutObject", 0)
    assert world.calls.get("CreateMultipartUpload", 0) == calls.get("CreateMultipartUpload", 0)

    # A broken source fails that Model only.
    await a.apply(model(world, "ghost", f"s3://{world.sources}/missing/model.onnx"))
    ghost = await a.wait(
        "ghost",
        lambda m: (
            reason(m, "Ready")[0] == "False" and (m.get("status") or {}).get("state") == "Failed"
        ),
        "Failed",
    )
    assert reason(ghost, "Ready") == ("False", "SourceError")
    assert reason(ghost, "Accepted") == ("True", "Attached")
    still = await a.get("bert")
    assert still is not None and reason(still, "Ready") == ("True", "ModelAvailable")
    assert still["status"]["targetModel"] == served["status"]["targetModel"]
    assert await invoke(world, endpoint, served["status"]["targetModel"]) == 200
    shared = await world.env.wait_for(
        "shared",
        lambda obj: (
            obj is not None and (obj.get("status") or {}).get("attached", {}).get("failed") == 1
        ),
        namespace=PLATFORM,
        timeout=30,
        what="attached.failed == 1",
    )
    assert shared is not None
    assert shared["status"]["attached"] == {"accepted": 2, "ready": 1, "failed": 1, "refused": 2}
    assert reason(shared, "Ready") == ("True", "Reconciled")


@pytest.mark.settings(drift_check_interval_seconds=1)
async def test_deleting_a_model_leaves_the_others_and_its_archive_goes_after_the_grace_period(
    world: World, teams: dict[str, Team]
) -> None:
    grace = 4
    artifacts = {"bucket": world.bucket, "prefix": "mme/shared/", "gracePeriodSeconds": grace}
    kept, gone = await bert_and_gpt(world, teams, artifacts=artifacts)
    b = teams["team-b"]
    gone_key = f"mme/shared/{gone['status']['targetModel']}"
    assert gone_key in await world.keys("mme/shared/")

    await b.delete("gpt")
    deleted_at = time.monotonic()
    deadline = deleted_at + grace + 30
    while gone_key in await world.keys("mme/shared/"):
        assert time.monotonic() < deadline, "the deleted Model's archive was never removed"
        await asyncio.sleep(0.3)
    assert time.monotonic() - deleted_at >= grace - 1, "removed before its grace period ended"

    after = await teams["team-a"].get("bert")
    assert after is not None and reason(after, "Ready") == ("True", "ModelAvailable")
    assert after["status"]["targetModel"] == kept["status"]["targetModel"]
    assert f"mme/shared/{kept['status']['targetModel']}" in await world.keys("mme/shared/")
    assert await invoke(world, kept["status"]["endpointName"], kept["status"]["targetModel"]) == 200


@pytest.mark.settings(drift_check_interval_seconds=1)
async def test_an_attached_models_archive_deleted_by_hand_is_uploaded_again(
    world: World, teams: dict[str, Team]
) -> None:
    # The endpoint has no inline model: only its Models' statuses say which archives it
    # serves, and the drift check must look for those (one listing of the whole prefix).
    bert, gpt = await bert_and_gpt(world, teams)
    lost = f"mme/shared/{gpt['status']['targetModel']}"
    kept = f"mme/shared/{bert['status']['targetModel']}"
    await world.aws(world.s3.delete_object, Bucket=world.bucket, Key=lost)

    async def back() -> bool:
        return lost in await world.keys("mme/shared/")

    await eventually(back, f"re-upload of {lost}", timeout=30)
    assert kept in await world.keys("mme/shared/")
    again = await teams["team-b"].ready("gpt")
    assert again["status"]["targetModel"] == gpt["status"]["targetModel"]
    assert await invoke(world, gpt["status"]["endpointName"], gpt["status"]["targetModel"]) == 200
    async with world.env.session.get(f"/api/v1/namespaces/{PLATFORM}/events") as response:
        events = (await response.json()).get("items", [])
    # One event tells the pass: the drift found, and the upload that put it right.
    told = [e.get("message", "") for e in events if lost in e.get("message", "")]
    assert any("missing from S3" in message for message in told), told


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
async def test_deleting_the_endpoint_marks_its_models_endpoint_gone(
    world: World, teams: dict[str, Team], policy: str
) -> None:
    await world.apply(shared_endpoint(world, deletionPolicy=policy))
    a = teams["team-a"]
    await a.apply(model(world, "bert", await onnx(world, "a/bert/model.onnx")))
    served = await a.ready("bert")
    await world.env.delete("shared", PLATFORM)
    gone = await a.wait(
        "bert", lambda m: reason(m, "Accepted") == ("False", "EndpointGone"), "EndpointGone"
    )
    assert reason(gone, "Ready")[0] == "False"
    # The Models' archives go with the endpoint's (Delete) or stay (Retain).
    kept = f"mme/shared/{served['status']['targetModel']}" in await world.keys("mme/shared/")
    assert kept is (policy == "Retain")

    # A Model naming an endpoint that does not exist says so.
    await a.apply(model(world, "orphan", await onnx(world, "a/orphan/model.onnx")))
    orphan = await a.wait("orphan", lambda m: reason(m, "Accepted")[0] == "False", "Accepted=False")
    assert reason(orphan, "Accepted") == ("False", "EndpointNotFound")


async def test_changing_one_model_rewrites_only_that_model(
    world: World, teams: dict[str, Team]
) -> None:
    first, other = await bert_and_gpt(world, teams)
    a, b = teams["team-a"], teams["team-b"]
    bert = first["spec"]["source"]
    uploads = world.calls.get("PutObject", 0) + world.calls.get("CreateMultipartUpload", 0)
    endpoint = first["status"]["endpointName"]
    invoked = world.env.aws.calls_about(endpoint)["InvokeEndpoint"]

    await a.apply(model(world, "bert", bert, maxBatchSize=8))
    changed = await a.wait(
        "bert",
        lambda m: (
            condition(m, "Ready").get("status") == "True"
            and m["status"]["targetModel"] != first["status"]["targetModel"]
        ),
        "a new TargetModel, Ready",
    )
    assert changed["status"]["observedGeneration"] == 2
    assert changed["status"]["previousTargetModel"] == first["status"]["targetModel"]
    after = world.calls.get("PutObject", 0) + world.calls.get("CreateMultipartUpload", 0)
    assert after - uploads == 1  # the changed Model's archive, nothing else
    # Its load check (started as its upload ended), once.
    assert world.env.aws.calls_about(endpoint)["InvokeEndpoint"] - invoked == 1
    # The other team's Model was not written to (its status did not change).
    untouched = await b.get("gpt")
    assert untouched is not None
    assert untouched["metadata"]["resourceVersion"] == other["metadata"]["resourceVersion"]


async def test_a_pass_with_nothing_changed_invokes_and_uploads_nothing_again(
    world: World, teams: dict[str, Team]
) -> None:
    served = await bert_and_gpt(world, teams)
    endpoint = served[0]["status"]["endpointName"]

    def own() -> Counter[str]:
        # This test's calls only: earlier tests' endpoints on the shared API server are
        # reconciled by this operator too, and call the same local AWS.
        aws = world.env.aws
        return (
            aws.calls_about(world.bucket)
            + aws.calls_about(world.sources)
            + Counter({"InvokeEndpoint": aws.calls_about(endpoint).get("InvokeEndpoint", 0)})
        )

    # Both Ready; let the passes their arrival queued finish (a loaded machine).
    await asyncio.sleep(3)
    before = own()
    assert before["InvokeEndpoint"] >= 2 and before["PutObject"] >= 2, before  # counted
    passes = world.env.aws.calls_about(endpoint).get("DescribeEndpoint", 0)
    # Another pass of the endpoint (as a third Model's arrival makes), nothing changed.
    await asyncio.to_thread(
        teams["team-a"].plane.kubectl,
        "annotate",
        "modelendpoints",
        "shared",
        "-n",
        PLATFORM,
        "models.mme-operator.io/changed=test",
        "--overwrite",
    )
    await world.env.wait_for(
        "shared",
        lambda obj: (
            obj is not None
            and world.env.aws.calls_about(endpoint).get("DescribeEndpoint", 0) > passes
        ),
        namespace=PLATFORM,
        timeout=30,
        what="another pass",
    )
    await asyncio.sleep(2)
    after = own()
    for call in ("InvokeEndpoint", "PutObject", "HeadObject"):
        assert after.get(call, 0) == before.get(call, 0), (call, after - before)


async def test_kubectl_explains_a_model_and_shows_its_columns(
    world: World, teams: dict[str, Team]
) -> None:
    a = teams["team-a"]
    plane = a.plane
    explained = await asyncio.to_thread(plane.kubectl, "explain", "model.spec")
    text = " ".join(explained.stdout.split())
    assert "endpointRef <Object> -required-" in text and "every field of a" in text
    field = await asyncio.to_thread(plane.kubectl, "explain", "model.spec.endpointRef.namespace")
    assert "default the Model's own" in " ".join(field.stdout.split())

    await world.apply(shared_endpoint(world))
    await a.apply(model(world, "bert", await onnx(world, "a/bert/model.onnx")))
    served = await a.ready("bert")
    listed = await asyncio.to_thread(plane.kubectl, "get", "models", "-n", "team-a", token=a.token)
    header, row = listed.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "ENDPOINT", "STATE", "TARGETMODEL", "AGE"]
    assert row.split()[:4] == [
        "bert",
        f"{PLATFORM}/shared",
        "Available",
        served["status"]["targetModel"],
    ]


@pytest.mark.settings(drift_check_interval_seconds=1)
async def test_labelling_a_namespace_admits_its_models(
    world: World, teams: dict[str, Team]
) -> None:
    c = teams["team-c"]
    await endpoint_and_model(world, c, "gpt")
    await c.wait(
        "gpt", lambda m: reason(m, "Accepted") == ("False", "NotAllowedByEndpoint"), "refused"
    )
    labels = [f"{k}={v}" for k, v in ADMITTED.items()]
    await asyncio.to_thread(c.plane.kubectl, "label", "namespace", "team-c", *labels, "--overwrite")
    try:
        # Labels are read at most every 10 s; the drift timer then finds the new verdict.
        admitted = await c.ready("gpt", timeout=60)
        assert reason(admitted, "Accepted") == ("True", "Attached")
        assert admitted["status"]["targetModel"].startswith("team-c/gpt-")
    finally:
        await asyncio.to_thread(
            c.plane.kubectl, "label", "namespace", "team-c", *[f"{k}-" for k in ADMITTED]
        )


async def test_a_restart_with_nothing_changed_writes_no_model_and_deletes_nothing(
    world: World, teams: dict[str, Team]
) -> None:
    before = dict(zip(("bert", "gpt"), await bert_and_gpt(world, teams), strict=True))
    keys = await world.keys("mme/shared/")
    await asyncio.sleep(1.0)  # the last pass's writes land
    await world.env.stop_operator()
    world.env.aws.reset_calls()

    await world.env.start_operator()
    await asyncio.sleep(4.0)  # the resume pass runs at once

    a, b = teams["team-a"], teams["team-b"]
    after = {"bert": await a.get("bert"), "gpt": await b.get("gpt")}
    for name, found in after.items():
        assert found is not None
        assert found["metadata"]["resourceVersion"] == before[name]["metadata"]["resourceVersion"]
    assert await world.keys("mme/shared/") == keys
    calls = world.env.aws.calls
    assert calls["DescribeEndpoint"] >= 1, "the resume pass did not run"
    assert not {c for c in calls if c.startswith(("Create", "Update", "Delete", "Put"))}


MODELS_POLICY = str(Path(__file__).parent / "data" / "models-policy.yaml")


@pytest.mark.settings(tenancy_open=False, tenancy_policy_file=MODELS_POLICY)
async def test_a_models_source_follows_its_own_namespaces_policy_not_the_endpoints(
    world: World, teams: dict[str, Team]
) -> None:
    a = teams["team-a"]
    await endpoint_and_model(world, a, "bert")
    served = await a.ready("bert")
    # ml-platform's rule allows any https host; team-a's allows none.
    await a.apply(model(world, "web", "https://127.0.0.1:9/model.onnx"))
    refused = await a.wait(
        "web", lambda m: reason(m, "Ready") == ("False", "InvalidSpec"), "Ready=False InvalidSpec"
    )
    message = condition(refused, "Ready")["message"]
    assert "tenancy policy" in message and "spec.source" in message
    assert not any(k.startswith("mme/shared/team-a/web") for k in await world.keys("mme/shared/"))
    still = await a.get("bert")
    assert still is not None and reason(still, "Ready") == ("True", "ModelAvailable")
    assert still["status"]["targetModel"] == served["status"]["targetModel"]


# Capacity of the whole set. ml.g4dn.xlarge has 16 GiB of GPU memory, 14745 MiB with the
# default 10% headroom: two Models of 8000 MiB (their gpuMemoryMiB) do not fit together.


async def test_a_newcomer_beyond_capacity_is_refused_and_admitted_once_there_is_room(
    world: World, teams: dict[str, Team]
) -> None:
    endpoint = shared_endpoint(world, instanceType="ml.g4dn.xlarge")
    endpoint["spec"]["attach"]["beyondCapacity"] = "Refuse"
    await world.apply(endpoint)
    a, b = teams["team-a"], teams["team-b"]
    await a.apply(model(world, "big", await onnx(world, "a/big/model.onnx"), gpuMemoryMiB=8000))
    await a.ready("big")
    before = await world.keys("mme/shared/")

    await asyncio.sleep(1.1)  # creationTimestamp has second precision: b's is younger
    await b.apply(model(world, "huge", await onnx(world, "b/huge/model.onnx"), gpuMemoryMiB=8000))
    refused = await b.wait("huge", lambda m: reason(m, "Accepted")[0] == "False", "refused")
    assert reason(refused, "Accepted") == ("False", "DoesNotFit")
    message = condition(refused, "Accepted")["message"]
    assert "needs 8000 MiB" in message and "6745 of 14745 MiB left on ml.g4dn.xlarge" in message
    assert "targetModel" not in refused["status"]
    assert await world.keys("mme/shared/") == before  # nothing uploaded for it

    # A small one still fits in what is left: taken although younger than the refused one.
    await b.apply(model(world, "small", await onnx(world, "b/small/model.onnx"), gpuMemoryMiB=500))
    await b.ready("small")

    shared = await world.env.wait_for(
        "shared",
        lambda obj: (
            obj is not None
            and ((obj.get("status") or {}).get("capacity") or {}).get("refusedModels") == 1
        ),
        namespace=PLATFORM,
        timeout=30,
        what="capacity.refusedModels == 1",
    )
    assert shared is not None
    capacity = shared["status"]["capacity"]
    assert capacity["fits"] is True
    assert capacity["gpuMemoryRequiredMiB"] == 8500
    assert capacity["attachedModels"] == 2 and capacity["attachedGpuMemoryMiB"] == 8500
    assert "models" not in capacity  # no inline model; attached ones are summed, not listed
    fits = condition(shared, "CapacityFits")
    assert fits["status"] == "True" and "1 attached Model refused for capacity" in fits["message"]
    assert reason(shared, "Ready")[0] == "True"

    # The older one goes: the refused one is admitted at the next pass and served.
    await a.delete("big")
    served = await b.ready("huge", timeout=90)
    assert reason(served, "Accepted") == ("True", "Attached")
    assert served["status"]["targetModel"].startswith("team-b/huge-")


async def test_accept_serves_beyond_capacity_and_warns(
    world: World, teams: dict[str, Team]
) -> None:
    await world.apply(shared_endpoint(world, instanceType="ml.g4dn.xlarge"))
    a, b = teams["team-a"], teams["team-b"]
    await a.apply(model(world, "big", await onnx(world, "a/big/model.onnx"), gpuMemoryMiB=8000))
    await b.apply(model(world, "huge", await onnx(world, "b/huge/model.onnx"), gpuMemoryMiB=8000))
    await a.ready("big")
    await b.ready("huge")

    shared = await world.env.wait_for(
        "shared",
        lambda obj: obj is not None and condition(obj, "CapacityFits").get("status") == "False",
        namespace=PLATFORM,
        timeout=30,
        what="CapacityFits False",
    )
    assert shared is not None
    fits = condition(shared, "CapacityFits")
    assert fits["reason"] == "DoesNotFit"
    assert "16000 MiB" in fits["message"] and "14745 MiB" in fits["message"]
    assert shared["status"]["capacity"]["attachedModels"] == 2
    assert reason(shared, "Ready")[0] == "True"  # a warning: MME loads and evicts in turn


def realistic(world: World, object_name: str, source: str) -> dict[str, Any]:
    """A Model as teams write them: two inputs, one output, batching, two instances."""
    return model(
        world,
        object_name,
        source,
        maxBatchSize=32,
        inputs=[
            {"name": "input_ids", "dataType": "TYPE_INT64", "dims": [128]},
            {"name": "attention_mask", "dataType": "TYPE_INT64", "dims": [128]},
        ],
        outputs=[{"name": "logits", "dataType": "TYPE_FP32", "dims": [2]}],
        instanceGroups=[{"count": 2, "kind": "KIND_GPU"}],
        dynamicBatching={"maxQueueDelayMicroseconds": 100, "preferredBatchSize": [8, 16]},
        gpuMemoryMiB=10,
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_a_thousand_models_applied_with_plain_kubectl_apply_are_served(
    world: World, teams: dict[str, Team]
) -> None:
    """As one ModelEndpoint, 1,000 such models are more than client-side apply's 256 KiB
    last-applied annotation holds; as Models, each carries its own small one."""
    await world.apply(shared_endpoint(world))
    a = teams["team-a"]
    source = await onnx(world, "a/many/model.onnx")
    docs = [realistic(world, f"m{i:04d}", source) for i in range(1000)]
    for doc in docs:
        doc["metadata"]["namespace"] = a.namespace
    text = yaml.safe_dump_all(docs)
    assert len(text) > 262144  # what one object's annotation could not hold

    done = await asyncio.to_thread(
        a.plane.kubectl, "apply", "-f", "-", stdin=text, token=a.token, timeout=600
    )
    assert done.stdout.count(" created") == 1000, done.stdout[-2000:]

    shared = await world.env.wait_for(
        "shared",
        lambda obj: (
            obj is not None
            and ((obj.get("status") or {}).get("attached") or {}).get("ready") == 1000
        ),
        namespace=PLATFORM,
        timeout=600,
        what="attached.ready == 1000",
    )
    assert shared is not None
    assert shared["status"]["attached"] == {
        "accepted": 1000,
        "ready": 1000,
        "failed": 0,
        "refused": 0,
    }
    assert len(yaml.safe_dump(shared["status"])) < 16384  # counts, not a list of 1,000
    last = await a.ready("m0999")
    annotation = last["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert len(annotation) < 4096
    assert last["status"]["targetModel"].startswith("team-a/m0999-")
    assert await invoke(world, last["status"]["endpointName"], last["status"]["targetModel"]) == 200

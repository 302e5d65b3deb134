"""Clients read the TargetModels from a ConfigMap the ModelEndpoint owns: `<name>-models`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from typing import Any

import kopf
import pytest

from tests.integration.conftest import (
    NAMESPACE,
    World,
    condition,
    eventually,
    kube_connection,
    unique,
)


async def configmap(world: World, name: str) -> dict[str, Any] | None:
    path = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{name}"
    async with world.env.session.get(path) as response:
        if response.status == 404:
            return None
        response.raise_for_status()
        found: dict[str, Any] = await response.json()
        return found


async def test_the_models_configmap_follows_the_target_models(world: World) -> None:
    doc = world.manifest(
        "mapped", [await world.onnx_model("bert"), await world.python_model("tok")]
    )
    await world.apply(doc)
    ready = await world.ready("mapped")
    targets = {m["name"]: m["targetModel"] for m in ready["status"]["models"]}

    found = await configmap(world, "mapped-models")
    assert found is not None
    assert found["data"] == {
        "bert": targets["bert"],
        "tok": targets["tok"],
        "endpoint.name": ready["status"]["endpointName"],
        "endpoint.region": "us-east-1",
        "models.json": json.dumps(
            {
                "endpointName": ready["status"]["endpointName"],
                "region": "us-east-1",
                "targetModels": targets,
            },
            sort_keys=True,
        ),
    }
    [owner] = found["metadata"]["ownerReferences"]
    assert owner["uid"] == ready["metadata"]["uid"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("ModelEndpoint", "mapped", True)
    version = found["metadata"]["resourceVersion"]

    # A change of a model changes its key; a removed model's key goes.
    doc["spec"]["models"] = [m for m in doc["spec"]["models"] if m["name"] == "bert"]
    doc["spec"]["models"][0]["maxBatchSize"] = 8
    await world.apply(doc)
    after = await world.ready("mapped")
    [bert] = after["status"]["models"]
    updated = await configmap(world, "mapped-models")
    assert updated is not None
    assert updated["data"]["bert"] == bert["targetModel"] != targets["bert"]
    assert "tok" not in updated["data"]
    assert updated["metadata"]["resourceVersion"] != version


async def test_an_unchanged_mapping_is_not_written_again(world: World) -> None:
    doc = world.manifest("steady", [await world.onnx_model("bert")])
    await world.apply(doc)
    await world.ready("steady")
    before = await configmap(world, "steady-models")
    assert before is not None

    # A spec change that leaves every TargetModel alone (tags are not part of any name).
    doc["spec"]["tags"] = {"team": "search"}
    await world.apply(doc)
    await world.ready("steady")

    after = await configmap(world, "steady-models")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


@pytest.mark.settings(drift_check_interval_seconds=1)
async def test_a_refused_configmap_write_is_made_again_by_the_drift_timer(
    world: World, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    real = kube_connection(request)
    if real is None:
        pytest.skip("admission policies need the real API server")
    plane = real[1]
    # The API server itself refuses the ConfigMap (a ValidatingAdmissionPolicy), as a
    # quota, a policy engine or an outage would; nothing in the operator is changed.
    policy = unique("no-models-configmap")
    plane.apply(
        [
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": policy},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {
                        "resourceRules": [
                            {
                                "apiGroups": [""],
                                "apiVersions": ["v1"],
                                "operations": ["CREATE", "UPDATE"],
                                "resources": ["configmaps"],
                            }
                        ]
                    },
                    "validations": [
                        {
                            "expression": "object.metadata.name != 'healed-models'",
                            "message": "held back by the test",
                        }
                    ],
                },
            },
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": policy},
                "spec": {"policyName": policy, "validationActions": ["Deny"]},
            },
        ]
    )
    try:

        async def refused() -> bool:
            return any(e["reason"] == "ConfigMapFailed" for e in await world.events("healed"))

        # The policy takes effect once the API server has loaded it (about a second): an
        # admin's create of the same name is refused from then on.
        def policy_loaded() -> bool:
            made = plane.kubectl(
                "create", "configmap", "healed-models", "-n", NAMESPACE, check=False
            )
            if made.returncode == 0:
                plane.kubectl("delete", "configmap", "healed-models", "-n", NAMESPACE)
            return "held back by the test" in made.stderr

        deadline = time.monotonic() + 30
        while not policy_loaded():
            assert time.monotonic() < deadline, "the admission policy never took effect"
            await asyncio.sleep(0.3)
        doc = world.manifest("healed", [await world.onnx_model("bert")])
        await world.apply(doc)
        ready = await world.ready("healed")
        await eventually(refused, "the ConfigMap write refused", timeout=30)
        assert await configmap(world, "healed-models") is None
    finally:
        plane.kubectl("delete", "validatingadmissionpolicybinding", policy, check=False)
        plane.kubectl("delete", "validatingadmissionpolicy", policy, check=False)

    async def written() -> bool:
        return await configmap(world, "healed-models") is not None

    # No change to the ModelEndpoint: the drift timer writes it once the API server allows.
    await eventually(written, "the ConfigMap written again", timeout=30)
    found = await configmap(world, "healed-models")
    assert found is not None
    [model] = ready["status"]["models"]
    assert found["data"]["bert"] == model["targetModel"]
    after = await world.env.get("healed", NAMESPACE)
    assert after is not None
    assert after["metadata"]["generation"] == ready["metadata"]["generation"]
    # The refusal was meant ("... is forbidden: ValidatingAdmissionPolicy ..."); the
    # fixture's check for RBAC refusals must not count it.
    caplog.clear()


async def test_a_configmap_the_operator_did_not_create_is_never_written_or_taken(
    world: World,
) -> None:
    path = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
    mine = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-models", "namespace": NAMESPACE},
        "data": {"database": "postgres://db/app", "feature": "on"},
    }
    async with world.env.session.post(path, json=mine) as response:
        response.raise_for_status()
    before = await configmap(world, "app-models")
    assert before is not None

    await world.apply(world.manifest("app", [await world.onnx_model("bert")]))
    found = await world.ready("app")  # the endpoint serves all the same
    assert condition(found, "ConfigMapWritten")["status"] == "False"
    assert condition(found, "ConfigMapWritten")["reason"] == "ConfigMapNotOwned"
    after = await configmap(world, "app-models")
    assert after is not None
    assert after["data"] == before["data"]
    assert not after["metadata"].get("ownerReferences")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    warnings = [e for e in await world.events("app") if e["type"] == "Warning"]
    assert any(e["reason"] == "ConfigMapNotOwned" for e in warnings)

    await world.env.delete("app")
    await world.wait_gone("app")
    kept = await configmap(world, "app-models")
    assert kept is not None and kept["data"] == before["data"]


async def test_the_operator_writes_its_configmap_under_the_charts_admission_policy(
    world: World, request: pytest.FixtureRequest
) -> None:
    real = kube_connection(request)
    if real is None:
        pytest.skip("admission policies need the real API server")
    plane = real[1]
    login: kopf.ConnectionInfo = request.getfixturevalue("operator_login")
    assert login.token is not None
    plane.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "tenant-config", "namespace": NAMESPACE},
                "data": {"key": "value"},
            }
        ]
    )

    # The operator's login (the chart's RBAC and its ConfigMap policy) may not touch a
    # tenant's ConfigMap: the API server says so once it has loaded the policy.
    def tenant_write() -> subprocess.CompletedProcess[str]:
        patch = json.dumps({"data": {"key": "taken"}})
        return plane.kubectl(
            "patch", "configmap", "tenant-config", "-n", NAMESPACE, "--type=merge", "-p", patch,
            "--dry-run=server", token=login.token, check=False,
        )  # fmt: skip

    deadline = time.monotonic() + 30
    while "mme-operator may only" not in (done := tenant_write()).stderr:
        assert time.monotonic() < deadline, (
            f"the chart's policy is not enforced: {done.stdout}{done.stderr}"
        )
        await asyncio.sleep(0.3)

    # ...and the operator, under that policy, still creates and updates its own.
    doc = world.manifest("policed", [await world.onnx_model("bert")])
    await world.apply(doc)
    ready = await world.ready("policed")
    assert condition(ready, "ConfigMapWritten") == {}  # set only when a write is refused
    found = await configmap(world, "policed-models")
    assert found is not None
    assert found["data"]["bert"] == ready["status"]["models"][0]["targetModel"]
    doc["spec"]["models"][0]["maxBatchSize"] = 8
    await world.apply(doc)

    async def updated() -> bool:
        now = await world.env.get("policed", NAMESPACE)
        mapping = await configmap(world, "policed-models")
        return bool(
            now
            and mapping
            and now["status"]["models"][0]["targetModel"] == mapping["data"]["bert"]
            and mapping["data"]["bert"] != found["data"]["bert"]
        )

    await eventually(updated, "the ConfigMap patched with the new TargetModel", timeout=30)
    warnings = {e["reason"] for e in await world.events("policed") if e["type"] == "Warning"}
    assert not warnings & {"ConfigMapFailed", "ConfigMapNotOwned"}
    tenant = plane.get("configmap", "tenant-config", "-n", NAMESPACE)
    assert tenant["data"] == {"key": "value"}

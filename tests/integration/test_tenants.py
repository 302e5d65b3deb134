"""Tenants as the issue's attacker is: a ServiceAccount with RBAC on ModelEndpoints in its own
namespace only, on the real kube-apiserver, with the operator on the chart's RBAC. Each test
ends with an inventory of the other tenant's SageMaker resources and S3 keys."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from mme_operator.local.tarpit import Tarpit

from tests.cluster import ControlPlane
from tests.integration.conftest import (
    World,
    clean_namespace,
    condition,
    eventually,
    kube_connection,
)
from tests.integration.test_ownership import inventory

pytestmark = pytest.mark.envtest


def tenant_rbac(namespace: str, resource: str = "modelendpoints") -> list[dict[str, Any]]:
    """A ServiceAccount ``tenant`` that may do anything with ``resource`` (ModelEndpoints) in
    ``namespace`` only."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": f"{resource}-editor", "namespace": namespace},
        "rules": [
            {
                "apiGroups": ["mme-operator.io"],
                "resources": [resource],
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"tenant-edits-{resource}", "namespace": namespace},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        },
        "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": namespace}],
    }
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "tenant", "namespace": namespace},
    }
    return [account, role, binding]


@dataclass
class Tenant:
    namespace: str
    token: str
    plane: ControlPlane

    def apply(self, *docs: dict[str, Any]) -> None:
        """``kubectl apply`` of ``docs`` in this namespace, in one call."""
        copies = [copy.deepcopy(doc) for doc in docs]
        for doc in copies:
            doc["metadata"]["namespace"] = self.namespace
        text = yaml.safe_dump_all(copies)
        self.plane.kubectl("apply", "-f", "-", stdin=text, token=self.token)

    def delete(self, name: str) -> None:
        self.plane.kubectl(
            "delete", "modelendpoints", name, "-n", self.namespace, "--wait=false", token=self.token
        )

    def can(self, *args: str) -> bool:
        return self.plane.kubectl(*args, check=False, token=self.token).returncode == 0


@pytest.fixture
async def tenants(world: World, request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Tenant]]:
    real = kube_connection(request)
    if real is None:
        pytest.skip("needs the real kube-apiserver (tenant RBAC)")
    plane = real[1]
    names = ("team-a", "team-b", "team")
    found = {}
    for namespace in names:
        await asyncio.to_thread(plane.ensure_namespace, namespace)
        await asyncio.to_thread(plane.apply, tenant_rbac(namespace))
        token = await asyncio.to_thread(plane.token, "tenant", namespace)
        found[namespace] = Tenant(namespace, token, plane)
    try:
        yield found
    finally:
        for namespace in names:
            await asyncio.to_thread(clean_namespace, plane, namespace)


async def wait(
    world: World, namespace: str, name: str, predicate: Any, what: str
) -> dict[str, Any]:
    found = await world.env.wait_for(
        name,
        lambda obj: obj is not None and predicate(obj),
        namespace=namespace,
        timeout=30,
        what=what,
    )
    assert found is not None
    return found


async def test_a_tenant_reaches_only_its_own_namespace(tenants: dict[str, Tenant]) -> None:
    a = tenants["team-a"]
    assert a.can("get", "modelendpoints", "-n", "team-a")
    assert not a.can("get", "modelendpoints", "-n", "team-b")
    assert not a.can("get", "configmaps", "-n", "team-b")


async def test_tenant_a_cannot_take_tenant_bs_endpoint(
    world: World, tenants: dict[str, Tenant]
) -> None:
    bert = await world.onnx_model("bert")
    victim = world.manifest("prod", [bert])
    victim["spec"]["artifacts"]["prefix"] = "team-b/prod/"
    tenants["team-b"].apply(victim)
    owner = await world.env.wait_ready("prod", "team-b", timeout=30)
    endpoint = owner["status"]["endpointName"]
    before = await inventory(world, endpoint, "team-b/prod/")

    attack = world.manifest(
        "grab",
        [await world.python_model("tok")],
        annotations={"mme-operator.io/adopt-endpoint": endpoint},
        endpointName=endpoint,
        environment={"STOLEN": "1"},
    )
    attack["spec"]["artifacts"]["prefix"] = "team-a/grab/"
    tenants["team-a"].apply(attack)
    refused = await wait(
        world,
        "team-a",
        "grab",
        lambda obj: condition(obj, "Ready").get("reason") == "NotOwned",
        "Ready=False NotOwned",
    )
    message = condition(refused, "Ready")["message"]
    assert "team-b" not in message.replace(endpoint, "") and owner["metadata"]["uid"] not in message

    tenants["team-a"].delete("grab")
    await world.env.wait_for(
        "grab", lambda obj: obj is None, namespace="team-a", timeout=30, what="gone"
    )
    after = await world.env.get("prod", "team-b")
    assert after is not None and condition(after, "Ready")["status"] == "True"
    assert await inventory(world, endpoint, "team-b/prod/") == before
    assert world.calls["AddTags"] == 0 and world.calls["DeleteEndpoint"] == 0


async def test_names_that_collided_across_namespaces_no_longer_do(
    world: World, tenants: dict[str, Tenant]
) -> None:
    # team-a/prod and team/a-prod both derived "team-a-prod": the second was NotOwned.
    for tenant, name in ((tenants["team-a"], "prod"), (tenants["team"], "a-prod")):
        doc = world.manifest(name, [await world.onnx_model("bert")])
        doc["spec"]["artifacts"]["prefix"] = f"{tenant.namespace}/{name}/"
        tenant.apply(doc)
    first = await world.env.wait_ready("prod", "team-a", timeout=30)
    second = await world.env.wait_ready("a-prod", "team", timeout=30)
    names = {first["status"]["endpointName"], second["status"]["endpointName"]}
    assert len({n.lower() for n in names}) == 2
    before = await inventory(world, first["status"]["endpointName"], "team-a/prod/")
    tenants["team"].delete("a-prod")
    await world.env.wait_for(
        "a-prod", lambda obj: obj is None, namespace="team", timeout=30, what="gone"
    )
    assert await inventory(world, first["status"]["endpointName"], "team-a/prod/") == before


@pytest.mark.settings(
    https_allowed_networks="127.0.0.1/32", https_timeout_seconds=8, retry_delay_seconds=1
)
async def test_one_tenants_hanging_sources_do_not_hold_up_another(
    world: World, tenants: dict[str, Tenant]
) -> None:
    tarpit = Tarpit()
    try:
        b = tenants["team-b"]

        async def time_to_ready(name: str) -> float:
            doc = world.manifest(name, [await world.onnx_model("bert")])
            doc["spec"]["artifacts"]["prefix"] = f"team-b/{name}/"
            started = time.monotonic()
            b.apply(doc)
            await world.env.wait_ready(name, "team-b", timeout=60)
            return time.monotonic() - started

        await time_to_ready("warm")
        alone = await time_to_ready("alone")
        hanging = {
            **await world.onnx_model("bert"),
            "source": f"https://127.0.0.1:{tarpit.port}/m.onnx",
        }
        for i in range(8):
            doc = world.manifest(f"hang-{i}", [hanging])
            doc["spec"]["artifacts"]["prefix"] = f"team-a/hang-{i}/"
            tenants["team-a"].apply(doc)
        # team-a holds its share of the 8 workers ((8 - 1) // 2, team-b being active too).
        # Eight applies and their first passes: seconds on a loaded 2-core machine.
        await eventually(
            lambda: _at_least(tarpit, 3), "team-a's passes hanging in the tarpit", timeout=60
        )
        crowded = await time_to_ready("crowded")
        # Without the namespace fair share, team-b waited for a read deadline (8 s) or more.
        assert crowded < max(2 * alone, alone + 1.5), (alone, crowded)
    finally:
        tarpit.close()


async def _at_least(tarpit: Tarpit, connections: int) -> bool:
    return tarpit.accepted >= connections

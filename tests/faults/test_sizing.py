"""A ModelEndpoint without instanceType, on the real API server: the type and cost in `kubectl get`."""

from __future__ import annotations

import pytest

from tests.cluster import ControlPlane
from tests.faults.harness import World

pytestmark = [pytest.mark.faults, pytest.mark.envtest]


def test_a_sized_endpoint_is_ready_and_kubectl_get_shows_its_type_and_cost(
    world: World, control_plane: ControlPlane
) -> None:
    doc = world.manifest("sized", [world.python_model("echo")], sizing={"headroomPercent": 20})
    del doc["spec"]["instanceType"]
    world.cluster.create(doc)

    world.wait_converged(["sized"], timeout=60)

    status = (world.cluster.get("sized") or {})["status"]
    assert status["instanceType"] == "ml.g4dn.xlarge"
    assert status["estimatedCostPerHour"] == 0.7364
    config = world.sm.describe_endpoint_config(EndpointConfigName=status["endpointConfigName"])
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g4dn.xlarge"
    table = control_plane.kubectl("get", "mep", "-n", world.cluster.namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:6] == ["NAME", "PHASE", "ENDPOINT", "MODELS", "INSTANCE", "COST/H"]
    assert row.split()[:6] == ["sized", "Ready", "InService", "1", "ml.g4dn.xlarge", "0.7364"]

"""The platform's tenancy policy on the real kube-apiserver, tenants on namespace-only RBAC.

What the policy refuses gets ``Ready=False/PolicyDenied`` and a Warning event, and the pass
makes no AWS call at all; the other tenant's SageMaker resources and S3 keys stay as they
were. Open mode (a single-team install) lets the same specs through.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import FAKE_ONNX, World, condition
from tests.integration.test_ownership import inventory
from tests.integration.test_tenants import Tenant, tenants, wait  # noqa: F401 (fixture)

pytestmark = pytest.mark.envtest

POLICY = str(Path(__file__).parent / "data" / "tenancy-policy.yaml")


def denied(obj: dict[str, Any]) -> bool:
    return condition(obj, "Ready").get("reason") == "PolicyDenied"


async def refused(world: World, namespace: str, name: str) -> str:
    found = await wait(world, namespace, name, denied, "Ready=False PolicyDenied")
    ready = condition(found, "Ready")
    assert ready["status"] == "False" and found["status"]["phase"] == "Failed"
    assert not found["status"].get("endpointName")
    async with world.env.session.get(f"/api/v1/namespaces/{namespace}/events") as response:
        response.raise_for_status()
        items = (await response.json()).get("items", [])
    events = [
        e
        for e in items
        if (e.get("involvedObject") or {}).get("name") == name and e.get("reason") == "PolicyDenied"
    ]
    assert events and events[0]["type"] == "Warning"
    return str(ready["message"])


@pytest.mark.settings(tenancy_open=False, tenancy_policy_file=POLICY)
async def test_the_policy_refuses_what_a_namespace_may_not_use(
    world: World,
    tenants: dict[str, Tenant],  # noqa: F811
) -> None:
    a, b = tenants["team-a"], tenants["team-b"]
    owner = world.manifest("prod", [await world.onnx_model("bert")])
    del owner["spec"]["artifacts"]["prefix"]  # the default: team-b/prod/
    b.apply(owner)
    ready = await world.env.wait_ready("prod", "team-b", timeout=30)
    endpoint = ready["status"]["endpointName"]
    b_keys = await world.keys("team-b/prod/")
    assert b_keys
    before = await inventory(world, endpoint, "team-b/prod/")

    # Outside <namespace>/<name>/ (and over B's location): refused, no AWS call.
    outside = world.manifest("grab", [await world.onnx_model("tok")])
    outside["spec"]["artifacts"]["prefix"] = "team-b/"
    b_calls = dict(world.calls)
    a.apply(outside)
    message = await refused(world, "team-a", "grab")
    assert "spec.artifacts.prefix: 'team-b/' is outside what namespace team-a may use" in message
    assert "nests with another ModelEndpoint's archive location" in message
    assert "team-b/prod" not in message and ready["metadata"]["uid"] not in message

    # The s3:// source inside B's archives, an image and a role the platform did not name.
    reader = world.manifest(
        "reader",
        [{"name": "copy", "source": f"s3://{world.bucket}/{b_keys[0]}", "backend": "python"}],
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/miner:1",
        executionRoleArn="arn:aws:iam::123456789012:role/admin",
    )
    reader["spec"]["artifacts"]["prefix"] = "team-a/reader/"
    a.apply(reader)
    message = await refused(world, "team-a", "reader")
    assert f"s3://{world.bucket}/{b_keys[0]} is inside another ModelEndpoint's archive" in message
    assert "spec.image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/miner:1 is neither" in message
    assert "spec.executionRoleArn: arn:aws:iam::123456789012:role/admin is not" in message
    assert dict(world.calls) == b_calls, "a refused spec made AWS calls"

    # Two of team-a's own locations nest: the newcomer is refused, the first one untouched.
    first = world.manifest("first", [await world.onnx_model("one")])
    first["spec"]["artifacts"]["prefix"] = "team-a/shared/"
    a.apply(first)
    first_ready = await world.env.wait_ready("first", "team-a", timeout=30)
    first_before = await inventory(world, first_ready["status"]["endpointName"], "team-a/shared/")
    # No pause: the newcomer may share the first's creation second and win a tie by uid;
    # the first holds its place because it was admitted first.
    nested = world.manifest("nested", [await world.onnx_model("two")])
    calls = dict(world.calls)
    nested["spec"]["artifacts"]["prefix"] = "team-a/shared/nested/"
    a.apply(nested)
    message = await refused(world, "team-a", "nested")
    assert (
        f"refuses this spec: spec.artifacts: s3://{world.bucket}/team-a/shared/nested/ nests "
        "with another ModelEndpoint's archive location; give this one a prefix of its own; "
        "tried again every"
    ) in message
    assert dict(world.calls) == calls
    assert (
        await inventory(world, first_ready["status"]["endpointName"], "team-a/shared/")
        == first_before
    )

    for name in ("grab", "reader", "nested"):
        a.delete(name)
        await world.env.wait_for(
            name, lambda obj: obj is None, namespace="team-a", timeout=30, what="gone"
        )
    assert await inventory(world, endpoint, "team-b/prod/") == before
    after = await world.env.get("prod", "team-b")
    assert after is not None and condition(after, "Ready")["status"] == "True"


@pytest.mark.settings(tenancy_open=True, tenancy_policy_file=POLICY)
async def test_open_mode_lets_a_single_team_use_anything(world: World) -> None:
    outer = world.manifest(
        "outer",
        [await world.onnx_model("bert")],
        # A copy of the Triton image in the account's own registry: not SageMaker's.
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3",
        executionRoleArn="arn:aws:iam::123456789012:role/other",
    )
    outer["spec"]["artifacts"]["prefix"] = "anywhere/"
    await world.apply(outer)
    await world.ready("outer", timeout=30)
    assert await world.keys("anywhere/")
    await world.aws(
        world.s3.put_object, Bucket=world.bucket, Key="anywhere/raw/model.onnx", Body=FAKE_ONNX
    )
    inner = world.manifest(
        "inner",
        [
            {
                "name": "copy",
                "source": f"s3://{world.bucket}/anywhere/raw/model.onnx",
                "platform": "onnxruntime_onnx",
            }
        ],
    )
    inner["spec"]["artifacts"]["prefix"] = "anywhere/inner/"
    await world.apply(inner)
    await world.ready("inner", timeout=30)


@pytest.mark.settings(tenancy_open=False, tenancy_policy_file=POLICY)
async def test_at_a_start_the_older_of_two_nesting_locations_wins(
    world: World,
    tenants: dict[str, Tenant],  # noqa: F811
) -> None:
    # Both exist before the operator starts (a restart, an upgrade): whichever kopf resumes
    # first, the index of every location is full before any pass, so the older one wins.
    await world.env.stop_operator()
    a = tenants["team-a"]
    nested = world.manifest("nested", [await world.onnx_model("two")])
    nested["spec"]["artifacts"]["prefix"] = "team-a/shared/nested/"
    first = world.manifest("first", [await world.onnx_model("one")])
    first["spec"]["artifacts"]["prefix"] = "team-a/shared/"
    a.apply(first)
    await asyncio.sleep(1.1)  # creationTimestamp has whole seconds
    a.apply(nested)
    await world.env.start_operator()
    await world.env.wait_ready("first", "team-a", timeout=30)
    message = await refused(world, "team-a", "nested")
    assert "nests with another ModelEndpoint's archive location" in message
    assert await world.keys("team-a/shared/nested/") == []


@pytest.mark.settings(tenancy_open=False, tenancy_policy_file=POLICY)
async def test_of_two_nesting_newcomers_applied_together_one_is_admitted_for_good(
    world: World,
    tenants: dict[str, Tenant],  # noqa: F811
) -> None:
    # One kubectl call: the same creation second, and passes that may run side by side.
    a = tenants["team-a"]
    outer = world.manifest("outer", [await world.onnx_model("one")])
    outer["spec"]["artifacts"]["prefix"] = "team-a/pair/"
    inner = world.manifest("inner", [await world.onnx_model("two")])
    inner["spec"]["artifacts"]["prefix"] = "team-a/pair/inner/"
    a.apply(outer, inner)

    def settled(obj: dict[str, Any]) -> bool:
        reason = condition(obj, "Ready").get("reason")
        return condition(obj, "Ready").get("status") == "True" or reason == "PolicyDenied"

    found = {
        name: await wait(world, "team-a", name, settled, "Ready or PolicyDenied")
        for name in ("outer", "inner")
    }
    winners = [n for n, obj in found.items() if condition(obj, "Ready")["status"] == "True"]
    losers = [n for n, obj in found.items() if denied(obj)]
    assert len(winners) == 1 and len(losers) == 1, found
    winner, loser = winners[0], losers[0]
    await refused(world, "team-a", loser)
    loser_prefix = "team-a/pair/inner/" if loser == "inner" else "team-a/pair/"
    winner_prefix = "team-a/pair/" if winner == "outer" else "team-a/pair/inner/"
    # The loser made nothing: the only archives under the pair are the winner's.
    keys = await world.keys("team-a/pair/")
    assert keys and all(k.startswith(winner_prefix) for k in keys), keys
    if loser_prefix != "team-a/pair/":
        assert await world.keys(loser_prefix) == []

    # Later passes of both (an annotation change starts one) keep the same answer: the
    # admitted one is never displaced, the refused one never admitted.
    for round_ in range(3):
        for name in (winner, loser):
            a.plane.kubectl(
                "annotate",
                "--overwrite",
                "modelendpoints",
                name,
                "-n",
                "team-a",
                f"example.com/round={round_}",
                token=a.token,
            )
        await asyncio.sleep(1.5)
    still = await world.env.get(winner, "team-a")
    assert still is not None and condition(still, "Ready")["status"] == "True", still
    again = await world.env.get(loser, "team-a")
    assert again is not None and denied(again)
    assert not again["status"].get("endpointName")

"""A tenant's https:// source cannot make the operator reach its own network: internal
addresses are refused before any connection, and the status says the same for an open port
and a closed one (no port scanner)."""

from __future__ import annotations

from typing import Any

from mme_operator.local.tarpit import Tarpit

from tests.artifacts.test_network import closed_port
from tests.integration.conftest import World, condition


async def _refusal(world: World, name: str, source: str) -> dict[str, Any]:
    model = {**await world.onnx_model("bert"), "source": source}
    await world.apply(world.manifest(name, [model]))
    found = await world.wait_for(
        name,
        lambda obj: condition(obj, "ArtifactsSynced").get("reason") == "SourceError",
        "ArtifactsSynced=False SourceError",
    )
    return found


async def test_an_internal_address_is_refused_and_open_or_closed_reads_the_same(
    world: World,
) -> None:
    listener = Tarpit()
    try:
        targets = {
            "open": f"https://127.0.0.1:{listener.port}/m.onnx",
            "closed": f"https://127.0.0.1:{closed_port()}/m.onnx",
            "metadata": "https://169.254.169.254/latest/meta-data/iam/m.onnx",
        }
        messages = {}
        for name, source in targets.items():
            found = await _refusal(world, f"ssrf-{name}", source)
            message = condition(found, "ArtifactsSynced")["message"]
            assert "may not reach" in message, message
            assert found["status"]["models"][0]["state"] == "Failed"
            port = source.split(":")[2].split("/")[0] if source.count(":") > 1 else ""
            messages[name] = message.replace(port, "PORT") if port else message
        assert messages["open"] == messages["closed"]
        assert listener.accepted == 0
        assert await world.keys("mme/ssrf-open/") == []
    finally:
        listener.close()

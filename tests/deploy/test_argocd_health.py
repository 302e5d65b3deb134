"""argocd/health.lua, run by a real Lua interpreter on the cases of argocd/health_test.yaml.

Argo CD hands the script the resource as a Lua table named ``obj`` (arrays 1-based) and
reads back ``{status, message}``; this test does the same through lupa.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lupa
import pytest
import yaml
from mme_operator.api import Reason, validate_resource

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "argocd"
SCRIPT = (ARGOCD / "health.lua").read_text()
CASES = yaml.safe_load((ARGOCD / "health_test.yaml").read_text())["tests"]


def to_lua(runtime: Any, value: Any) -> Any:
    """A YAML value as Argo's Lua sees it: mappings and lists become tables, lists 1-based."""
    if isinstance(value, dict):
        return runtime.table_from({key: to_lua(runtime, item) for key, item in value.items()})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, item) for item in value])
    return value


def health_of(obj: dict[str, Any], script: str = SCRIPT) -> dict[str, Any]:
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = to_lua(runtime, obj)
    # Argo runs the script as a chunk whose `return` is the result.
    result = runtime.execute(script)
    return {key: result[key] for key in ("status", "message") if result[key] is not None}


def load(input_path: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ARGOCD / input_path).read_text())
    return document


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health_check_gives_the_expected_status(case: dict[str, Any]) -> None:
    assert health_of(load(case["inputPath"])) == case["healthStatus"]


def test_every_testdata_file_is_a_case_and_a_valid_model_endpoint() -> None:
    listed = {case["inputPath"] for case in CASES}
    on_disk = {f"testdata/{path.name}" for path in (ARGOCD / "testdata").glob("*.yaml")}
    assert listed == on_disk
    for path in sorted(on_disk):
        _, problems = validate_resource(load(path))
        assert not problems, f"{path}: {problems}"


def test_arrays_are_seen_one_based_as_argo_gives_them() -> None:
    runtime = lupa.LuaRuntime()
    conditions = to_lua(runtime, [{"type": "Ready"}])
    assert conditions[1]["type"] == "Ready"
    assert conditions[0] is None


def lua_table(name: str) -> set[str]:
    """The keys of the script's ``local <name> = { Key = true, ... }`` table."""
    match = re.search(rf"local {name} = {{(.*?)\n}}", SCRIPT, re.S)
    assert match, f"no table {name} in health.lua"
    return set(re.findall(r"^\s*(\w+) = true,", match.group(1), re.M))


TERMINAL = lua_table("terminal")
PROGRESSING = lua_table("progressing")


def test_every_reason_is_classified_once_by_the_health_script() -> None:
    reasons = {reason.value for reason in Reason}
    assert not TERMINAL & PROGRESSING
    assert reasons - (TERMINAL | PROGRESSING) == set(), "reasons the script does not classify"
    assert (TERMINAL | PROGRESSING) - reasons == set(), "the script names unknown reasons"
    # A reason only a person can fix is Degraded, whatever the phase; so is a failed load.
    assert {
        "ArtifactConflict",
        "LoadFailed",
        "SourceError",
        "InvalidSpec",
        "NoServableModels",
    } <= TERMINAL


@pytest.mark.parametrize("reason", [r.value for r in Reason])
def test_ready_false_is_degraded_only_for_terminal_reasons(reason: str) -> None:
    obj = load("testdata/progressing-retrying.yaml")
    obj["status"]["conditions"][0]["reason"] = reason
    expected = "Degraded" if reason in TERMINAL else "Progressing"
    assert health_of(obj)["status"] == expected


def test_configmap_snippet_carries_the_script_verbatim() -> None:
    snippet = yaml.safe_load((ARGOCD / "argocd-cm-snippet.yaml").read_text())
    assert snippet["data"]["resource.customizations.health.mme-operator.io_ModelEndpoint"] == SCRIPT


def test_application_example_orders_crds_operator_and_endpoints_by_sync_wave() -> None:
    docs = list(yaml.safe_load_all((ARGOCD / "application-example.yaml").read_text()))
    waves = {
        doc["metadata"]["name"]: doc["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
        for doc in docs
    }
    assert waves == {"mme-operator": "-1", "ml-endpoints": "0", "small-llms": "0"}
    (endpoint,) = [doc for doc in docs if doc["kind"] == "ModelEndpoint"]
    assert endpoint["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == (
        "SkipDryRunOnMissingResource=true"
    )
    _, problems = validate_resource(endpoint)
    assert not problems
    (operator_app,) = [doc for doc in docs if doc["metadata"]["name"] == "mme-operator"]
    assert operator_app["spec"]["source"]["path"] == "helm/mme-operator"


@pytest.mark.parametrize("reason", ["Thrashing", "MemoryPressure"])
def test_a_cache_that_thrashes_stays_healthy_and_says_so(reason: str) -> None:
    # The endpoint serves (slower) and the signal moves with traffic: no Degraded, which
    # would fail a sync wave or page someone at every burst of cold models.
    obj = load("testdata/healthy-cache-thrashing.yaml")
    cache = next(c for c in obj["status"]["conditions"] if c["type"] == "CacheHealthy")
    cache["reason"] = reason

    health = health_of(obj)

    assert health["status"] == "Healthy"
    assert f"CacheHealthy False ({reason})" in health["message"]


def test_a_healthy_cache_adds_nothing_to_the_message() -> None:
    obj = load("testdata/healthy-cache-thrashing.yaml")
    cache = next(c for c in obj["status"]["conditions"] if c["type"] == "CacheHealthy")
    cache.update(status="True", reason="CacheEffective", message="models stay loaded")

    assert health_of(obj) == {
        "status": "Healthy",
        "message": "Endpoint ml-small-llms is InService with 1 model",
    }

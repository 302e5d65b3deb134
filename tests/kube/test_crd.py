"""The CRD as a real API server runs it: examples pass, CEL rules refuse with their message,
``kubectl explain`` and printer columns work, and the endpoint's identity cannot change."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
import yaml
from mme_operator.api.crd import build_crd

from tests.cluster import ControlPlane
from tests.unit.api.documents import GOOD, MINIMAL, changed, example_documents
from tests.unit.api.test_cel_rules import BAD, with_changes

pytestmark = pytest.mark.envtest


def _in_namespace(plane: ControlPlane, doc: dict[str, Any]) -> dict[str, Any]:
    plane.ensure_namespace(doc["metadata"].get("namespace", "default"))
    return doc


def _named(doc: dict[str, Any], prefix: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["metadata"]["name"] = f"{prefix}-{uuid.uuid4().hex[:6]}"
    doc["metadata"].setdefault("namespace", "default")
    return doc


@pytest.mark.parametrize(
    ("where", "doc"), [pytest.param(where, doc, id=where) for where, doc in example_documents()]
)
def test_every_example_passes_server_side_validation(
    control_plane: ControlPlane, where: str, doc: dict[str, Any]
) -> None:
    out = control_plane.apply([_in_namespace(control_plane, doc)], "--dry-run=server")
    assert "(server dry run)" in out, where


@pytest.mark.parametrize(("changes", "violations"), BAD)
def test_each_cel_rule_is_enforced_by_the_server_with_its_message(
    control_plane: ControlPlane, changes: dict[str, Any], violations: list[str]
) -> None:
    doc = _in_namespace(control_plane, with_changes(changes))
    refused = control_plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=_yaml(doc), check=False
    )
    assert refused.returncode != 0
    for violation in violations:
        path, message = violation.split(": ", 1)
        assert path in refused.stderr
        assert message in refused.stderr


@pytest.mark.parametrize("spec", [[1, 2], "a string", 42, {"region": ["us-east-1"]}])
def test_a_spec_that_is_not_an_object_is_refused(control_plane: ControlPlane, spec: Any) -> None:
    doc = _named(MINIMAL, "odd")
    doc["spec"] = spec
    refused = control_plane.kubectl(
        "create", "-f", "-", stdin=_yaml(_in_namespace(control_plane, doc)), check=False
    )
    assert refused.returncode != 0
    assert "must be of type" in refused.stderr


def test_explain_documents_dynamic_batching(control_plane: ControlPlane) -> None:
    out = control_plane.kubectl("explain", "modelendpoint.spec.models.dynamicBatching").stdout
    assert "Enable dynamic batching (needs maxBatchSize > 0)." in out
    assert "maxQueueDelayMicroseconds" in out
    assert "preferredBatchSize" in out


def test_explain_documents_the_load_check_and_where_the_instance_choice_is(
    control_plane: ControlPlane,
) -> None:
    loaded = control_plane.kubectl("explain", "modelendpoint.status.models.loaded").stdout
    assert "load check" in loaded and "LoadFailed" in loaded
    state = control_plane.kubectl("explain", "modelendpoint.status.models.state").stdout
    assert "Loading" in state and "LoadFailed" in state
    instance = control_plane.kubectl("explain", "modelendpoint.spec.instanceType").stdout
    assert "status.instanceType" in instance and "status.sizing" not in instance
    # Where it points is there.
    control_plane.kubectl("explain", "modelendpoint.status.instanceTypeReason")


def test_get_shows_the_printer_columns(control_plane: ControlPlane) -> None:
    doc = _in_namespace(control_plane, _named(MINIMAL, "columns"))
    control_plane.apply([doc])
    name, namespace = doc["metadata"]["name"], doc["metadata"]["namespace"]
    out = control_plane.kubectl("get", "mep", name, "-n", namespace).stdout.splitlines()
    columns = build_crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    assert out[0].split() == ["NAME", *(c["name"].upper() for c in columns)]
    assert out[0].split()[1:5] == ["PHASE", "ENDPOINT", "MODELS", "INSTANCE"]
    assert out[1].split()[0] == name
    # Name and age only: without an operator the status columns are empty.
    assert len(out[1].split()) == 2
    control_plane.kubectl("delete", "mep", name, "-n", namespace)


IMMUTABLE = [
    pytest.param("spec.region", "eu-west-1", "spec.region: region cannot change", id="region"),
    pytest.param(
        "spec.endpointName", "renamed", "spec.endpointName: endpointName cannot change", id="name"
    ),
    pytest.param(
        "spec.artifacts.bucket",
        "other-bucket",
        "spec.artifacts: artifacts.bucket and artifacts.prefix cannot change",
        id="bucket",
    ),
    pytest.param(
        "spec.artifacts.prefix",
        "moved/",
        "spec.artifacts: artifacts.bucket and artifacts.prefix cannot change",
        id="prefix",
    ),
]


@pytest.mark.parametrize(("path", "value", "message"), IMMUTABLE)
def test_the_endpoint_identity_cannot_change(
    control_plane: ControlPlane, path: str, value: str, message: str
) -> None:
    doc = _in_namespace(control_plane, _named(GOOD, "fixed"))
    doc = changed(doc, "spec.endpointName", doc["metadata"]["name"])
    control_plane.apply([doc])

    refused = control_plane.kubectl(
        "apply", "-f", "-", stdin=_yaml(changed(doc, path, value)), check=False
    )

    assert refused.returncode != 0
    field, rule = message.split(": ", 1)
    assert f"{field}: Invalid value" in refused.stderr
    assert rule in refused.stderr
    assert "delete this ModelEndpoint and create a new one" in refused.stderr
    name, namespace = doc["metadata"]["name"], doc["metadata"]["namespace"]
    kept = control_plane.get("mep", name, "-n", namespace)
    assert kept["spec"]["region"] == doc["spec"]["region"]
    assert kept["spec"]["endpointName"] == name
    control_plane.kubectl("delete", "mep", name, "-n", namespace)


def test_an_endpoint_name_cannot_be_added_or_removed(control_plane: ControlPlane) -> None:
    doc = _in_namespace(control_plane, _named(GOOD, "derived"))
    assert "endpointName" not in doc["spec"]
    control_plane.apply([doc])

    refused = control_plane.kubectl(
        "apply", "-f", "-", stdin=_yaml(changed(doc, "spec.endpointName", "x")), check=False
    )

    assert refused.returncode != 0
    assert "endpointName cannot change" in refused.stderr
    # Everything else may change, e.g. the instance type.
    control_plane.apply([changed(doc, "spec.instanceType", "ml.g5.2xlarge")])
    control_plane.kubectl("delete", "mep", doc["metadata"]["name"], "-n", "ml")


def _yaml(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc)


@pytest.mark.parametrize(
    "source",
    [
        "https://h:99999/x",
        "https://h:0/x",
        "https://user:SECRET@host/m",
        "file://host/path",
        "https://host/m\nx",
    ],
)
def test_the_server_refuses_malformed_sources(control_plane: ControlPlane, source: str) -> None:
    doc = _in_namespace(control_plane, _named(MINIMAL, "src"))
    doc["spec"]["models"][0]["source"] = source
    refused = control_plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=_yaml(doc), check=False
    )
    assert refused.returncode != 0
    assert "spec.models[0].source" in refused.stderr


@pytest.mark.parametrize(
    "source",
    ["https://127.0.0.1:8443/m.onnx", "https://[::1]:443/m", "https://host", "file:///models/m"],
)
def test_the_server_accepts_well_formed_sources(control_plane: ControlPlane, source: str) -> None:
    doc = _in_namespace(control_plane, _named(MINIMAL, "src"))
    doc["spec"]["models"][0]["source"] = source
    assert "(server dry run)" in control_plane.apply([doc], "--dry-run=server")


def test_the_server_refuses_control_characters_in_the_prefix(control_plane: ControlPlane) -> None:
    doc = _in_namespace(control_plane, _named(MINIMAL, "pfx"))
    doc["spec"]["artifacts"]["prefix"] = "team\x1b[31m/"
    refused = control_plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=_yaml(doc), check=False
    )
    assert refused.returncode != 0
    assert "spec.artifacts.prefix" in refused.stderr

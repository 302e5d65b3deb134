"""The Model kind's API: parsing, the served name, the inline-model form, the CRD."""

from __future__ import annotations

from typing import Any

from mme_operator.api.crd import build_model_crd
from mme_operator.api.model import validate_model

from tests.unit.api.cel_eval import cel_violations


def model_doc(object_name: str = "bert", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "Model",
        "metadata": {"name": object_name, "namespace": "team-a", "uid": "u1", "generation": 1},
        "spec": {
            "endpointRef": {"name": "shared", "namespace": "ml-platform"},
            "source": "s3://team-a-training/bert/model.onnx",
            "platform": "onnxruntime_onnx",
            "maxBatchSize": 8,
            **spec,
        },
    }


SCHEMA = build_model_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_a_model_is_served_as_namespace_slash_name() -> None:
    model, problems = validate_model(model_doc())
    assert problems == [] and model is not None
    assert model.served_name == "team-a/bert"
    assert model.endpoint_key == ("ml-platform", "shared")
    inline = model.as_model_spec()
    assert inline.name == "team-a/bert" and inline.max_batch_size == 8
    assert inline.platform == "onnxruntime_onnx"


def test_the_endpoint_namespace_defaults_to_the_models_own() -> None:
    model, _ = validate_model(model_doc(endpointRef={"name": "shared"}))
    assert model is not None and model.endpoint_key == ("team-a", "shared")


def test_a_dotted_metadata_name_needs_spec_name() -> None:
    model, problems = validate_model(model_doc("bert.v2"))
    assert model is None and [p.path for p in problems] == ["spec.name"]
    assert cel_violations(SCHEMA, model_doc("bert.v2"))
    named = model_doc("bert.v2", name="bert-v2")
    assert cel_violations(SCHEMA, named) == []
    model, problems = validate_model(named)
    assert model is not None and model.served_name == "team-a/bert-v2"


def test_an_inline_models_rules_hold_for_a_model() -> None:
    doc = model_doc(maxBatchSize=0, dynamicBatching={"maxQueueDelayMicroseconds": 100})
    model, problems = validate_model(doc)
    assert model is None and any("dynamicBatching" in p.path for p in problems)
    assert cel_violations(SCHEMA, doc)


def test_the_model_crd_has_the_printer_columns_and_status() -> None:
    version = build_model_crd()["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Endpoint",
        "State",
        "TargetModel",
        "Age",
    ]
    assert version["subresources"] == {"status": {}}
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert "endpointRef" in spec["required"] and "source" in spec["required"]
    assert "name" not in spec["required"]


def test_the_example_models_are_valid() -> None:
    import yaml

    from tests.unit.api.documents import REPO

    path = REPO / "examples" / "shared-endpoint" / "models.yaml"
    docs = list(yaml.safe_load_all(path.read_text()))
    served = set()
    for doc in docs:
        model, problems = validate_model(doc)
        assert problems == [] and model is not None
        assert cel_violations(SCHEMA, doc) == []
        served.add(model.served_name)
    assert served == {"team-a/bert", "team-b/bert"}

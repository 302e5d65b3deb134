"""The `<name>-models` ConfigMap's content is a pure function of the status."""

from mme_operator.api import ModelEndpointStatus, ModelState, ModelStatus
from mme_operator.reconcile.client_mapping import models_configmap

IDS = {"name": "llms", "namespace": "ml", "uid": "uid-1", "region": "eu-west-1"}


def test_no_configmap_before_there_is_an_endpoint() -> None:
    assert models_configmap(**IDS, status=ModelEndpointStatus()) is None


def test_only_models_whose_archive_is_in_s3_are_listed() -> None:
    status = ModelEndpointStatus(
        endpoint_name="ml-llms",
        models=[
            ModelStatus(name="bert", target_model="bert-1.tar.gz", state=ModelState.AVAILABLE),
            ModelStatus(name="tok", target_model="tok-2.tar.gz", state=ModelState.PENDING),
            ModelStatus(name="bad", state=ModelState.FAILED, message="no source"),
        ],
    )
    body = models_configmap(**IDS, status=status)
    assert body is not None
    assert body["metadata"]["name"] == "llms-models"
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    data = body["data"]
    assert data["bert"] == "bert-1.tar.gz"
    assert "tok" not in data and "bad" not in data
    assert (data["endpoint.name"], data["endpoint.region"]) == ("ml-llms", "eu-west-1")

"""kopf's last-handled state is kept as a digest, so 500 models fit in the annotations budget."""

import copy

import kopf
from mme_operator.handlers import DIGEST_ANNOTATION, DigestDiffBaseStorage


def body_with(models: int, annotations=None) -> dict:
    return {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "big", "namespace": "ml", "annotations": dict(annotations or {})},
        "spec": {
            "models": [
                {"name": f"model-{i:03d}", "source": f"s3://bucket/models/{i}/model.onnx"}
                for i in range(models)
            ]
        },
    }


def stored_annotations(raw: dict) -> dict:
    storage = DigestDiffBaseStorage()
    body = kopf.Body(raw)
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    return dict(patch["metadata"]["annotations"])


def test_500_models_cost_one_short_annotation():
    annotations = stored_annotations(body_with(500))
    assert list(annotations) == [DIGEST_ANNOTATION]
    assert len(annotations[DIGEST_ANNOTATION]) == 64  # a sha256, whatever the spec's size


def test_unchanged_spec_reads_back_as_the_current_essence_and_a_change_as_a_diff():
    storage = DigestDiffBaseStorage()
    raw = body_with(3)
    raw["metadata"]["annotations"].update(stored_annotations(raw))
    body = kopf.Body(raw)
    assert storage.fetch(body=body) == storage.build(body=body)

    changed = copy.deepcopy(raw)
    changed["spec"]["models"].pop()
    body = kopf.Body(changed)
    assert storage.fetch(body=body) != storage.build(body=body)


def test_never_handled_object_has_no_last_state():
    assert DigestDiffBaseStorage().fetch(body=kopf.Body(body_with(1))) is None


def test_operator_bookkeeping_annotations_do_not_count_as_changes_but_adoption_does():
    storage = DigestDiffBaseStorage()
    raw = body_with(2)
    essence = storage.build(body=kopf.Body(raw))
    raw["metadata"]["annotations"]["mme-operator.io/reconcile_handler"] = '{"retries": 1}'
    assert storage.build(body=kopf.Body(raw)) == essence
    raw["metadata"]["annotations"]["mme-operator.io/adopt-endpoint"] = "ml-big"
    assert storage.build(body=kopf.Body(raw)) != essence

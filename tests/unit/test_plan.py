"""The plan is a pure function: (desired, observed) -> actions. No server needed."""

import copy
import dataclasses

import pytest
from mme_operator.api import ModelEndpointStatus, Reason, parse_resource
from mme_operator.artifacts import StoredArchive
from mme_operator.reconcile import build_desired, plan_delete, plan_reconcile
from mme_operator.reconcile import plan as p
from mme_operator.reconcile.observe import ObservedForDeletion, ObservedState
from mme_operator.sagemaker import EndpointState
from mme_operator.sagemaker.autoscaling import ObservedScaling

UID = "0f3c2b4e-uid"
DOC = {
    "apiVersion": "mme-operator.io/v1alpha1",
    "kind": "ModelEndpoint",
    "metadata": {"name": "small", "namespace": "ml", "uid": UID, "generation": 3},
    "spec": {
        "region": "us-east-1",
        "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
        "artifacts": {"bucket": "models"},
        "instanceType": "ml.g5.xlarge",
        "models": [
            {"name": "bert", "source": "s3://src/bert.onnx", "platform": "onnxruntime_onnx"},
            {"name": "echo", "source": "s3://src/echo.py", "backend": "python", "warmup": True},
        ],
    },
}
FINGERPRINTS = {"bert": "etag-1", "echo": "etag-2"}


def desired_for(doc=DOC, fingerprints=FINGERPRINTS):
    return build_desired(parse_resource(copy.deepcopy(doc)), fingerprints)


def changed(**spec_changes):
    doc = copy.deepcopy(DOC)
    doc["spec"].update(spec_changes)
    return doc


def stored(desired, owner=UID):
    return {a.key: StoredArchive(a.key, 10, "sha", owner, a.model_name) for a in desired.archives}


def endpoint(desired, status="InService", config=None, failure=None):
    return EndpointState(
        name=desired.endpoint_name,
        arn=f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{desired.endpoint_name}",
        status=status,
        config_name=config or desired.sagemaker.endpoint_config.name,
        failure_reason=failure,
    )


def observed(desired, **overrides):
    base = {
        "endpoint": endpoint(desired),
        "endpoint_owner_uid": UID,
        "model_exists": True,
        "endpoint_config_exists": True,
        "archives": stored(desired),
        "scaling": None,
    }
    base.update(overrides)
    return ObservedState(**base)


def kinds(plan):
    return [type(a).__name__ for a in plan.actions]


def test_nothing_exists_creates_everything_in_order_then_waits():
    d = desired_for()
    plan = plan_reconcile(
        d,
        observed(
            d,
            endpoint=None,
            endpoint_owner_uid=None,
            model_exists=False,
            endpoint_config_exists=False,
            archives={},
        ),
    )
    assert kinds(plan) == [
        "UploadArchive",
        "UploadArchive",
        "CreateModel",
        "CreateEndpointConfig",
        "CreateEndpoint",
    ]
    assert plan.wait is not None and plan.wait.reason == Reason.CREATING


def test_steady_state_loads_each_new_target_model_once():
    d = desired_for()
    plan = plan_reconcile(d, observed(d))
    bert, echo = (next(a for a in d.archives if a.model_name == n) for n in ("bert", "echo"))
    assert plan.actions == (
        p.LoadCheck(d.endpoint_name, "bert", bert.target_model, warm_up=False),
        p.LoadCheck(d.endpoint_name, "echo", echo.target_model, warm_up=True),
    )
    checked = ModelEndpointStatus.model_validate(
        {
            "observedGeneration": 3,
            "models": [
                {"name": "bert", "targetModel": bert.target_model, "loaded": True},
                {
                    "name": "echo",
                    "targetModel": echo.target_model,
                    "loaded": True,
                    "warmedUp": True,
                },
            ],
        }
    )
    assert plan_reconcile(d, observed(d), checked).actions == ()


def test_without_the_load_check_only_warmup_models_are_invoked():
    d = build_desired(parse_resource(copy.deepcopy(DOC)), FINGERPRINTS, load_check=False)
    assert [(a.model_name, a.warm_up) for a in plan_reconcile(d, observed(d)).actions] == [
        ("echo", True)
    ]


def test_a_load_failure_is_not_probed_again_until_the_spec_changes():
    d = desired_for()
    bert, echo = (next(a for a in d.archives if a.model_name == n) for n in ("bert", "echo"))
    models = [
        {"name": "bert", "targetModel": bert.target_model, "loaded": False, "state": "LoadFailed"},
        {"name": "echo", "targetModel": echo.target_model, "loaded": True, "warmedUp": True},
    ]
    same = ModelEndpointStatus.model_validate({"observedGeneration": 3, "models": models})
    assert plan_reconcile(d, observed(d), same).actions == ()
    # Another generation (e.g. a new image) may load it: checked once more.
    older = ModelEndpointStatus.model_validate({"observedGeneration": 2, "models": models})
    assert [a.model_name for a in plan_reconcile(d, observed(d), older).actions] == ["bert"]


def test_adding_a_model_uploads_one_archive_and_keeps_the_endpoint_config():
    before = desired_for()
    doc = copy.deepcopy(DOC)
    doc["spec"]["models"].append(
        {"name": "gpt", "source": "s3://src/gpt.onnx", "platform": "onnxruntime_onnx"}
    )
    after = desired_for(doc, {**FINGERPRINTS, "gpt": "etag-3"})
    assert after.sagemaker.endpoint_config.name == before.sagemaker.endpoint_config.name
    plan = plan_reconcile(after, observed(after, archives=stored(before)))
    uploads = [a for a in plan.actions if isinstance(a, p.UploadArchive)]
    assert [u.archive.model_name for u in uploads] == ["gpt"]
    assert not any(isinstance(a, p.UpdateEndpoint | p.CreateEndpointConfig) for a in plan.actions)


def test_changed_weights_get_a_new_key_and_the_stale_owned_archive_is_deleted():
    before = desired_for()
    after = desired_for(fingerprints={**FINGERPRINTS, "bert": "etag-9"})
    plan = plan_reconcile(after, observed(after, archives=stored(before)))
    old_bert = next(a.key for a in before.archives if a.model_name == "bert")
    assert [type(a).__name__ for a in plan.actions[:2]] == ["UploadArchive", "DeleteArchive"]
    assert plan.actions[1] == p.DeleteArchive(old_bert)


def test_foreign_archives_are_never_deleted():
    d = desired_for()
    foreign = StoredArchive("ml/small/other-0123456789ab.tar.gz", 1, None, None, None)
    theirs = StoredArchive("ml/small/x-0123456789ab.tar.gz", 1, None, "someone-else", "x")
    archives = {**stored(d), foreign.key: foreign, theirs.key: theirs}
    plan = plan_reconcile(d, observed(d, archives=archives))
    assert not any(isinstance(a, p.DeleteArchive) for a in plan.actions)


def test_unreadable_source_keeps_that_models_archive():
    before = desired_for()
    after = desired_for(fingerprints={"echo": "etag-2"})  # bert's source could not be read
    plan = plan_reconcile(after, observed(after, archives=stored(before)), unavailable=("bert",))
    assert not any(isinstance(a, p.DeleteArchive) for a in plan.actions)


def test_instance_type_change_updates_the_endpoint_to_a_new_config():
    old = desired_for()
    new = desired_for(changed(instanceType="ml.g5.2xlarge"))
    assert new.sagemaker.endpoint_config.name != old.sagemaker.endpoint_config.name
    plan = plan_reconcile(
        new,
        observed(
            new,
            endpoint=endpoint(new, config=old.sagemaker.endpoint_config.name),
            endpoint_config_exists=False,
        ),
    )
    assert kinds(plan) == ["CreateEndpointConfig", "UpdateEndpoint"]
    assert plan.wait is not None and plan.wait.reason == Reason.UPDATING


AUTOSCALING = {"minInstances": 1, "maxInstances": 4, "targetInvocationsPerInstance": 100}


def test_an_autoscaled_update_keeps_the_live_instance_count_and_the_scaling():
    old = desired_for(changed(autoscaling=AUTOSCALING))
    new = desired_for(changed(autoscaling=AUTOSCALING, image="example.com/tritonserver:1"))
    scaling = ObservedScaling(min_capacity=1, max_capacity=4)
    plan = plan_reconcile(
        new,
        observed(
            new,
            endpoint=endpoint(new, config=old.sagemaker.endpoint_config.name),
            scaling=scaling,
            serving_instance_type="ml.g5.xlarge",
        ),
    )
    [update] = plan.actions
    assert isinstance(update, p.UpdateEndpoint) and update.retain_instance_count


def test_autoscaling_is_removed_before_an_instance_type_change():
    old = desired_for(changed(autoscaling=AUTOSCALING))
    new = desired_for(changed(autoscaling=AUTOSCALING, instanceType="ml.g5.2xlarge"))
    scaling = ObservedScaling(min_capacity=1, max_capacity=4)
    plan = plan_reconcile(
        new,
        observed(
            new,
            endpoint=endpoint(new, config=old.sagemaker.endpoint_config.name),
            scaling=scaling,
            serving_instance_type="ml.g5.xlarge",
        ),
    )
    assert kinds(plan) == ["RemoveScaling", "UpdateEndpoint"]
    assert plan.actions[1].retain_instance_count


def test_without_autoscaling_an_update_takes_the_specs_instance_count():
    old = desired_for()
    new = desired_for(changed(instanceCount=2))
    plan = plan_reconcile(
        new, observed(new, endpoint=endpoint(new, config=old.sagemaker.endpoint_config.name))
    )
    [update] = plan.actions
    assert isinstance(update, p.UpdateEndpoint) and not update.retain_instance_count


def test_a_failed_update_is_retried_once_per_retry_annotation_value():
    old = desired_for()
    doc = changed(instanceType="ml.g5.2xlarge")
    doc["metadata"] = {**doc["metadata"], "annotations": {"mme-operator.io/retry-update": "a"}}
    new = desired_for(doc)
    after_rollback = observed(
        new, endpoint=endpoint(new, config=old.sagemaker.endpoint_config.name, failure="capacity")
    )
    status = ModelEndpointStatus(
        endpoint_config_name=old.sagemaker.endpoint_config.name,
        requested_endpoint_config_name=new.sagemaker.endpoint_config.name,
        failed_endpoint_config_name=new.sagemaker.endpoint_config.name,
    )
    plan = plan_reconcile(new, after_rollback, status)
    assert kinds(plan) == ["UpdateEndpoint"]
    assert plan.retry_token == "a"

    consumed = status.model_copy(update={"retry_update_consumed": "a"})
    plan = plan_reconcile(new, after_rollback, consumed)
    assert plan.actions == ()
    assert plan.blocked is not None and "mme-operator.io/retry-update" in plan.blocked.message


def test_failed_update_is_not_reapplied_until_the_spec_changes():
    old = desired_for()
    new = desired_for(changed(instanceType="ml.g5.2xlarge"))
    after_rollback = observed(
        new, endpoint=endpoint(new, config=old.sagemaker.endpoint_config.name, failure="capacity")
    )
    status = ModelEndpointStatus(
        endpoint_config_name=old.sagemaker.endpoint_config.name,
        requested_endpoint_config_name=new.sagemaker.endpoint_config.name,
    )
    plan = plan_reconcile(new, after_rollback, status)
    assert not any(isinstance(a, p.UpdateEndpoint) for a in plan.actions)
    assert plan.blocked is not None and plan.blocked.reason == Reason.UPDATE_FAILED
    assert "capacity" in plan.blocked.message
    assert plan.failed_config == new.sagemaker.endpoint_config.name
    # A different spec gets a different config name, which is tried.
    newer = desired_for(changed(instanceType="ml.g5.4xlarge"))
    retried = plan_reconcile(
        newer,
        observed(newer, endpoint=endpoint(newer, config=old.sagemaker.endpoint_config.name)),
        status,
    )
    assert "UpdateEndpoint" in kinds(retried)


def test_busy_endpoint_means_wait():
    d = desired_for()
    for state in ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"):
        plan = plan_reconcile(d, observed(d, endpoint=endpoint(d, status=state)))
        assert plan.wait is not None, state
        assert not any(isinstance(a, p.UpdateEndpoint | p.CreateEndpoint) for a in plan.actions)


def test_failed_endpoint_on_the_desired_config_is_blocked_with_the_reason():
    d = desired_for()
    plan = plan_reconcile(
        d, observed(d, endpoint=endpoint(d, status="Failed", failure="image not found"))
    )
    assert plan.blocked is not None and plan.blocked.reason == Reason.ENDPOINT_FAILED
    assert "image not found" in plan.blocked.message


def test_failed_endpoint_is_recreated_when_the_spec_changed():
    old = desired_for()
    new = desired_for(
        changed(image="123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:x")
    )
    plan = plan_reconcile(
        new,
        observed(
            new, endpoint=endpoint(new, status="Failed", config=old.sagemaker.endpoint_config.name)
        ),
    )
    assert "DeleteEndpoint" in kinds(plan)


def test_an_endpoint_that_is_not_ours_is_neither_touched_nor_adopted_without_asking():
    d = desired_for()
    plan = plan_reconcile(d, observed(d, endpoint_owner_uid=None))
    assert plan.blocked is not None and plan.blocked.reason == Reason.NOT_OWNED
    assert "mme-operator.io/adopt-endpoint" in plan.blocked.message
    assert not any(isinstance(a, p.UpdateEndpoint | p.DeleteEndpoint) for a in plan.actions)
    doc = copy.deepcopy(DOC)
    doc["metadata"]["annotations"] = {"mme-operator.io/adopt-endpoint": d.endpoint_name}
    adopting = desired_for(doc)
    plan = plan_reconcile(adopting, observed(adopting, endpoint_owner_uid=None))
    assert plan.blocked is not None and "MME_ALLOW_ENDPOINT_ADOPTION" in plan.blocked.message
    assert plan.actions == ()
    allowed = dataclasses.replace(adopting, adoption_allowed=True)
    plan = plan_reconcile(allowed, observed(allowed, endpoint_owner_uid=None))
    assert plan.blocked is None
    assert kinds(plan)[0] == "AdoptEndpoint"


@pytest.mark.parametrize(
    "tags",
    [
        {"endpoint_owner_uid": "uid-of-another", "endpoint_claimed": True},
        {"endpoint_owner_uid": None, "endpoint_claimed": True},  # managed-by only
    ],
)
def test_an_endpoint_another_modelendpoint_holds_is_never_adopted_or_touched(tags):
    doc = copy.deepcopy(DOC)
    d = desired_for(doc)
    doc["metadata"]["annotations"] = {"mme-operator.io/adopt-endpoint": d.endpoint_name}
    adopting = dataclasses.replace(desired_for(doc), adoption_allowed=True)
    plan = plan_reconcile(adopting, observed(adopting, **tags, archives={}))
    assert plan.blocked is not None and plan.blocked.reason == Reason.NOT_OWNED
    assert "another ModelEndpoint" in plan.blocked.message
    assert "uid-of-another" not in plan.blocked.message
    # Not even an archive upload: the endpoint's ModelDataUrl is not ours to fill.
    assert plan.actions == ()


def test_superseded_configs_and_models_are_deleted_only_in_steady_state():
    d = desired_for()
    plan = plan_reconcile(
        d, observed(d, superseded_configs=("old-cfg",), superseded_models=("old-model",))
    )
    assert p.DeleteEndpointConfig("old-cfg") in plan.actions
    assert p.DeleteModel("old-model") in plan.actions


def deletion(desired, **overrides):
    base = {
        "endpoint": endpoint(desired),
        "endpoint_owner_uid": UID,
        "configs": ("cfg-1",),
        "models": ("model-1",),
        "archives": stored(desired),
        "scaling": None,
    }
    base.update(overrides)
    return ObservedForDeletion(**base)


def test_delete_removes_the_endpoint_first_and_waits():
    d = desired_for()
    plan = plan_delete(d, deletion(d))
    assert kinds(plan) == ["DeleteEndpoint"]
    assert plan.wait is not None


def test_delete_then_removes_configs_models_and_owned_archives_only():
    d = desired_for()
    foreign = StoredArchive("ml/small/other-0123456789ab.tar.gz", 1, None, None, None)
    plan = plan_delete(d, deletion(d, endpoint=None, archives={**stored(d), foreign.key: foreign}))
    assert kinds(plan) == ["DeleteEndpointConfig", "DeleteModel", "DeleteArchive", "DeleteArchive"]
    assert p.DeleteArchive(foreign.key) not in plan.actions


def test_retain_deletes_nothing():
    d = desired_for(changed(deletionPolicy="Retain"))
    assert plan_delete(d, deletion(d)).actions == ()


def test_plan_reads_as_numbered_lines():
    d = desired_for()
    plan = plan_reconcile(d, observed(d, endpoint=None, archives={}))
    lines = plan.describe()
    assert lines[0].startswith("1. upload model 'bert' to ml/small/bert-")
    assert lines[-1].startswith(f"then wait: endpoint {d.endpoint_name} is being created")


CREATES_OR_CHANGES_SAGEMAKER = (
    p.CreateModel
    | p.CreateEndpointConfig
    | p.CreateEndpoint
    | p.UpdateEndpoint
    | p.DeleteEndpoint
    | p.DeleteModel
    | p.DeleteEndpointConfig
    | p.AdoptEndpoint
    | p.ApplyScaling
)


def test_no_servable_model_creates_nothing_on_sagemaker_and_says_why():
    d = desired_for(fingerprints={})  # every source unreadable: no archive can be made
    nothing = observed(
        d,
        endpoint=None,
        endpoint_owner_uid=None,
        model_exists=False,
        endpoint_config_exists=False,
        archives={},
    )
    plan = plan_reconcile(d, nothing, unavailable=("bert", "echo"))
    assert plan.actions == ()
    assert plan.blocked is not None and plan.blocked.reason == Reason.NO_SERVABLE_MODELS
    assert "model 'bert'" in plan.blocked.message and "model 'echo'" in plan.blocked.message
    assert "no SageMaker model, endpoint config or endpoint is created" in plan.blocked.message
    assert any("blocked (NoServableModels)" in line for line in plan.describe())
    # One servable model is enough to create the endpoint.
    one = desired_for(fingerprints={"bert": "etag-1"})
    plan = plan_reconcile(one, nothing, unavailable=("echo",))
    assert plan.blocked is None
    assert "CreateEndpoint" in kinds(plan)


def test_no_servable_model_leaves_an_existing_endpoint_as_it_is():
    before = desired_for()
    d = desired_for(changed(instanceType="ml.g5.2xlarge"), fingerprints={})
    # The endpoint runs another config (an update would follow) and none of our archives is left.
    running = observed(
        d, endpoint=endpoint(d, config=before.sagemaker.endpoint_config.name), archives={}
    )
    plan = plan_reconcile(d, running, unavailable=("bert", "echo"))
    assert not any(isinstance(a, CREATES_OR_CHANGES_SAGEMAKER) for a in plan.actions)
    assert plan.wait is None
    assert plan.blocked is not None and plan.blocked.reason == Reason.NO_SERVABLE_MODELS
    assert f"endpoint {d.endpoint_name} (InService) is left as it is" in plan.blocked.message
    # Sources unreadable since the last pass, their archives still in S3: the endpoint
    # serves them, so nothing changes and nothing is deleted.
    served = observed(d, archives=stored(before))
    plan = plan_reconcile(d, served, unavailable=("bert", "echo"))
    assert plan.blocked is None
    assert not any(isinstance(a, p.DeleteArchive) for a in plan.actions)


def test_models_whose_keys_another_owner_holds_are_not_servable():
    d = desired_for()
    foreign = observed(
        d,
        endpoint=None,
        endpoint_owner_uid=None,
        model_exists=False,
        endpoint_config_exists=False,
        archives=stored(d, owner="someone-else"),
    )
    plan = plan_reconcile(d, foreign)
    assert plan.blocked is not None and plan.blocked.reason == Reason.NO_SERVABLE_MODELS
    assert "archive key of model 'bert' is taken" in plan.blocked.message
    assert not any(isinstance(a, CREATES_OR_CHANGES_SAGEMAKER) for a in plan.actions)

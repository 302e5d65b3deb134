"""Superseded archives stay for a grace period: a pure function of (desired, observed,
last status, now). No server needed."""

import copy
import dataclasses
from datetime import UTC, datetime, timedelta

from mme_operator.api import ModelEndpointStatus, ModelStatus, parse_resource
from mme_operator.api.status import rfc3339
from mme_operator.artifacts import StoredArchive
from mme_operator.reconcile import build_desired, plan_reconcile
from mme_operator.reconcile import plan as p
from mme_operator.reconcile.observe import ObservedState
from mme_operator.sagemaker import EndpointState

UID = "uid-grace"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DOC = {
    "apiVersion": "mme-operator.io/v1alpha1",
    "kind": "ModelEndpoint",
    "metadata": {"name": "g", "namespace": "ml", "uid": UID, "generation": 2},
    "spec": {
        "region": "us-east-1",
        "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
        "artifacts": {"bucket": "models", "gracePeriodSeconds": 600},
        "instanceType": "ml.g5.xlarge",
        "models": [
            {"name": "bert", "source": "s3://src/bert.onnx", "platform": "onnxruntime_onnx"}
        ],
    },
}


def desired(etag: str, grace: int | None = 600, default: int = 3600):  # type: ignore[no-untyped-def]
    doc = copy.deepcopy(DOC)
    if grace is None:
        del doc["spec"]["artifacts"]["gracePeriodSeconds"]
    else:
        doc["spec"]["artifacts"]["gracePeriodSeconds"] = grace
    return build_desired(parse_resource(doc), {"bert": etag}, default_grace_period_seconds=default)


def observed(*states, owner=UID):  # type: ignore[no-untyped-def]
    archives = {}
    for d in states:
        for a in d.archives:
            archives[a.key] = StoredArchive(a.key, 10, "sha", owner, a.model_name)
    current = states[-1]
    return ObservedState(
        endpoint=EndpointState(
            name=current.endpoint_name,
            arn="arn:aws:sagemaker:us-east-1:123456789012:endpoint/x",
            status="InService",
            config_name=current.sagemaker.endpoint_config.name,
        ),
        endpoint_owner_uid=UID,
        model_exists=True,
        endpoint_config_exists=True,
        archives=archives,
        scaling=None,
    )


def served(d, **previous):  # type: ignore[no-untyped-def]
    [a] = d.archives
    model = ModelStatus(name="bert", target_model=a.target_model, s3_key=a.key, **previous)
    return ModelEndpointStatus(models=[model])


def deleted(plan: p.Plan) -> list[str]:
    return [a.key for a in plan.actions if isinstance(a, p.DeleteArchive)]


def test_a_changed_model_keeps_its_previous_archive_for_the_grace_period() -> None:
    old, new = desired("v1"), desired("v2")
    plan = plan_reconcile(new, observed(old, new), served(old), now=NOW)

    assert deleted(plan) == []
    [kept] = plan.superseded
    assert kept.key == old.archives[0].key
    assert kept.target_model == old.archives[0].target_model
    assert kept.expires_at == NOW + timedelta(seconds=600)
    assert any("keep previous archive" in line for line in plan.describe())


def test_the_previous_archive_goes_once_its_grace_period_ends() -> None:
    old, new = desired("v1"), desired("v2")
    [o] = old.archives
    status = served(
        new,
        previous_target_model=o.target_model,
        previous_s3_key=o.key,
        previous_expires_at=rfc3339(NOW + timedelta(seconds=600)),
    )
    before = plan_reconcile(new, observed(old, new), status, now=NOW + timedelta(seconds=599))
    assert deleted(before) == [] and len(before.superseded) == 1

    after = plan_reconcile(new, observed(old, new), status, now=NOW + timedelta(seconds=600))
    assert deleted(after) == [o.key] and after.superseded == ()


def test_zero_grace_deletes_at_once_as_before() -> None:
    old, new = desired("v1", grace=0), desired("v2", grace=0)
    plan = plan_reconcile(new, observed(old, new), served(old), now=NOW)
    assert deleted(plan) == [old.archives[0].key]
    assert plan.superseded == ()


def test_the_operator_setting_is_the_default() -> None:
    assert desired("v1", grace=None, default=3600).grace_period_seconds == 3600
    assert desired("v1", grace=5, default=3600).grace_period_seconds == 5


def test_a_second_change_keeps_only_the_latest_previous_archive() -> None:
    v1, v2, v3 = desired("v1"), desired("v2"), desired("v3")
    [a1], [a2] = v1.archives, v2.archives
    status = served(
        v2,
        previous_target_model=a1.target_model,
        previous_s3_key=a1.key,
        previous_expires_at=rfc3339(NOW + timedelta(seconds=300)),
    )
    plan = plan_reconcile(v3, observed(v1, v2, v3), status, now=NOW)
    assert deleted(plan) == [a1.key]
    assert [s.key for s in plan.superseded] == [a2.key]


def test_an_archive_not_owned_is_never_kept_or_deleted() -> None:
    old, new = desired("v1"), desired("v2")
    seen = observed(old, new)
    foreign = dict(seen.archives)
    key = old.archives[0].key
    foreign[key] = StoredArchive(key, 10, "sha", "someone-else", "bert")
    plan = plan_reconcile(
        new, ObservedState(**{**seen.__dict__, "archives": foreign}), served(old), now=NOW
    )
    assert deleted(plan) == [] and plan.superseded == ()


def test_without_a_clock_nothing_is_kept() -> None:
    old, new = desired("v1"), desired("v2")
    plan = plan_reconcile(new, observed(old, new), served(old))
    assert deleted(plan) == [old.archives[0].key]


def test_only_a_plan_with_nothing_servable_in_s3_waits_for_an_upload_before_sagemaker() -> None:
    # Plan.upload_first: the executor creates or updates SageMaker only after an upload worked.
    old, new = desired("v1"), desired("v2")
    nothing = dataclasses.replace(observed(new), archives={})
    assert plan_reconcile(new, nothing, now=NOW).upload_first
    assert not plan_reconcile(new, observed(new), now=NOW).upload_first  # already in S3
    # The previous archive, kept through its grace period, still serves: no need to wait.
    assert not plan_reconcile(new, observed(old), served(old), now=NOW).upload_first

"""Superseded archives stay for a grace period: a pure function of (desired, observed,
last status, now). No server needed."""

import copy
import dataclasses
from datetime import UTC, datetime, timedelta

from mme_operator.api import ModelEndpointStatus, ModelStatus, parse_resource
from mme_operator.api.status import SupersededArchiveStatus, rfc3339
from mme_operator.artifacts import StoredArchive
from mme_operator.reconcile import build_desired, plan_reconcile
from mme_operator.reconcile import plan as p
from mme_operator.reconcile.observe import ObservedState

from .observed import in_service

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
    # The load check off: a new archive serves once in S3 (test_serving_until_loaded.py has
    # the archive that serves while the new one has not loaded).
    return build_desired(
        parse_resource(doc), {"bert": etag}, default_grace_period_seconds=default, load_check=False
    )


def observed(*states, owner=UID):  # type: ignore[no-untyped-def]
    return in_service(states[-1], *states, uid=UID, owner=owner)


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


def test_each_superseded_archive_lives_until_its_own_expiry() -> None:
    # v1 -> v2 -> v3 within the grace period: v1 keeps v1's expiry, v2 gets its own
    # (one previous archive per model dropped v1 at once).
    v1, v2, v3 = desired("v1"), desired("v2"), desired("v3")
    [a1], [a2] = v1.archives, v2.archives
    status = served(
        v2,
        previous_target_model=a1.target_model,
        previous_s3_key=a1.key,
        previous_expires_at=rfc3339(NOW + timedelta(seconds=300)),
    )
    plan = plan_reconcile(v3, observed(v1, v2, v3), status, now=NOW)
    assert deleted(plan) == []
    assert [(s.key, s.expires_at) for s in plan.superseded] == [
        (a1.key, NOW + timedelta(seconds=300)),
        (a2.key, NOW + timedelta(seconds=600)),
    ]
    # The next pass reads them back from status.supersededArchives: v1 goes at its expiry.
    later = ModelEndpointStatus(
        models=[
            ModelStatus(
                name="bert", target_model=v3.archives[0].target_model, s3_key=v3.archives[0].key
            )
        ],
        superseded_archives=[
            SupersededArchiveStatus(
                model=s.model_name,
                target_model=s.target_model,
                s3_key=s.key,
                expires_at=rfc3339(s.expires_at),
            )
            for s in plan.superseded
        ],
    )
    at_300 = plan_reconcile(v3, observed(v1, v2, v3), later, now=NOW + timedelta(seconds=300))
    assert deleted(at_300) == [a1.key]
    assert [s.key for s in at_300.superseded] == [a2.key]


def test_a_removed_or_renamed_model_keeps_its_archive_for_the_grace_period() -> None:
    old = desired("v1")
    [a1] = old.archives
    doc = copy.deepcopy(DOC)
    doc["spec"]["models"][0]["name"] = "bert2"  # renamed: bert is gone
    renamed = build_desired(parse_resource(doc), {"bert2": "v1"})
    renamed = dataclasses.replace(renamed, grace_period_seconds=600)
    plan = plan_reconcile(renamed, observed(old, renamed), served(old), now=NOW)
    assert deleted(plan) == []
    [kept] = plan.superseded
    assert (kept.key, kept.model_name, kept.expires_at) == (
        a1.key,
        "bert",
        NOW + timedelta(seconds=600),
    )


def test_a_new_version_that_is_not_in_s3_leaves_the_old_one_serving_past_any_grace() -> None:
    v1, v2 = desired("v1"), desired("v2")
    [a1], [a2] = v1.archives, v2.archives
    # v2's upload failed: S3 holds only v1, which the status says serves.
    plan = plan_reconcile(v2, observed(v1), served(v1), now=NOW + timedelta(days=30))
    assert deleted(plan) == [] and plan.superseded == ()
    [(name, serving)] = plan.serving_previous
    assert (name, serving.key, serving.replacement) == ("bert", a1.key, a2.key)
    assert any(isinstance(a, p.UploadArchive) for a in plan.actions)
    # Still failing: it keeps serving.
    superseded, still = p.settle_superseded(plan, uploaded=())
    assert superseded == () and still["bert"].target_model == a1.target_model
    # Uploaded this pass: v1 is superseded from now on, with its grace period.
    superseded, still = p.settle_superseded(plan, uploaded=[a2.key])
    assert still == {} and [(s.key, s.expires_at) for s in superseded] == [
        (a1.key, NOW + timedelta(days=30, seconds=600))
    ]


def test_a_model_whose_source_is_unreadable_keeps_serving_without_grace() -> None:
    v1 = desired("v1", grace=0)
    unreadable = build_desired(parse_resource(copy.deepcopy(DOC)), {})  # no fingerprint
    plan = plan_reconcile(unreadable, observed(v1), served(v1), ("bert",), now=NOW)
    assert deleted(plan) == []
    assert [name for name, _ in plan.serving_previous] == ["bert"]


def test_superseded_archives_are_bounded() -> None:
    many = [desired(f"v{i}") for i in range(p.MAX_SUPERSEDED)]
    last, current = desired("last"), desired("now")
    status = served(last).model_copy(
        update={
            "superseded_archives": [
                SupersededArchiveStatus(
                    model="bert",
                    target_model=d.archives[0].target_model,
                    s3_key=d.archives[0].key,
                    expires_at=rfc3339(NOW + timedelta(seconds=i + 1)),
                )
                for i, d in enumerate(many)
            ]
        }
    )
    plan = plan_reconcile(current, observed(*many, last, current), status, now=NOW)
    assert len(plan.superseded) == p.MAX_SUPERSEDED
    # The one superseded now is kept; the soonest to expire goes first.
    assert plan.superseded[-1].key == last.archives[0].key
    assert deleted(plan) == [many[0].archives[0].key]


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

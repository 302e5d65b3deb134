"""A new version that is uploaded but has not loaded (Loading, LoadFailed) leaves the previous
one serving: status keeps it (servingTargetModel), the clients' ConfigMap maps to it, and its
archive has no expiry until the new one loaded. Pure: plan, status, ConfigMap content."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from mme_operator.api import (
    ConditionType,
    ModelEndpointStatus,
    ModelState,
    ModelStatus,
    Reason,
    parse_resource,
)
from mme_operator.api.status import rfc3339
from mme_operator.artifacts import StoredArchive
from mme_operator.reconcile import build_desired, plan_reconcile
from mme_operator.reconcile import plan as p
from mme_operator.reconcile.apply import ApplyResult
from mme_operator.reconcile.client_mapping import models_configmap
from mme_operator.reconcile.desired import DesiredState
from mme_operator.reconcile.loading import LoadOutcome, LoadVerdict
from mme_operator.reconcile.observe import ObservedState
from mme_operator.reconcile.status import reconciled_status

from .observed import in_service

UID = "uid-serving"
NOW = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
GRACE = 600
DOC = {
    "apiVersion": "mme-operator.io/v1alpha1",
    "kind": "ModelEndpoint",
    "metadata": {"name": "s", "namespace": "ml", "uid": UID, "generation": 2},
    "spec": {
        "region": "us-east-1",
        "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
        "artifacts": {"bucket": "models", "gracePeriodSeconds": GRACE},
        "instanceType": "ml.g5.xlarge",
        "models": [{"name": "add", "source": "s3://src/add.py", "backend": "python"}],
    },
}
IDS = {"name": "s", "namespace": "ml", "uid": UID, "region": "us-east-1"}


def version(etag: str, grace: int = GRACE) -> DesiredState:
    doc = copy.deepcopy(DOC)
    doc["spec"]["artifacts"]["gracePeriodSeconds"] = grace
    return build_desired(parse_resource(doc), {"add": etag}, load_check=True)


def in_s3(current: DesiredState, *versions: DesiredState) -> ObservedState:
    """An InService endpoint on ``current``'s config; S3 holds the archives of ``versions``."""
    return in_service(current, *versions, uid=UID)


def available(d: DesiredState) -> ModelEndpointStatus:
    """The last pass: ``d``'s archive loaded and served."""
    [a] = d.archives
    return ModelEndpointStatus(
        endpoint_name=d.endpoint_name,
        observed_generation=2,
        models=[
            ModelStatus(
                name="add",
                target_model=a.target_model,
                s3_key=a.key,
                state=ModelState.AVAILABLE,
                loaded=True,
            )
        ],
    )


def not_loaded(new: DesiredState, old: DesiredState, state: ModelState) -> ModelEndpointStatus:
    """The last pass: ``new`` uploaded but not loaded (``state``), ``old`` still serving."""
    [n], [o] = new.archives, old.archives
    return ModelEndpointStatus(
        endpoint_name=new.endpoint_name,
        observed_generation=2,
        models=[
            ModelStatus(
                name="add",
                target_model=n.target_model,
                s3_key=n.key,
                state=state,
                loaded=False if state == ModelState.LOAD_FAILED else None,
                message="load failed for model 'add'" if state == ModelState.LOAD_FAILED else None,
                serving_target_model=o.target_model,
                serving_s3_key=o.key,
            )
        ],
    )


def deleted(plan: p.Plan) -> list[p.DeleteArchive]:
    return [a for a in plan.actions if isinstance(a, p.DeleteArchive)]


def checks(plan: p.Plan) -> list[str]:
    return [a.target_model for a in plan.actions if isinstance(a, p.LoadCheck)]


def after_pass(
    d: DesiredState,
    seen: ObservedState,
    previous: ModelEndpointStatus,
    verdict: LoadVerdict | None,
    now: datetime = NOW,
) -> ModelEndpointStatus:
    """One pass's status: the plan applied as planned, its load check answered ``verdict``."""
    plan = plan_reconcile(d, seen, previous, now=now)
    [a] = d.archives
    result = ApplyResult(done=list(plan.actions))
    for action in plan.actions:
        if isinstance(action, p.UploadArchive):
            result.uploaded[a.key] = StoredArchive(a.key, 10, "sha-new", UID, "add")
    if verdict is not None:
        result.loads["add"] = LoadOutcome(verdict, "load failed for model 'add': ModuleNotFound")
    return reconciled_status(d, seen, plan, result, previous, {})


def ready(status: ModelEndpointStatus) -> tuple[str, str, str]:
    c = next(c for c in status.conditions or [] if c.type == ConditionType.READY)
    return c.status, c.reason, c.message


def mapped(status: ModelEndpointStatus) -> str | None:
    body = models_configmap(**IDS, status=status)
    assert body is not None
    return body["data"].get("add")


def test_a_new_version_that_fails_to_load_leaves_the_previous_one_serving() -> None:
    v1, v2 = version("v1"), version("v2")
    [a1], [a2] = v1.archives, v2.archives
    status = after_pass(v2, in_s3(v2, v1), available(v1), LoadVerdict.LOAD_FAILED)

    [model] = status.models or []
    assert (model.target_model, model.state, model.loaded) == (
        a2.target_model,
        ModelState.LOAD_FAILED,
        False,
    )
    assert (model.serving_target_model, model.serving_s3_key) == (a1.target_model, a1.key)
    # Status tells the truth: not Ready, the new version is broken; and who serves.
    state, reason, message = ready(status)
    assert (state, reason) == ("False", Reason.LOAD_FAILED)
    assert f"still serving {a1.target_model}" in message
    # The archive that serves is not superseded: no expiry while the new one has not loaded.
    assert not status.superseded_archives
    assert model.previous_s3_key is None
    # ArtifactsSynced: the new archive is in S3.
    synced = next(c for c in status.conditions or [] if c.type == ConditionType.ARTIFACTS_SYNCED)
    assert (synced.status, synced.reason) == ("True", Reason.SYNCED)
    # Clients keep sending the TargetModel that loads.
    assert mapped(status) == a1.target_model


def test_a_new_version_still_loading_leaves_the_previous_one_serving_and_mapped() -> None:
    v1, v2 = version("v1"), version("v2")
    [a1], [a2] = v1.archives, v2.archives
    status = after_pass(v2, in_s3(v2, v1), available(v1), LoadVerdict.UNKNOWN)

    [model] = status.models or []
    assert (model.target_model, model.state) == (a2.target_model, ModelState.LOADING)
    assert model.serving_target_model == a1.target_model
    assert model.message == f"not loaded yet; still serving {a1.target_model}"
    assert mapped(status) == a1.target_model
    assert not status.superseded_archives


def test_the_previous_archive_is_kept_past_any_grace_while_the_new_one_has_not_loaded() -> None:
    v1, v2 = version("v1"), version("v2")
    [a1], [a2] = v1.archives, v2.archives
    seen = in_s3(v2, v1, v2)
    for state in (ModelState.LOAD_FAILED, ModelState.LOADING):
        plan = plan_reconcile(v2, seen, not_loaded(v2, v1, state), now=NOW + timedelta(days=30))
        assert deleted(plan) == [] and plan.superseded == ()
        [(name, serving)] = plan.serving_previous
        assert (name, serving.key, serving.replacement) == ("add", a1.key, a2.key)
    # A LoadFailed TargetModel is not invoked again; a Loading one is, until it answers.
    failed = plan_reconcile(v2, seen, not_loaded(v2, v1, ModelState.LOAD_FAILED), now=NOW)
    assert checks(failed) == []
    loading = plan_reconcile(v2, seen, not_loaded(v2, v1, ModelState.LOADING), now=NOW)
    assert checks(loading) == [a2.target_model]


def test_once_the_new_version_loads_the_mapping_moves_and_the_grace_period_starts() -> None:
    v1, v2 = version("v1"), version("v2")
    [a1], [a2] = v1.archives, v2.archives
    later = NOW + timedelta(hours=1)
    previous = not_loaded(v2, v1, ModelState.LOADING)
    status = after_pass(v2, in_s3(v2, v1, v2), previous, LoadVerdict.LOADED, now=later)

    [model] = status.models or []
    assert (model.target_model, model.state, model.serving_target_model) == (
        a2.target_model,
        ModelState.AVAILABLE,
        None,
    )
    assert mapped(status) == a2.target_model
    [kept] = status.superseded_archives or []
    assert (kept.s3_key, kept.expires_at) == (a1.key, rfc3339(later + timedelta(seconds=GRACE)))
    assert ready(status)[:2] == ("True", Reason.RECONCILED)


def test_a_fixed_third_version_keeps_the_loaded_one_serving_until_it_loads() -> None:
    v1, v2, v3 = version("v1"), version("v2"), version("v3")
    [a1], [a2], [a3] = v1.archives, v2.archives, v3.archives
    previous = not_loaded(v2, v1, ModelState.LOAD_FAILED)
    plan = plan_reconcile(v3, in_s3(v3, v1, v2), previous, now=NOW)

    # v1 (loaded) still serves until v3 loads; v2 (never loaded) is superseded like any.
    [(_, serving)] = plan.serving_previous
    assert (serving.key, serving.replacement) == (a1.key, a3.key)
    assert [(s.key, s.expires_at) for s in plan.superseded] == [
        (a2.key, NOW + timedelta(seconds=GRACE))
    ]
    assert deleted(plan) == []
    # v3 loads in this pass: v1's grace period starts; both old ones are then superseded.
    status = after_pass(v3, in_s3(v3, v1, v2), previous, LoadVerdict.LOADED)
    assert mapped(status) == a3.target_model
    assert sorted(s.s3_key for s in status.superseded_archives or []) == sorted([a1.key, a2.key])


def test_without_grace_the_previous_archive_goes_only_once_the_new_one_loaded() -> None:
    v1, v2 = version("v1", grace=0), version("v2", grace=0)
    [a1], [a2] = v1.archives, v2.archives
    # The pass that uploads v2 checks it, and deletes v1 only once the check said loaded.
    plan = plan_reconcile(v2, in_s3(v2, v1), available(v1), now=NOW)
    assert checks(plan) == [a2.target_model]
    [swap] = deleted(plan)
    assert (swap.key, swap.once_uploaded, swap.once_loaded) == (a1.key, a2.key, "add")
    assert "once" in swap.describe() and "loaded" in swap.describe()
    # It failed to load: v1 serves, and a later pass (no new check) deletes nothing.
    status = after_pass(v2, in_s3(v2, v1), available(v1), LoadVerdict.LOAD_FAILED)
    assert (status.models or [])[0].serving_s3_key == a1.key
    again = plan_reconcile(v2, in_s3(v2, v1, v2), status, now=NOW)
    assert deleted(again) == [] and checks(again) == []
    # Still loading: the next pass checks again, and deletes v1 only if it loads then.
    loading = not_loaded(v2, v1, ModelState.LOADING)
    [swap] = deleted(plan_reconcile(v2, in_s3(v2, v1, v2), loading, now=NOW))
    assert (swap.key, swap.once_uploaded, swap.once_loaded) == (a1.key, None, "add")


def test_without_the_load_check_an_upload_is_enough_as_before() -> None:
    v1, v2 = version("v1", grace=0), version("v2", grace=0)
    v2 = build_desired(v2.resource, {"add": "v2"}, load_check=False)
    [a1], [a2] = v1.archives, v2.archives
    [swap] = deleted(plan_reconcile(v2, in_s3(v2, v1), available(v1), now=NOW))
    assert (swap.key, swap.once_uploaded, swap.once_loaded) == (a1.key, a2.key, None)


def test_a_removed_model_lets_both_of_its_archives_go_after_the_grace_period() -> None:
    v1, v2 = version("v1"), version("v2")
    [a1], [a2] = v1.archives, v2.archives
    doc = copy.deepcopy(DOC)
    doc["spec"]["models"][0]["name"] = "sub"
    other = build_desired(parse_resource(doc), {"sub": "v1"}, load_check=True)
    previous = not_loaded(v2, v1, ModelState.LOAD_FAILED)
    plan = plan_reconcile(other, in_s3(other, v1, v2), previous, now=NOW)
    assert plan.serving_previous == ()
    assert sorted(s.key for s in plan.superseded) == sorted([a1.key, a2.key])
    assert deleted(plan) == []


def test_the_serving_archive_is_never_deleted_if_someone_removed_it_from_s3() -> None:
    # v1 vanished from S3: nothing to serve from, nothing kept; v2 is what the status shows.
    v1, v2 = version("v1"), version("v2")
    plan = plan_reconcile(v2, in_s3(v2, v2), not_loaded(v2, v1, ModelState.LOAD_FAILED), now=NOW)
    assert plan.serving_previous == () and deleted(plan) == []

"""ModelsWarm agrees with EndpointReady: it never says "the endpoint must be InService" of an
endpoint that EndpointReady reports InService, and names the models that cannot be warmed."""

from __future__ import annotations

from mme_operator.api import ConditionType, ModelEndpointStatus, Reason, parse_resource
from mme_operator.api.resource import derive_endpoint_name
from mme_operator.artifacts import StoredArchive
from mme_operator.reconcile import build_desired, plan_reconcile
from mme_operator.reconcile.apply import ApplyError, ApplyResult
from mme_operator.reconcile.observe import ObservedState
from mme_operator.reconcile.status import reconciled_status
from mme_operator.sagemaker import EndpointState

UID = "7a2e-uid"
DOC = {
    "apiVersion": "mme-operator.io/v1alpha1",
    "kind": "ModelEndpoint",
    "metadata": {"name": "warm", "namespace": "ml", "uid": UID, "generation": 1},
    "spec": {
        "region": "us-east-1",
        "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
        "artifacts": {"bucket": "models"},
        "instanceType": "ml.g5.xlarge",
        "models": [
            {"name": n, "source": f"s3://src/{n}.py", "backend": "python", "warmup": True}
            for n in ("echo", "ghost")
        ],
    },
}

ENDPOINT = derive_endpoint_name("ml", "warm")


def status_of(endpoint_status: str, result: ApplyResult) -> ModelEndpointStatus:
    """One pass's status: ``ghost``'s source unreadable, ``echo`` uploaded, not warmed yet."""
    desired = build_desired(parse_resource(DOC), {"echo": "etag-1"})
    (echo,) = desired.archives
    observed = ObservedState(
        endpoint=EndpointState(
            name=desired.endpoint_name,
            arn=f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{desired.endpoint_name}",
            status=endpoint_status,
            config_name=desired.sagemaker.endpoint_config.name,
        ),
        endpoint_owner_uid=UID,
        model_exists=True,
        endpoint_config_exists=True,
        archives={echo.key: StoredArchive(echo.key, 10, "sha", UID, "echo")},
        scaling=None,
    )
    unavailable = {"ghost": "no object s3://src/ghost.py"}
    plan = plan_reconcile(desired, observed, unavailable=tuple(unavailable))
    return reconciled_status(desired, observed, plan, result, None, unavailable)


def conditions(status: ModelEndpointStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.reason, c.message) for c in status.conditions or []}


def test_a_cold_model_on_an_inservice_endpoint_is_warmed_by_the_next_pass() -> None:
    # An earlier step failed, so this pass's warm-up did not run.
    stopped = ApplyResult(error=ApplyError(True, Reason.RETRYING, "throttled"))
    found = conditions(status_of("InService", stopped))

    assert found[ConditionType.ENDPOINT_READY][0] == Reason.IN_SERVICE
    reason, message = found[ConditionType.MODELS_WARM]
    assert reason == Reason.WARMING_UP
    assert "must be InService" not in message
    assert f"models echo not warmed up yet; endpoint {ENDPOINT} is InService" in message
    assert "models ghost cannot be warmed up: they failed" in message


def test_a_cold_model_on_a_creating_endpoint_waits_for_inservice() -> None:
    found = conditions(status_of("Creating", ApplyResult()))

    assert found[ConditionType.ENDPOINT_READY][0] != Reason.IN_SERVICE
    message = found[ConditionType.MODELS_WARM][1]
    assert f"models echo are warmed up once endpoint {ENDPOINT} is InService" in message

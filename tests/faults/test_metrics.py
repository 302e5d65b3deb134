"""A platform team scrapes a running operator's ``/metrics`` and graphs what it sees.

``mme-operator run`` in its own process, against the real kube-apiserver and the local AWS
(a fault injected on two SageMaker calls): once a ModelEndpoint is Ready, the scrape shows
its passes timed, its phase and models, every AWS request the local AWS received, counted
by operation and error code; after the ModelEndpoint is deleted, its series are gone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import pytest
from mme_operator.sagemaker.botocore_models import SAGEMAKER_OPERATIONS

from tests.faults.harness import World, converged, wait_until

pytestmark = [pytest.mark.faults]

Samples = Mapping[tuple[str, frozenset[tuple[str, str]]], float]


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    """The sample's value; 0 when the series does not exist."""
    return samples.get((metric, frozenset(labels.items())), 0.0)


def total(samples: Samples, metric: str, /, **labels: str) -> float:
    """The sum over every series of ``metric`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == metric and wanted <= found)


def sagemaker_requests(samples: Samples) -> dict[str, float]:
    """SageMaker control-plane requests the operator counted, by operation."""
    counted: dict[str, float] = {}
    for (name, labels), found in samples.items():
        label = dict(labels)
        if name == "mme_operator_aws_requests_total" and label["service"] == "sagemaker":
            counted[label["operation"]] = counted.get(label["operation"], 0) + found
    return {op: n for op, n in counted.items() if n}


def resource_in_use(world: World, operation: str, count: int | None = None) -> None:
    """SageMaker answers ``operation`` with ResourceInUse (400), which botocore does not retry
    and the operator does, in a later pass."""
    world.aws.fault(
        action="error",
        code="ResourceInUse",
        message="Resource is in use.",
        status=400,
        operations=[operation],
        count=count,
    )


def endpoint_series(samples: Samples, name: str) -> dict[str, float]:
    """The phase series of the ModelEndpoint ``name``, by phase."""
    return {
        dict(labels)["phase"]: found
        for (metric, labels), found in samples.items()
        if metric == "mme_operator_endpoint_phase" and ("name", name) in labels
    }


def test_a_running_operator_reports_passes_endpoints_models_and_aws_calls(world: World) -> None:
    name = "graphed"
    ns = world.cluster.namespace
    # CreateEndpoint refused once with a code botocore does not retry (the pass comes back
    # later); CreateModel throttled once, which botocore's own retry hides from the pass.
    resource_in_use(world, "CreateEndpoint", count=1)
    world.aws.fault(action="throttle", operations=["CreateModel"], count=1)
    models = [world.python_model("a"), world.python_model("b")]
    world.cluster.create(world.manifest(name, models))

    def ready() -> bool:
        return converged(world.cluster.get(name))

    wait_until(ready, f"{name} Ready", timeout=90)
    assert world.aws.injected() == {
        "sagemaker:CreateEndpoint:before": 1,
        "sagemaker:CreateModel:before": 1,
    }

    # The counts settle (a pass may still be writing the Ready status) and then match what
    # the local AWS received, request for request; the test made no SageMaker call.
    def counts_match() -> Samples | None:
        samples = world.operator.metrics()
        received = world.aws.admin("GET", "/_local/calls")
        sent = {op: float(n) for op, n in received.items() if op in SAGEMAKER_OPERATIONS and n}
        return samples if sent and sagemaker_requests(samples) == sent else None

    samples = wait_until(counts_match, "the operator's counts equal to the requests received", 10)
    calls, requests = "mme_operator_aws_calls_total", "mme_operator_aws_requests_total"
    create = {"service": "sagemaker", "operation": "CreateEndpoint"}
    assert value(samples, calls, **create, error_code="") == 1
    assert value(samples, calls, **create, error_code="ResourceInUse") == 1
    assert value(samples, requests, **create, error_code="ResourceInUse") == 1
    model = {"service": "sagemaker", "operation": "CreateModel"}
    assert value(samples, requests, **model, error_code="ThrottlingException") == 1
    assert value(samples, requests, **model, error_code="") == 1
    assert value(samples, calls, **model, error_code="") == 1
    assert value(samples, calls, **model, error_code="ThrottlingException") == 0
    # S3 is counted by the same hook: two archives uploaded.
    assert value(samples, calls, service="s3", operation="PutObject", error_code="") == 2
    assert total(samples, requests, service="s3") >= 3

    # Passes timed by outcome: the refused CreateEndpoint (and the waits for InService)
    # came back later; the last pass succeeded. None is running now.
    duration = "mme_operator_reconcile_duration_seconds_count"
    assert value(samples, duration, handler="reconcile", outcome="retry") >= 1
    assert value(samples, duration, handler="reconcile", outcome="success") >= 1
    bucket = "mme_operator_reconcile_duration_seconds_bucket"
    assert value(samples, bucket, handler="reconcile", outcome="success", le="+Inf") >= 1
    assert value(samples, "mme_operator_reconciles_in_flight", handler="reconcile") == 0

    endpoint = {"namespace": ns, "name": name}
    assert endpoint_series(samples, name) == {
        "Pending": 0,
        "Syncing": 0,
        "Creating": 0,
        "Updating": 0,
        "Ready": 1,
        "Failed": 0,
        "Deleting": 0,
    }
    status = world.cluster.get(name)["status"]  # type: ignore[index]
    states = [m["state"] for m in status["models"]]
    assert states == ["Available", "Available"]
    models_metric = "mme_operator_endpoint_models"
    assert value(samples, models_metric, **endpoint, state="Available") == 2
    assert value(samples, models_metric, **endpoint, state="Failed") == 0
    assert value(samples, models_metric, **endpoint, state="Pending") == 0
    assert value(samples, "mme_operator_endpoint_models_declared", **endpoint) == 2

    # Scraping costs nothing: no AWS request while Prometheus reads the metrics.
    before = world.aws.admin("GET", "/_local/calls")
    for _ in range(5):
        world.operator.metrics()
        time.sleep(0.2)
    assert world.aws.admin("GET", "/_local/calls") == before

    # A restarted operator shows the endpoint again once it resumed it (no change made).
    world.operator.stop()
    world.operator.start()

    def resumed() -> Samples | None:
        try:
            found = world.operator.metrics()
        except OSError:  # not listening yet
            return None
        return found if endpoint_series(found, name).get("Ready") == 1 else None

    samples = wait_until(resumed, f"{name} Ready in the restarted operator's metrics", 30)
    assert value(samples, models_metric, **endpoint, state="Available") == 2
    assert total(samples, calls, **create) == 0

    world.cluster.delete(name)
    world.wait_gone([name], timeout=60)

    def series_gone() -> Samples | None:
        found = world.operator.metrics()
        mine = [key for key in found if ("name", name) in key[1]]
        return found if not mine else None

    samples = wait_until(series_gone, f"{name}'s series gone", timeout=10)
    assert value(samples, duration, handler="delete", outcome="success") >= 1
    assert world.operator.tracebacks() == []


def test_series_go_with_an_endpoint_whose_finalizer_was_removed_by_hand(world: World) -> None:
    # A deletion that cannot finish (SageMaker keeps answering ResourceInUse), so a user
    # removes the finalizer: the operator's delete handler never completes, and still the
    # endpoint's series must not outlive it.
    name = "force-deleted"
    world.cluster.create(world.manifest(name, [world.python_model("a")]))
    wait_until(lambda: converged(world.cluster.get(name)), f"{name} Ready", timeout=90)
    resource_in_use(world, "DeleteEndpoint")
    world.cluster.delete(name)
    wait_until(
        lambda: endpoint_series(world.operator.metrics(), name).get("Deleting") == 1,
        f"{name} Deleting in the metrics",
        timeout=30,
    )
    path = f"/apis/mme-operator.io/v1alpha1/namespaces/{world.cluster.namespace}"
    world.cluster.call(
        "PATCH",
        f"{path}/modelendpoints/{name}",
        {"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )
    world.wait_gone([name], timeout=30)
    wait_until(
        lambda: endpoint_series(world.operator.metrics(), name) == {},
        f"{name}'s series gone",
        timeout=10,
    )
    assert world.operator.tracebacks() == []

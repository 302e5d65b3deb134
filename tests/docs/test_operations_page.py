"""The Operations page (docs/operations.md) names everything an operator of the operator meets.

Every setting, every condition type and reason the code sets, every metric and label:
a new one without its line on that page fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from mme_operator import metrics
from mme_operator.api.status import ConditionType, Reason
from mme_operator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
SOURCE = "\n".join(
    path.read_text(encoding="utf-8") for path in (ROOT / "operator" / "mme_operator").rglob("*.py")
)


def used(enum_name: str, member: str) -> bool:
    return re.search(rf"\b{enum_name}\.{member}\b", SOURCE) is not None


def test_every_setting_is_in_the_configuration_table() -> None:
    missing = [
        f"MME_{name.upper()}"
        for name in Settings.model_fields
        if f"`MME_{name.upper()}`" not in OPERATIONS
    ]
    assert missing == []


def test_every_condition_and_reason_the_code_sets_is_explained() -> None:
    types = [t.value for t in ConditionType if used("ConditionType", t.name)]
    reasons = [r.value for r in Reason if used("Reason", r.name)]
    assert "Ready" in types and "BucketMissing" in reasons
    assert [t for t in types if f"`{t}`" not in OPERATIONS] == []
    assert [r for r in reasons if f"`{r}`" not in OPERATIONS] == []


def test_every_metric_and_label_is_listed() -> None:
    listed: list[tuple[str, tuple[str, ...]]] = []
    for collector in (
        metrics.RECONCILE_DURATION,
        metrics.RECONCILES_IN_FLIGHT,
        metrics.AWS_CALLS,
        metrics.AWS_REQUESTS,
        metrics.BYTES_UPLOADED,
    ):
        [family] = collector.describe()
        suffix = "_total" if family.type == "counter" else ""
        listed.append((f"{family.name}{suffix}", tuple(collector._labelnames)))
    listed.extend((name, labels) for name, _, labels in metrics.EndpointMetrics.FAMILIES)
    listed.extend(
        (name, metrics.ENDPOINT_LABELS) for name, _, _ in metrics.CacheSignalMetrics.GAUGES
    )
    listed.append((metrics.CacheSignalMetrics.CONDITION[0], (*metrics.ENDPOINT_LABELS, "reason")))
    for name, labels in listed:
        assert f"`{name}`" in OPERATIONS, name
        for label in labels:
            assert f"`{label}`" in OPERATIONS, (name, label)


def test_every_variable_the_chart_sets_is_a_setting() -> None:
    template = (ROOT / "helm" / "mme-operator" / "templates" / "deployment.yaml").read_text()
    chart = set(re.findall(r"name: (MME_[A-Z_]+)", template))
    settings = {f"MME_{name.upper()}" for name in Settings.model_fields}
    assert chart - settings == set()

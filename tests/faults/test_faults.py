"""The fault suite: each scenario ends with a clean inventory and no crash.

Clean: every ModelEndpoint converged (Ready for its generation) or gone, no SageMaker
resource or archive orphaned, duplicated or lost, no finalizer stuck, nothing foreign touched.
"""

from __future__ import annotations

import pytest

from tests.faults import scenarios
from tests.faults.harness import World

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]


def check(result: scenarios.Result) -> None:
    summary = result.summary()
    print(summary)
    assert result.clean, summary
    assert result.inventory.gone == result.resources, summary


def test_throttled_at_30_percent(world: World) -> None:
    result = scenarios.throttling(world, percent=30, count=2)
    check(result)
    assert result.faults


def test_a_storm_of_5xx(world: World) -> None:
    result = scenarios.storm(world, seconds=5)
    check(result)
    assert result.faults


def test_faults_after_side_effects(world: World) -> None:
    result = scenarios.lost_answers(world)
    check(result)
    assert result.faults["sagemaker:CreateEndpoint:after"] >= 1
    assert result.faults["s3:PutObject:after"] >= 1


def test_sigkill_during_create_update_and_delete(world: World) -> None:
    result = scenarios.kills(world, per_phase=3)
    check(result)
    assert result.kills == 9


def test_foreign_resources_under_our_names(world: World) -> None:
    check(scenarios.foreign(world))


def test_unsafe_archives(world: World) -> None:
    result = scenarios.unsafe(world)
    check(result)
    assert result.figures["unsafe_refused"] == len(scenarios.unsafe_archives())

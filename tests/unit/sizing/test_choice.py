"""The operator's instance choice: cheapest that fits, kept while it fits, advice when nothing does."""

from __future__ import annotations

from typing import Any

from mme_operator.api import ModelEndpointSpec
from mme_operator.sizing import get_catalogue
from mme_operator.sizing.choice import model_needs, size_endpoint

from tests.unit.api.documents import MINIMAL


def spec(gpu_memory_mib: int, **changes: Any) -> ModelEndpointSpec:
    data = {
        **MINIMAL["spec"],
        "region": "us-east-1",
        "models": [{**MINIMAL["spec"]["models"][0], "gpuMemoryMiB": gpu_memory_mib}],
        **changes,
    }
    if "instanceType" not in changes:
        del data["instanceType"]
    return ModelEndpointSpec.model_validate(data)


def choose(s: ModelEndpointSpec, previous: str | None = None, why: str | None = None) -> Any:
    return size_endpoint(s, model_needs(s, {}), get_catalogue(), previous, why)


def test_the_cheapest_fitting_type_is_chosen_and_why_is_said() -> None:
    sizing = choose(spec(1000, sizing={}))

    assert sizing.instance_type == "ml.g4dn.xlarge"
    assert sizing.chosen_by_operator
    assert sizing.fits
    assert sizing.cost_per_hour == 0.7364
    assert sizing.reason.startswith("cheapest MME type that fits ($0.7364/h)")


def test_a_previous_choice_is_kept_while_it_fits_even_when_a_cheaper_one_would() -> None:
    sizing = choose(spec(1000, sizing={}), "ml.g5.xlarge", "chosen last week")

    assert sizing.instance_type == "ml.g5.xlarge"
    assert sizing.reason == "chosen last week"


def test_a_previous_choice_that_no_longer_fits_moves() -> None:
    sizing = choose(spec(20_000, sizing={}), "ml.g4dn.xlarge", "old")

    assert sizing.instance_type == "ml.g5.xlarge"
    assert sizing.reason.startswith("ml.g4dn.xlarge no longer fits; cheapest")


def test_nothing_fits_picks_the_most_gpu_memory_and_says_what_to_change() -> None:
    sizing = choose(spec(40_000, sizing={"allowedFamilies": ["ml.g4dn", "ml.g5"]}))

    assert not sizing.fits
    assert sizing.instance_type.startswith("ml.g5.")
    assert "no allowed MME type fits 40000 MiB" in sizing.reason
    assert "split the models over several ModelEndpoints" in sizing.advice


def test_the_spec_type_is_evaluated_not_replaced() -> None:
    sizing = choose(spec(20_000, instanceType="ml.g4dn.xlarge", instanceCount=2))

    assert sizing.instance_type == "ml.g4dn.xlarge"
    assert not sizing.chosen_by_operator
    assert not sizing.fits
    assert sizing.cost_per_hour == round(2 * 0.7364, 4)
    assert sizing.advice.startswith("use ml.g5.xlarge")


def test_a_region_without_prices_still_chooses_by_us_east_1_order_without_a_cost() -> None:
    sizing = choose(spec(1000, sizing={}, region="eu-west-1"))

    assert sizing.instance_type == "ml.g4dn.xlarge"
    assert sizing.cost_per_hour is None
    assert "no price for eu-west-1" in sizing.reason

"""The instance type an endpoint runs on, whether its models fit, and what it costs (pure).

With ``spec.instanceType`` set, that type is evaluated. Without it (``spec.sizing`` set),
the operator chooses: the cheapest MME type whose GPU memory, less the headroom, holds
every model. A type chosen before is kept while the models still fit on it, so equal or
newly cheaper choices never make the endpoint flap between types (each change is a
rolling update of the whole fleet); only a broken fit moves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mme_operator.api import ModelEndpointSpec
from mme_operator.sizing.catalogue import InstanceCatalogue
from mme_operator.sizing.fit import (
    DEFAULT_HEADROOM_PERCENT,
    Candidate,
    ModelNeed,
    candidates,
    model_need,
    recommend,
)


@dataclass(frozen=True)
class Sizing:
    """The outcome for one endpoint."""

    instance_type: str
    chosen_by_operator: bool
    reason: str
    needs: tuple[ModelNeed, ...]
    required_mib: int
    available_mib: int
    headroom_percent: int
    fits: bool
    cost_per_hour: float | None
    """USD per hour for all ``instanceCount`` instances; None where no price is known."""
    advice: str
    """What to change when the models do not fit; empty when they do."""


def _headroom(spec: ModelEndpointSpec) -> int:
    return spec.sizing.headroom_percent if spec.sizing else DEFAULT_HEADROOM_PERCENT


def model_needs(
    spec: ModelEndpointSpec,
    weights: Mapping[str, int | None],
    measured: Mapping[str, float] | None = None,
) -> tuple[ModelNeed, ...]:
    """Each model's GPU memory from its weights size (or override, or measured figure)."""
    measured = measured or {}
    return tuple(model_need(m, weights.get(m.name), measured.get(m.name)) for m in spec.models)


def _advice(needs: tuple[ModelNeed, ...], best: Candidate | None, required: int) -> str:
    biggest = sorted((n for n in needs if n.required_mib), key=lambda n: -n.required_mib)[:3]
    listed = ", ".join(f"{n.name} {n.required_mib} MiB x{n.gpu_instances}" for n in biggest)
    target = (
        f"use {best.instance.name} ({best.available_mib} MiB usable)"
        if best is not None
        else "no single-GPU MME type holds them: split the models over several ModelEndpoints"
    )
    return (
        f"{target}, or lower instanceGroups counts / set gpuMemoryMiB from a measurement "
        f"(largest: {listed}); until then SageMaker loads and evicts models in turn"
    )


def capacity_mib(spec: ModelEndpointSpec, catalogue: InstanceCatalogue) -> tuple[str, int] | None:
    """(instance type, MiB of GPU memory one instance offers less the headroom) that a
    ``beyondCapacity: Refuse`` endpoint admits Models against: ``spec.instanceType``, or
    when the operator chooses, the allowed type with the most (sizing then picks the
    cheapest that holds what was admitted). None: no such type in the catalogue."""
    headroom = _headroom(spec)
    families = (
        None if spec.instance_type else (spec.sizing.allowed_families if spec.sizing else None)
    )
    found = [
        c
        for c in candidates(
            (), catalogue, spec.region, headroom_percent=headroom, families=families
        )
        if c.instance.gpus and (spec.instance_type is None or c.instance.name == spec.instance_type)
    ]
    if not found:
        return None
    best = max(found, key=lambda c: (c.available_mib, c.instance.name))
    return best.instance.name, best.available_mib


def size_endpoint(
    spec: ModelEndpointSpec,
    needs: tuple[ModelNeed, ...],
    catalogue: InstanceCatalogue,
    previous_choice: str | None = None,
    previous_reason: str | None = None,
) -> Sizing:
    """Evaluate ``spec.instanceType``, or choose one; ``previous_choice`` is kept while it fits.

    A kept choice keeps the reason it was made for (``previous_reason``), so status goes on
    saying why that type was chosen.
    """
    headroom = _headroom(spec)
    families = spec.sizing.allowed_families if spec.sizing else None
    found = candidates(
        needs,
        catalogue,
        spec.region,
        headroom_percent=headroom,
        families=None if spec.instance_type else families,
        instance_count=spec.instance_count,
    )
    by_name = {c.instance.name: c for c in found}
    required = sum(n.required_mib for n in needs)
    best = recommend(found) or next((c for c in found if c.fits), None)
    if spec.instance_type is not None:
        current = by_name.get(spec.instance_type)
        if current is None:  # validated before; a catalogue edit may have removed it
            return Sizing(
                spec.instance_type, False, "set in spec.instanceType", needs, required, 0,
                headroom, False, None, f"{spec.instance_type} is not in the instance catalogue",
            )  # fmt: skip
        reason = "set in spec.instanceType"
        chosen = False
    else:
        kept = by_name.get(previous_choice or "")
        if kept is not None and kept.fits:
            current, chosen = kept, True
            reason = (
                previous_reason or f"kept {kept.instance.name}: the models still fit ({kept.why})"
            )
        elif best is not None:
            current, chosen = best, True
            price = (
                f"${best.cost_per_hour:g}/h"
                if best.cost_per_hour is not None
                else f"no price for {spec.region}"
            )
            moved = f"{previous_choice} no longer fits; " if kept is not None else ""
            reason = (
                f"{moved}cheapest MME type that fits ({price}): {best.why}, {headroom}% headroom"
            )
        else:
            gpu = [c for c in found if c.instance.gpus] or found
            current = max(gpu, key=lambda c: (c.available_mib, -(c.cost_per_hour or 0)))
            chosen = True
            reason = (
                f"no allowed MME type fits {required} MiB; {current.instance.name} has the "
                "most GPU memory"
            )
    advice = "" if current.fits else _advice(needs, best, required)
    return Sizing(
        instance_type=current.instance.name,
        chosen_by_operator=chosen,
        reason=reason,
        needs=needs,
        required_mib=required,
        available_mib=current.available_mib,
        headroom_percent=headroom,
        fits=current.fits,
        cost_per_hour=current.cost_per_hour,
        advice=advice,
    )

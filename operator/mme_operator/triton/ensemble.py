"""Checks of an ensemble against the step models shipped with it in one archive.

MME's Triton loads the archive's ensemble and, with it, the step models it names
(MME-FACTS #5); a step that is missing, or a tensor map that names a tensor the step does
not declare, fails only when the model is loaded on an instance. These checks say so
before anything is uploaded.
"""

from __future__ import annotations

from collections.abc import Mapping

from mme_operator.api.triton_schema import model_config_pb2
from mme_operator.triton.schema import TritonConfigError

ENSEMBLE_PLATFORM = "ensemble"


def is_ensemble(config: model_config_pb2.ModelConfig) -> bool:
    """Whether ``config`` declares an ensemble (``platform: "ensemble"``)."""
    return bool(config.platform == ENSEMBLE_PLATFORM)


def ensemble_problems(
    ensemble: model_config_pb2.ModelConfig,
    steps: Mapping[str, model_config_pb2.ModelConfig],
    label: str,
) -> list[str]:
    """What is wrong with ``ensemble`` given the step configs by model name (empty: fine).

    Each step model must be in ``steps``; each ``input_map`` key must be an input the step
    declares and each ``output_map`` key an output it declares (steps that declare no
    tensors, left to Triton's auto-complete, are not checked); each ``input_map`` value
    must be an ensemble input or another step's output; each ensemble output must be
    produced by a step.
    """
    problems: list[str] = []
    schedule = ensemble.ensemble_scheduling.step
    if not schedule:
        return [f"{label}: platform ensemble needs ensemble_scheduling with at least one step"]
    produced = {value for step in schedule for value in step.output_map.values()}
    available = {tensor.name for tensor in ensemble.input} | produced
    for i, step in enumerate(schedule):
        where = f"{label}: ensemble_scheduling.step[{i}] (model {step.model_name!r})"
        config = steps.get(step.model_name)
        if config is None:
            shipped = ", ".join(sorted(steps)) or "none"
            problems.append(
                f"{where}: the step model is not in the source (model directories besides the "
                f"ensemble: {shipped}); ship every step model's directory with the ensemble"
            )
            continue
        inputs = {tensor.name for tensor in config.input}
        outputs = {tensor.name for tensor in config.output}
        for key, value in sorted(step.input_map.items()):
            if inputs and key not in inputs:
                problems.append(
                    f"{where}: input_map key {key!r} is not an input of {step.model_name!r} "
                    f"(it declares {', '.join(sorted(inputs))})"
                )
            if value not in available:
                problems.append(
                    f"{where}: input_map value {value!r} is neither an ensemble input nor "
                    "another step's output"
                )
        for key in sorted(step.output_map):
            if outputs and key not in outputs:
                problems.append(
                    f"{where}: output_map key {key!r} is not an output of {step.model_name!r} "
                    f"(it declares {', '.join(sorted(outputs))})"
                )
        missing = sorted(inputs - set(step.input_map)) if inputs else []
        required = [
            name for name in missing if not any(t.name == name and t.optional for t in config.input)
        ]
        if required:
            problems.append(
                f"{where}: input_map leaves out the step's inputs {', '.join(required)}"
            )
    for tensor in ensemble.output:
        if tensor.name not in produced:
            problems.append(
                f"{label}: ensemble output {tensor.name!r} is produced by no step's output_map"
            )
    return problems


def check_ensemble(
    ensemble: model_config_pb2.ModelConfig,
    steps: Mapping[str, model_config_pb2.ModelConfig],
    label: str,
) -> None:
    """Raise :class:`TritonConfigError` with every problem :func:`ensemble_problems` finds."""
    problems = ensemble_problems(ensemble, steps, label)
    if problems:
        raise TritonConfigError("; ".join(problems))

"""``mme-operator profile``: measure a model's serving variants and recommend one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mme_operator.api import ModelEndpoint, ModelSpec
from mme_operator.profile.grid import (
    DEFAULT_CONCURRENCY,
    DEFAULT_DELAYS_US,
    DEFAULT_INSTANCES,
    Grid,
    ProfileError,
)
from mme_operator.settings import get_settings


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected integers like 1,2,4") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive integers like 1,2,4")
    return values


def _delays(text: str) -> list[int | None]:
    out: list[int | None] = []
    for value in text.split(","):
        value = value.strip()
        if value == "off":
            out.append(None)
        elif value.isdigit():
            out.append(int(value))
        else:
            raise argparse.ArgumentTypeError(
                f"{value!r}: expected off or microseconds, e.g. off,500"
            )
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mme-operator profile``."""
    parser.add_argument("-f", "--file", required=True, help="YAML file with a ModelEndpoint")
    parser.add_argument("--model", help="model to profile (required when the file has several)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="a running tritonserver (--model-control-mode=explicit)")
    where.add_argument("--tritonserver", metavar="PATH", help="a tritonserver binary to start")
    parser.add_argument("--latency-budget-ms", type=float, help="largest acceptable p99 (ms)")
    parser.add_argument("--out", metavar="DIR", help="report directory (default profile-<model>)")
    parser.add_argument(
        "--instances",
        type=_ints,
        default=list(DEFAULT_INSTANCES),
        help="instance counts to try (default 1,2)",
    )
    parser.add_argument(
        "--delays-us",
        type=_delays,
        default=list(DEFAULT_DELAYS_US),
        help="dynamic batching queue delays to try, 'off' for none (default off,500,2000)",
    )
    parser.add_argument(
        "--concurrency",
        type=_ints,
        default=list(DEFAULT_CONCURRENCY),
        help="requests in flight to try (default 1,4,16)",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per point")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per point")
    parser.add_argument(
        "--metrics-url",
        help="Triton's metrics (e.g. http://host:8002/metrics) to read GPU memory per variant",
    )


def pick_model(resources: list[ModelEndpoint], name: str | None) -> ModelSpec:
    """The model to profile: ``name``, or the only one in the file."""
    models = [m for r in resources for m in r.spec.models]
    if name is not None:
        for model in models:
            if model.name == name:
                return model
        raise ProfileError(
            f"no model {name!r} in the file; it has {', '.join(m.name for m in models)}"
        )
    if len(models) != 1:
        raise ProfileError(
            f"the file has {len(models)} models ({', '.join(m.name for m in models)}); "
            "choose one with --model"
        )
    return models[0]


def profile_command(resources: list[ModelEndpoint], args: argparse.Namespace) -> int:
    """Run the profile; 0 with a recommendation, 1 when none meets the budget, 2 on bad input."""

    from mme_operator.profile.load import generate_inputs
    from mme_operator.profile.report import write_reports
    from mme_operator.profile.server import triton_target
    from mme_operator.profile.sweep import run_profile

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    grid = Grid(args.instances, args.delays_us, args.concurrency, args.warmup, args.seconds)
    try:
        model = pick_model(resources, args.model)
        generate_inputs(model)  # a model without inputs fails here, before any server starts
        with triton_target(url=args.url, binary=args.tritonserver) as target:
            progress(f"profiling {model.name} on {target.description}")
            profile = run_profile(
                model,
                target,
                grid,
                settings=get_settings(),
                latency_budget_ms=args.latency_budget_ms,
                metrics_url=args.metrics_url or target.metrics_url,
                progress=progress,
            )
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out or f"profile-{model.name}")
    written, note = write_reports(profile, out)
    for path in written:
        print(f"wrote {path}")
    if note:
        print(f"note: {note}")
    best = profile.recommendation()
    if best is None:
        print(
            f"no variant kept p99 within {args.latency_budget_ms:g} ms; raise the budget, "
            "lower the concurrency, or choose a faster instance type"
        )
        return 1
    print("recommended (paste into the ModelEndpoint):")
    print(profile.patch(best), end="")
    return 0

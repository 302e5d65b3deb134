"""``mme-operator size``: every candidate instance type per ModelEndpoint, cheapest first.

Weights sizes are read without downloading (S3 HeadObject/ListObjectsV2, file sizes, an
https HEAD). With ``--profile`` reports from ``mme-operator profile``, a GPU memory measured
there replaces the estimate, and a model's ``expectedRequestsPerSecond`` is turned into the
instance count that carries it at the profiled latency. With ``--from-endpoint NAME`` the
ModelEndpoint of that name (or SageMaker endpoint name) is also judged by its MME metrics
in CloudWatch: the cache summary, ``CacheHealthy``'s verdict and the fix, as the operator
writes them to its status.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mme_operator.api import ModelEndpoint, ModelSpec
from mme_operator.api.spec import AttachFrom
from mme_operator.manifests import Found
from mme_operator.reconcile.attach import namespace_admitted
from mme_operator.settings import Settings, get_settings
from mme_operator.sizing.catalogue import CatalogueError, InstanceCatalogue, get_catalogue
from mme_operator.sizing.fit import (
    DEFAULT_HEADROOM_PERCENT,
    UNKNOWN_BASIS,
    Candidate,
    ModelNeed,
    candidates,
    gpu_instances,
    largest_gpu_mib,
    recommend,
)


class SizeError(Exception):
    """The sizing cannot be worked out; the message says what to change."""


@dataclass(frozen=True)
class ProfileFacts:
    """What a profile report says about one model."""

    model: str
    server: str
    throughput_rps: float | None
    """Recommended variant's throughput (within the profile's latency budget)."""
    p99_ms: float | None
    gpu_memory_mib: dict[int, float]
    """Measured GPU memory by instance count (a profile on a GPU only)."""


def read_profiles(paths: Sequence[str]) -> dict[str, ProfileFacts]:
    """The profile reports by model name."""
    out = {}
    for path in paths:
        try:
            report = json.loads(Path(path).read_text())
            best = report.get("recommendation") or {}
            memory = {
                int(r["instances"]): float(r["gpuMemoryMiB"])
                for r in report["results"]
                if r.get("gpuMemoryMiB") is not None
            }
            facts = ProfileFacts(
                model=str(report["model"]),
                server=str(report.get("server", "")),
                throughput_rps=best.get("throughput_rps"),
                p99_ms=best.get("p99_ms"),
                gpu_memory_mib=memory,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SizeError(f"--profile {path}: not a profile report.json ({exc})") from None
        out[facts.model] = facts
    return out


def weights_sizes(
    resource: ModelEndpoint, settings: Settings
) -> tuple[dict[str, int | None], dict[str, str]]:
    """Each model's weights size in bytes (None when unreadable), and why per unreadable one."""
    import boto3
    import botocore.exceptions

    from mme_operator.artifacts import ArtifactError, open_source
    from mme_operator.profile.variants import file_roots_for

    s3 = boto3.client(
        "s3", region_name=resource.spec.region, endpoint_url=settings.aws_endpoint_url
    )
    sizes: dict[str, int | None] = {}
    notes: dict[str, str] = {}
    for model in resource.spec.models:
        if model.gpu_memory_mib is not None:
            sizes[model.name] = None  # the spec's figure is used; no need to look
            continue
        try:
            source = open_source(
                model.source,
                s3_client=s3,
                settings=settings,
                file_roots=file_roots_for(model.source),
            )
            sizes[model.name] = source.size_bytes()
        except (
            ArtifactError,
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
        ) as exc:
            sizes[model.name] = None
            notes[model.name] = f"size of {model.source} unknown ({exc})"
    return sizes, notes


def _measured(model: ModelSpec, profiles: Mapping[str, ProfileFacts]) -> float | None:
    facts = profiles.get(model.name)
    return None if facts is None else facts.gpu_memory_mib.get(gpu_instances(model))


def instances_for_load(
    models: Sequence[ModelSpec], profiles: Mapping[str, ProfileFacts]
) -> tuple[int | None, list[str]]:
    """Instances that carry every model's ``expectedRequestsPerSecond`` at its profiled rate.

    The models share each instance's time, so their fractions of one instance add up.
    None when no model has both an expected load and a profile.
    """
    share = 0.0
    lines = []
    for model in models:
        facts = profiles.get(model.name)
        if model.expected_requests_per_second is None:
            continue
        if facts is None or not facts.throughput_rps:
            lines.append(
                f"{model.name}: expects {model.expected_requests_per_second:g} req/s but has no "
                "profile report (run mme-operator profile, pass --profile DIR/report.json)"
            )
            continue
        fraction = model.expected_requests_per_second / facts.throughput_rps
        share += fraction
        lines.append(
            f"{model.name}: {model.expected_requests_per_second:g} req/s / "
            f"{facts.throughput_rps:g} req/s per instance (p99 {facts.p99_ms:g} ms, measured on "
            f"{facts.server}) = {fraction:.2f} instance"
        )
    return (math.ceil(share) if share else None), lines


def size_resource(
    resource: ModelEndpoint,
    catalogue: InstanceCatalogue,
    region: str,
    weights: Mapping[str, int | None],
    profiles: Mapping[str, ProfileFacts],
    *,
    assume_unknown: bool = False,
) -> dict[str, Any]:
    """The ``size`` result of one ModelEndpoint, as the JSON output has it.

    A model whose size is unknown (no weights size, gpuMemoryMiB nor measurement) would be
    counted as overhead only: no type is recommended from that, unless ``assume_unknown``.
    """
    from mme_operator.sizing.fit import model_need

    spec = resource.spec
    needs = [model_need(m, weights.get(m.name), _measured(m, profiles)) for m in spec.models]
    count, load_lines = instances_for_load(spec.models, profiles)
    instance_count = count or spec.instance_count
    headroom = spec.sizing.headroom_percent if spec.sizing else DEFAULT_HEADROOM_PERCENT
    families = spec.sizing.allowed_families if spec.sizing else None
    found = candidates(
        needs,
        catalogue,
        region,
        headroom_percent=headroom,
        families=families,
        instance_count=instance_count,
    )
    best = recommend(found)
    required = sum(n.required_mib for n in needs)
    unknown = [n.name for n in needs if n.basis == UNKNOWN_BASIS]
    why = _why(best, found, required, headroom, catalogue)
    if unknown and not assume_unknown:
        best = None
        why = (
            f"not recommended: the size of models {', '.join(unknown)} is unknown, so what "
            "they need is not known: make their sources readable, set their gpuMemoryMiB, or "
            "pass --assume-unknown to count them as overhead only"
        )
    return {
        "name": f"{resource.metadata.namespace}/{resource.metadata.name}",
        "region": region,
        "recommended": best.instance.name if best else None,
        "why": why,
        "unknownSizes": unknown,
        "gpuMemoryRequiredMiB": required,
        "headroomPercent": headroom,
        "instanceCount": instance_count,
        "instanceCountFromLoad": count,
        "load": load_lines,
        "models": [_need_row(n) for n in needs],
        "candidates": [_candidate_row(c) for c in found],
    }


def _need_row(need: ModelNeed) -> dict[str, Any]:
    return {
        "name": need.name,
        "gpuInstances": need.gpu_instances,
        "gpuMemoryMiB": need.required_mib,
        "basis": need.basis,
    }


def _candidate_row(c: Candidate) -> dict[str, Any]:
    return {
        "instanceType": c.instance.name,
        "gpu": c.instance.gpu_model,
        "gpuMemoryRequiredMiB": c.required_mib,
        "gpuMemoryAvailableMiB": c.available_mib,
        "fits": c.fits,
        "costPerHour": c.cost_per_hour,
        "costPerMonth": c.cost_per_month,
    }


def _why(
    best: Candidate | None,
    found: Sequence[Candidate],
    required: int,
    headroom: int,
    catalogue: InstanceCatalogue,
) -> str:
    if best is not None:
        return (
            f"cheapest type that fits: {best.instance.name} at ${best.cost_per_hour:g}/h "
            f"({required} MiB needed, {best.available_mib} MiB usable at {headroom}% headroom)"
        )
    if any(c.fits for c in found):
        return "types fit but none has a price for this region: add prices with MME_INSTANCE_CATALOGUE_FILE"
    largest = largest_gpu_mib(catalogue)
    return (
        f"no single-GPU MME type fits: the models need {required} MiB of GPU memory at their "
        f"instance counts, the largest MME GPU has {largest} MiB "
        f"({int(largest * (1 - headroom / 100))} MiB usable at {headroom}% headroom); "
        "split the models over several ModelEndpoints, lower instanceGroups counts, or set "
        "gpuMemoryMiB from a measurement"
    )


CacheReport = Callable[[ModelEndpoint, Sequence[ModelNeed], float], dict[str, Any]]
"""(resource, model needs, headroom percent) -> the ``cache`` part of a result: the
endpoint's metrics window, verdict and fix (reconcile/cache_signals.py)."""


def needs_of(result: Mapping[str, Any]) -> list[ModelNeed]:
    """The model needs of a ``size`` result (its ``models`` rows)."""
    return [
        ModelNeed(
            m["name"], m["gpuInstances"], m["gpuMemoryMiB"], m["basis"], m["basis"] == "KIND_CPU"
        )
        for m in result["models"]
    ]


def _cache_lines(cache: Mapping[str, Any]) -> list[str]:
    figures = [
        f"{cache[key]}{unit} {label}"
        for key, label, unit in (
            ("invocations", "invocations", ""),
            ("cacheHitRatio", "hit ratio", ""),
            ("modelUnloads", "unloads", ""),
            ("loadedModels", "models loaded per instance", ""),
            ("modelLoadWaitMs", "load wait", " ms"),
            ("gpuMemoryUtilizationPercent", "GPU memory", "%"),
            ("gpuUtilizationPercent", "GPU", "%"),
        )
        if cache.get(key) is not None
    ]
    verdict = cache["cacheHealthy"]
    return [
        f"  cache of {cache['endpointName']} since {cache['windowStart']}: "
        + (", ".join(figures) or "no data"),
        f"  CacheHealthy {verdict['status']} ({verdict['reason']}): {verdict['message']}",
    ]


def table(result: dict[str, Any]) -> str:
    """One endpoint's result as the text the command prints."""
    lines = [
        f"{result['name']} ({result['region']}, {result['instanceCount']} instance(s)): "
        f"models need {result['gpuMemoryRequiredMiB']} MiB of GPU memory"
    ]
    for m in result["models"]:
        lines.append(
            f"  model {m['name']}: {m['gpuMemoryMiB']} MiB ({m['gpuInstances']} GPU instance(s), "
            f"{m['basis']})"
        )
    lines.extend(f"  load: {line}" for line in result["load"])
    lines.append(
        f"  {'instance type':<18} {'GPU':<12} {'required':>9} {'available':>9} {'fits':>4}"
        f" {'$/hour':>8} {'$/month':>9}"
    )
    for c in result["candidates"]:
        hour = f"{c['costPerHour']:.4g}" if c["costPerHour"] is not None else "-"
        month = f"{c['costPerMonth']:.0f}" if c["costPerMonth"] is not None else "-"
        lines.append(
            f"  {c['instanceType']:<18} {c['gpu'] or 'CPU':<12} {c['gpuMemoryRequiredMiB']:>9}"
            f" {c['gpuMemoryAvailableMiB']:>9} {'yes' if c['fits'] else 'no':>4}"
            f" {hour:>8} {month:>9}"
        )
    lines.append(f"  recommended: {result['recommended'] or 'none'}: {result['why']}")
    if "cache" in result:
        lines.extend(_cache_lines(result["cache"]))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mme-operator size``."""
    parser.add_argument("--region", help="price region (default: each spec's region)")
    parser.add_argument("--output", choices=("table", "json"), default="table")
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="REPORT",
        help="a profile report.json (repeatable): measured GPU memory and throughput",
    )
    parser.add_argument(
        "--from-endpoint",
        metavar="NAME",
        help="size only the ModelEndpoint of -f named NAME (or whose SageMaker endpoint is "
        "NAME) and judge its cache by its MME metrics in CloudWatch (one GetMetricData over "
        "MME_METRICS_WINDOW_SECONDS): hit ratio, loads, GPU memory, CacheHealthy and the fix; "
        "exit 1 when the cache thrashes or memory stays full",
    )
    parser.add_argument(
        "--assume-unknown",
        action="store_true",
        help="count a model whose size cannot be read as its per-instance overhead only and "
        "recommend anyway (default: name it, recommend nothing for its endpoint, exit 2)",
    )


def with_attached_models(one: Found) -> ModelEndpoint:
    """The ModelEndpoint of ``one`` with the Models of the inputs that attach to it among its
    models (as ``<namespace>/<name>``, as the operator serves them): the whole set is sized.

    A Model of a namespace the endpoint does not admit (``spec.attach``) is left out; under
    ``from: Selector`` the namespaces' labels are not known here, so every Model naming the
    endpoint is counted (and a note says so)."""
    resource = one.resource
    attach = resource.spec.attach
    selecting = attach is not None and attach.from_ == AttachFrom.SELECTOR
    namespace = resource.metadata.namespace
    taken = [
        m
        for m in one.models
        if selecting or namespace_admitted(attach, namespace, m.metadata.namespace, None)
    ]
    if selecting and taken:
        print(f"note: {one.label}: spec.attach is from: Selector; the {len(taken)} Model(s) "
              "naming it are all counted (namespace labels are not read here)",
              file=sys.stderr)  # fmt: skip
    if not taken:
        return resource
    models = [*resource.spec.models, *(m.as_model_spec() for m in taken)]
    return resource.model_copy(update={"spec": resource.spec.model_copy(update={"models": models})})


def size_command(
    found: Sequence[Found], args: argparse.Namespace, cache_report: CacheReport | None = None
) -> int:
    """Print the sizing of every ModelEndpoint; the exit code is the worst of them.

    0: each has a recommendation; 1: some fits no type, or (``--from-endpoint``, with
    ``cache_report``) its cache is not healthy; 2: some model's size is unknown (without
    ``--assume-unknown``), a profile report or the catalogue is unusable, or no ModelEndpoint
    of ``-f`` has the ``--from-endpoint`` name.
    """
    wanted = getattr(args, "from_endpoint", None)
    if wanted:
        found = [f for f in found if wanted in (f.resource.metadata.name, f.resource.endpoint_name)]
        if not found:
            print(f"error: no ModelEndpoint in -f is named {wanted} (nor has that endpoint)",
                  file=sys.stderr)  # fmt: skip
            return 2
    try:
        catalogue = get_catalogue()
        profiles = read_profiles(args.profile)
    except (CatalogueError, SizeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = get_settings()
    results = []
    code = 0
    for one in found:
        resource = with_attached_models(one)
        weights, unreadable = weights_sizes(resource, settings)
        region = args.region or resource.spec.region
        result = size_resource(
            resource, catalogue, region, weights, profiles, assume_unknown=args.assume_unknown
        )
        for model, why in unreadable.items():
            if model not in result["unknownSizes"]:
                continue  # a profile's measurement stands in for it
            if args.assume_unknown:
                print(f"note: {one.label}: model {model}: {why}; counted as overhead only",
                      file=sys.stderr)  # fmt: skip
            else:
                print(f"{one.label}: model {model}: {why}: set gpuMemoryMiB", file=sys.stderr)
        code = max(code, 2 if result["unknownSizes"] and not args.assume_unknown else 0)
        code = max(code, 0 if result["recommended"] else 1)
        if wanted and cache_report is not None:
            cache = cache_report(resource, needs_of(result), result["headroomPercent"])
            result["cache"] = cache
            code = max(code, 1 if cache["cacheHealthy"]["status"] == "False" else 0)
        results.append({"file": one.file, **result})
    if args.output == "json":
        print(json.dumps(results, indent=2))
    else:
        print("\n\n".join(table(r) for r in results))
    return code

"""The ``mme-operator`` command line.

Each subcommand is one ``_cmd_<name>(args) -> int`` function plus one ``_add_<name>``
function that declares its subparser; add both and list the adder in ``_COMMANDS``.
``validate``, ``render``, ``plan`` and ``size`` read manifests as ``kubectl apply -f`` does
(:mod:`mme_operator.manifests`). The exit codes are :data:`EXIT_CODES` (also in ``--help``).
Each failure is one line per problem on stderr, naming its file, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from mme_operator import __version__
from mme_operator.api import ModelEndpoint, ModelSpec
from mme_operator.manifests import Found, InputError, Manifests, load_manifests, one_line
from mme_operator.settings import Settings, SettingsError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_NOT_INSTALLED = 3

EXIT_CODES = """\
exit codes (over several files, the highest wins):
  0  success: every ModelEndpoint is valid, rendered, planned with nothing blocked, sized
  1  the work could not be done: AWS unreachable, no credentials, a missing bucket, a port
     in use, an output that cannot be written; size: no instance type fits, or
     (--from-endpoint) the cache thrashes or GPU memory stays full
  2  invalid input: a file missing or unreadable, broken YAML, a wrong ModelEndpoint or
     MME_* setting, a wrong option; plan: the operator would stop at a block (e.g.
     NoServableModels, NotOwned); size: a model's size is unknown (see --assume-unknown)
  3  the command needs an extra that is not installed; the message gives the pip command
"""

FILE_HELP = (
    "a manifest file, a directory (every *.yaml, *.yml, *.json under it, recursively) or - "
    "for stdin; repeatable, and several may follow one -f (-f examples/*.yaml)"
)


def _add_file_option(parser: argparse.ArgumentParser) -> None:
    """``-f`` as ``kubectl apply -f`` has it: repeatable, files, directories or ``-``; also
    several paths after one ``-f``, as a shell glob (``-f examples/*.yaml``) gives them."""
    parser.add_argument(
        "-f",
        "--file",
        action="extend",
        nargs="+",
        required=True,
        dest="files",
        metavar="PATH",
        help=FILE_HELP,
    )


def _subcommand(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    help: str,
    description: str,
) -> argparse.ArgumentParser:
    """A subparser that prints :data:`EXIT_CODES` under its help."""
    return commands.add_parser(
        name,
        help=help,
        description=description,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _report(lines: list[str]) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return EXIT_INVALID if lines else EXIT_OK


def _on_manifests(
    args: argparse.Namespace, run: Callable[[list[Found], argparse.Namespace], int]
) -> int:
    """Run a command on the valid ModelEndpoints of ``-f``; the invalid ones are reported.

    The exit code is the worst (highest) of the problems' (2) and the command's.
    """
    manifests = load_manifests(args.files)
    code = _report(manifests.problems)
    if not manifests.found:
        return code
    return max(code, run(manifests.found, args))


def _all_valid(args: argparse.Namespace) -> Manifests | int:
    """The manifests of ``-f`` when every input is valid, else the exit code of the report."""
    manifests = load_manifests(args.files)
    if manifests.problems:
        return _report(manifests.problems)
    return manifests


# --- crd ---------------------------------------------------------------------------------


def _cmd_crd(args: argparse.Namespace) -> int:
    from mme_operator.api.crd import crd_yaml

    sys.stdout.write(crd_yaml(args.kind))
    return EXIT_OK


def _add_crd(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "crd",
        help="print the ModelEndpoint (or Model) CustomResourceDefinition (YAML)",
        description="Print a CRD generated from the API models: ModelEndpoint, or Model.",
    )
    parser.add_argument(
        "--kind",
        choices=("ModelEndpoint", "Model"),
        default="ModelEndpoint",
        help="which kind's CRD (default: ModelEndpoint)",
    )
    parser.set_defaults(handler=_cmd_crd)


# --- schemas -----------------------------------------------------------------------------


def _cmd_schemas(args: argparse.Namespace) -> int:
    from mme_operator.api.json_schema import write_schemas

    try:
        written = write_schemas(Path(args.output))
    except OSError as error:
        print(f"mme-operator schemas: {args.output}: {error.strerror or error}", file=sys.stderr)
        return EXIT_FAILED
    for path in written:
        print(path)
    return EXIT_OK


def _add_schemas(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "schemas",
        help="write strict JSON Schemas of the custom resources (for kubeconform and editors)",
        description="Write one JSON Schema per kind and version (modelendpoint_v1alpha1.json) "
        "into DIR: the whole object, unknown fields refused, generated from the API models. "
        "kubeconform: -schema-location 'DIR/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'.",
    )
    parser.add_argument(
        "-o", "--output", metavar="DIR", default="schemas", help="directory (default: schemas)"
    )
    parser.set_defaults(handler=_cmd_schemas)


# --- validate ----------------------------------------------------------------------------


def _cmd_validate(args: argparse.Namespace) -> int:
    manifests = _all_valid(args)
    if isinstance(manifests, int):
        return manifests
    if args.policy is not None:
        refused = _policy_refusals(manifests.found, args.policy)
        if refused:
            return _report(refused)
    for found in manifests.found:
        print(f"ok: {found.resource.metadata.namespace}/{found.resource.metadata.name}")
    return EXIT_OK


def _policy_refusals(found: list[Found], path: str) -> list[str]:
    """What the tenancy policy at ``path`` refuses, one line each; the inputs are each
    other's neighbours (an earlier one is the older, as if applied in that order)."""
    from mme_operator.tenancy import ArchiveLocation, PolicyError, policy_problems, read_policy

    try:
        policy = read_policy(path)
    except PolicyError as error:
        raise InputError(str(error)) from None
    locations = [
        ArchiveLocation(
            one.label,
            f"{index:09d}",
            one.resource.spec.artifacts.bucket,
            one.resource.artifact_prefix,
        )
        for index, one in enumerate(found)
    ]
    lines = []
    for index, one in enumerate(found):
        meta = one.resource.metadata
        me = one.resource.model_copy(
            update={
                "metadata": meta.model_copy(
                    update={"uid": one.label, "creation_timestamp": f"{index:09d}"}
                )
            }
        )
        for problem in policy_problems(me, policy, locations):
            lines.append(f"{one.label}: refused by the tenancy policy: {problem}")
    return lines


def _add_validate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _subcommand(
        commands,
        "validate",
        help="check ModelEndpoint manifests; one line per problem",
        description="Validate every ModelEndpoint in the -f inputs (multi-document YAML or "
        "JSON; other kinds are skipped). Prints ok: <namespace>/<name> for each when all are "
        "valid; otherwise one line per problem on stderr, each naming its file.",
    )
    _add_file_option(parser)
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="also check them against this tenancy policy (the chart's tenancy values as the "
        "operator reads them; see docs/tenancy.md)",
    )
    parser.set_defaults(handler=_cmd_validate)


# --- render ------------------------------------------------------------------------------


RENDER_HEADER = "# ==> {path} <== {label}"
"""Precedes each config of ``render -o -``: ``path`` is where ``-o DIR`` would write it."""


def _cmd_render(args: argparse.Namespace) -> int:
    manifests = _all_valid(args)
    if isinstance(manifests, int):
        return manifests
    try:
        from mme_operator.triton import TritonConfigError, render_model_config
    except ImportError as error:
        raise InputError(f"rendering is unavailable: {one_line(str(error))}") from None

    # Every model lands in DIR/<model>/: the same name twice would overwrite silently.
    owner: dict[str, str] = {}
    problems: list[str] = []
    rendered: list[tuple[str, str, str]] = []
    notices: list[str] = []
    for found in manifests.found:
        label = found.label
        for i, model in enumerate(found.resource.spec.models):
            if model.name in owner:
                problems.append(
                    f"{label}: spec.models[{i}].name: model {model.name!r} is also defined by "
                    f"{owner[model.name]}; render writes one directory per model name"
                )
                continue
            owner[model.name] = label
            try:
                text = render_model_config(model)
            except TritonConfigError as error:
                problems.append(f"{label}: spec.models[{i}]: {one_line(str(error))}")
                continue
            at = f"{label}: spec.models[{i}]"
            read = _render_from_source(model, text, at)
            if isinstance(read, str):
                problems.append(read)
                continue
            text, notes = read
            rendered.append((f"{model.name}/config.pbtxt", label, text))
            notices.extend(f"note: {at}: {note}" for note in notes)
    if problems:
        return _report(problems)
    for notice in notices:
        print(notice, file=sys.stderr)
    if args.output == "-":
        for path, label, text in rendered:
            sys.stdout.write(RENDER_HEADER.format(path=path, label=label) + "\n" + text)
        return EXIT_OK
    for relative, _, text in rendered:
        written = Path(args.output) / relative
        try:
            written.parent.mkdir(parents=True, exist_ok=True)
            written.write_text(text, encoding="utf-8")
        except OSError as error:
            print(f"error: {written}: cannot write: {one_line(str(error))}", file=sys.stderr)
            return EXIT_FAILED
        print(f"wrote {written}")
    return EXIT_OK


def _render_from_source(model: ModelSpec, text: str, at: str) -> tuple[str, list[str]] | str:
    """The config.pbtxt the archive of ``model`` will carry, read from its source.

    (text, notes) or one problem line. A source that cannot be read here (no credentials,
    not mounted) leaves the spec's config, with a note: the operator merges the source's
    own config.pbtxt, if any, under it. s3:// sources are read with the standard credential
    chain less instance metadata (render must not reach for an instance role).
    """
    # Imported here: `validate` and `--help` need none of boto3, protobuf or the sources.
    import os
    import tempfile

    import boto3
    import botocore.exceptions

    from mme_operator.artifacts import ArtifactError, open_source
    from mme_operator.artifacts.errors import InvalidSourceError, UnsafeArchiveError
    from mme_operator.artifacts.repository import plan_source_archive
    from mme_operator.settings import get_settings
    from mme_operator.triton import default_model_filename, parse_model_config

    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    try:
        settings = get_settings()
        s3 = boto3.client("s3", endpoint_url=settings.aws_endpoint_url)
        source = open_source(model.source, s3_client=s3, file_roots=["/"])
        with tempfile.TemporaryDirectory(prefix="mme-render-") as scratch:
            plan = plan_source_archive(
                model.name, text, source, default_model_filename(model), Path(scratch)
            )
    except (InvalidSourceError, UnsafeArchiveError) as error:
        return f"{at}: {one_line(str(error))}"
    except (
        ArtifactError,
        botocore.exceptions.BotoCoreError,
        botocore.exceptions.ClientError,
    ) as error:
        note = (
            f"source not read ({one_line(str(error))}): this is the spec's config; a "
            "config.pbtxt in the source is merged under it"
        )
        return text, [note]
    notes = [
        f"set from the spec over the source's config.pbtxt: {change}" for change in plan.changes
    ]
    final = parse_model_config(plan.config_pbtxt)
    if not final.platform and not final.backend:
        notes.append(
            "neither the spec nor the source's config.pbtxt names a platform or backend: "
            "Triton infers it from the version directory's file names (1/model.onnx, ...)"
        )
    return plan.config_pbtxt, notes


def _add_render(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _subcommand(
        commands,
        "render",
        help="write each model's Triton config.pbtxt",
        description="Validate the -f inputs, then write DIR/<model>/config.pbtxt for every "
        "model of every ModelEndpoint in them. Nothing is written when any problem is found. "
        "With -o -, the configs go to stdout, each after a line "
        "'# ==> <model>/config.pbtxt <== <file>: <namespace>/<name>' (a pbtxt comment).",
    )
    _add_file_option(parser)
    parser.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="output directory, or - for stdout"
    )
    parser.set_defaults(handler=_cmd_render)


# --- profile -----------------------------------------------------------------------------


def _cmd_profile(args: argparse.Namespace) -> int:
    from mme_operator.profile.command import profile_command

    args.files = [args.file]  # one manifest: profile runs one model
    manifests = _all_valid(args)
    if isinstance(manifests, int):
        return manifests
    return profile_command([found.resource for found in manifests.found], args)


def _add_profile(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from mme_operator.profile.command import add_arguments

    parser = commands.add_parser(
        "profile",
        help="measure a model's instance counts and batching delays on a real Triton",
        description="Package a model as the operator would, load each variant (instance count x "
        "batching delay) into a Triton, drive it at several concurrencies (a bounded grid), "
        "write DIR/report.json, report.csv and throughput-latency.png, and print the variant "
        "with the highest throughput within the latency budget as a YAML patch.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=_cmd_profile)


# --- size --------------------------------------------------------------------------------


def _cmd_size(args: argparse.Namespace) -> int:
    from mme_operator.sizing.command import size_command

    if not args.from_endpoint:
        return _on_manifests(args, size_command)
    from functools import partial

    from mme_operator.reconcile.cache_signals import endpoint_cache_report
    from mme_operator.sagemaker.metrics_read import (
        CacheMetrics,
        CloudWatchClients,
        read_cache_metrics,
    )
    from mme_operator.settings import get_settings
    from mme_operator.sizing import get_catalogue
    from mme_operator.sizing.fit import ModelNeed

    settings = get_settings()
    cloudwatch = CloudWatchClients(settings)

    def read(region: str, endpoint: str, start: datetime, end: datetime) -> CacheMetrics:
        return read_cache_metrics(cloudwatch(region), endpoint, start, end)

    def report(
        resource: ModelEndpoint, needs: Sequence[ModelNeed], headroom: float
    ) -> dict[str, Any]:
        catalogue = get_catalogue()
        return endpoint_cache_report(resource, needs, headroom, catalogue, read, settings)

    return _on_manifests(args, partial(size_command, cache_report=report))


def _add_size(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from mme_operator.sizing.command import add_arguments

    parser = _subcommand(
        commands,
        "size",
        help="GPU memory fit and cost of every candidate instance type, cheapest first",
        description="For each ModelEndpoint in the -f inputs: the GPU memory its models need "
        "(weights size read without downloading x instances x a per-platform factor + "
        "overhead, or gpuMemoryMiB, or a profile's measurement) against every MME instance "
        "type, with cost per hour and per month, cheapest first, and the recommendation. No "
        "recommendation is made from a model whose size could not be read: it is named, and "
        "the exit code is 2, unless --assume-unknown counts it as overhead only.",
    )
    _add_file_option(parser)
    add_arguments(parser)
    parser.set_defaults(handler=_cmd_size)


# --- run ---------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from mme_operator.logging_setup import configure_logging
    from mme_operator.malloc import limit_arenas
    from mme_operator.metrics import start_metrics_server
    from mme_operator.readiness import KubeConfigError, check_kube_config
    from mme_operator.runner import OperatorOptions, run_operator
    from mme_operator.settings import get_settings
    from mme_operator.tenancy import PolicyError, load_policy

    settings = get_settings()
    try:
        load_policy(settings.tenancy_policy_file, settings.tenancy_open)
    except PolicyError as error:
        print(f"mme-operator run: {error}", file=sys.stderr)
        return EXIT_INVALID
    # Before any thread starts: the arenas made later obey the cap.
    limit_arenas(settings.malloc_arena_max)
    try:
        checked = check_kube_config()
    except KubeConfigError as error:
        print(f"mme-operator run: {error}", file=sys.stderr)
        return EXIT_INVALID
    configure_logging(settings.log_format, "DEBUG" if args.verbose else "INFO")
    # kopf's liveness server logs every probe through aiohttp's access log: not news.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    namespaces = args.namespace or ([settings.namespace] if settings.namespace else [])
    if args.all_namespaces:
        namespaces = []
    start_metrics_server(settings.metrics_port, settings.metrics_address)
    health = settings.listen_url(settings.health_address, settings.health_port)
    liveness = args.liveness or (f"http://{health}/healthz" if settings.health_port else None)
    readiness = (
        settings.listen_url(settings.readiness_address, settings.readiness_port)
        if settings.readiness_port
        else None
    )
    options = OperatorOptions(
        namespaces=namespaces,
        liveness=liveness,
        readiness=readiness,
        peering=args.peering,
        stop_aws_calls_on_exit=True,
        first_login=checked,
    )
    asyncio.run(run_operator(settings, options))
    return EXIT_OK


def _add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "run",
        help="run the operator against the cluster of the kubeconfig or the in-cluster account",
        description="Run the operator. Configuration comes from MME_* environment variables "
        "(see the README); AWS credentials from the usual boto3 chain.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", action="append", help="watch this namespace (repeatable)"
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch all namespaces (default)"
    )
    parser.add_argument(
        "--liveness",
        metavar="URL",
        help="serve kopf's liveness probe here (default "
        "http://$MME_HEALTH_ADDRESS:$MME_HEALTH_PORT/healthz)",
    )
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument(
        "--standalone",
        action="store_true",
        help="run without kopf peering (the default: the chart runs one replica)",
    )
    peering.add_argument(
        "--peering", metavar="NAME", help="use kopf peering object NAME (needs kopf's peering CRDs)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.set_defaults(handler=_cmd_run)


# --- plan --------------------------------------------------------------------------------


def _cmd_plan(args: argparse.Namespace) -> int:
    return _on_manifests(args, _plan_all)


def _plan_all(found: list[Found], args: argparse.Namespace) -> int:
    """Print the dry run of each ModelEndpoint; the exit code is the worst of them."""
    import botocore.exceptions

    from mme_operator.settings import get_settings

    settings = get_settings()
    code = EXIT_OK
    for one in found:
        resource = one.resource
        try:
            lines, blocks = _plan_lines(resource, settings)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            print(f"error: {one.label}: {_aws_failure(error, resource)}", file=sys.stderr)
            code = max(code, EXIT_FAILED)
            continue
        print(f"{one.label} (endpoint {resource.endpoint_name}, {resource.spec.region}):")
        for line in lines:
            print(f"  {line}")
        for block in blocks:
            print(f"{one.label}: {block}", file=sys.stderr)
        if blocks:
            code = max(code, EXIT_INVALID)
    return code


def _plan_lines(resource: ModelEndpoint, settings: Settings) -> tuple[list[str], list[str]]:
    """The dry run of one resource as lines, and why the operator would stop (none: it
    would carry on); AWS errors are raised."""
    from mme_operator.reconcile import dry_run
    from mme_operator.sagemaker import make_clients
    from mme_operator.sagemaker.resources import OWNER_TAG, OWNER_UID_TAG

    clients = make_clients(resource.spec.region, settings)
    meta = resource.metadata
    owner = f"{meta.namespace}/{meta.name}"
    if not meta.uid:
        # A file has no uid: take the owner uid from the endpoint if it is this resource's.
        gateway = clients.gateway()
        endpoint = gateway.describe_endpoint(resource.endpoint_name)
        tags = gateway.tags_of(endpoint.arn) if endpoint else {}
        meta.uid = tags.get(OWNER_UID_TAG, "") if tags.get(OWNER_TAG) == owner else ""
        meta.uid = meta.uid or "not-yet-created"
    plan = dry_run(
        resource.to_k8s() | {"metadata": meta.model_dump(by_alias=True)}, clients, settings
    )
    if isinstance(plan, list):
        return [f"invalid: {line}" for line in plan], [f"invalid: {line}" for line in plan]
    blocked = plan.blocked
    blocks = [f"blocked ({blocked.reason}): {blocked.message}"] if blocked is not None else []
    return list(plan.describe()), blocks


def _aws_failure(error: Exception, resource: ModelEndpoint) -> str:
    """One line for a user at a terminal: what failed and what to do."""
    import botocore.exceptions

    from mme_operator.sagemaker.errors import describe_error, is_missing_bucket

    if is_missing_bucket(error):
        return (
            f"the artifacts bucket {resource.spec.artifacts.bucket!r} does not exist: create it "
            "or correct spec.artifacts.bucket"
        )
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return (
            "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (plan only reads S3 and SageMaker)"
        )
    if isinstance(error, botocore.exceptions.ClientError):
        return describe_error(error)
    return f"cannot reach AWS: {one_line(str(error))}"


def _add_plan(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _subcommand(
        commands,
        "plan",
        help="dry run: print the actions the operator would take (changes nothing)",
        description="Observe S3 and SageMaker for each ModelEndpoint in the -f inputs and "
        "print the ordered actions that would bring them to the spec. Read-only. Where the "
        "operator would stop (blocked, e.g. NoServableModels when no model's source can be "
        "read), one line on stderr says why and the exit code is 2.",
    )
    _add_file_option(parser)
    parser.set_defaults(handler=_cmd_plan)


# --- demo --------------------------------------------------------------------------------


def _local_extra_missing(command: str) -> bool:
    """Say in one line what to install when the ``local`` extra is absent."""
    from mme_operator.local import missing_local_extra

    problem = missing_local_extra(command)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
    return problem is not None


def _cmd_demo(args: argparse.Namespace) -> int:
    if _local_extra_missing("demo"):
        return EXIT_NOT_INSTALLED
    from mme_operator.demo import run_demo
    from mme_operator.logging_setup import configure_logging

    configure_logging("text", "DEBUG" if args.verbose else "WARNING")
    # The demo runs kopf in a thread, where it rightly cannot take over Ctrl-C; not news.
    logging.getLogger("kopf._core.reactor.running").setLevel(logging.ERROR)
    return run_demo(timeout=args.timeout)


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the whole product locally: local SageMaker + Kubernetes API + operator",
        description="Start a local SageMaker/S3 and a local Kubernetes API, install the CRD, "
        "apply a ModelEndpoint with two tiny models, run the operator until Ready, print the "
        "status and invoke a model. No cloud, no cluster.",
    )
    parser.add_argument("--timeout", type=float, default=50.0, help="seconds to wait for Ready")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the operator's logs")
    parser.set_defaults(handler=_cmd_demo)


# --- local-aws ---------------------------------------------------------------------------


def _add_local_aws(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from mme_operator.local.cli import add_parser

    def _cmd_local_aws(args: argparse.Namespace) -> int:
        if _local_extra_missing("local-aws"):
            return EXIT_NOT_INSTALLED
        result: int = args.run(args)
        return result

    parser = add_parser(commands)
    parser.set_defaults(handler=_cmd_local_aws)


_COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_crd,
    _add_schemas,
    _add_validate,
    _add_render,
    _add_run,
    _add_plan,
    _add_demo,
    _add_local_aws,
    _add_profile,
    _add_size,
]


# --- wiring ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered in ``_COMMANDS``."""
    parser = argparse.ArgumentParser(
        prog="mme-operator",
        description="Declarative SageMaker Multi-Model Endpoints on GPU, served by NVIDIA Triton.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", title="commands", required=True)
    for add_command in _COMMANDS:
        add_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``mme-operator`` with ARGV (default ``sys.argv[1:]``); return the exit code."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    except SettingsError as error:
        for line in error.lines:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())

"""The ``mme-operator`` command line.

Each subcommand is one ``_cmd_<name>(args) -> int`` function plus one ``_add_<name>``
function that declares its subparser; add both and list the adder in ``_COMMANDS``.
Exit codes: 0 success, 1 the command could not do its work (AWS unreachable, no
credentials, a missing bucket, a port in use), 2 the input or an ``MME_*`` setting is wrong,
3 the command needs an extra that is not installed. Each failure is one line per problem on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mme_operator import __version__
from mme_operator.api import API_VERSION, GROUP, KIND, ModelEndpoint, ModelSpec, validate_resource
from mme_operator.safe_yaml import YamlLimitError, load_documents
from mme_operator.sagemaker.images import image_problems
from mme_operator.settings import Settings, SettingsError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_NOT_INSTALLED = 3


class InputError(Exception):
    """The input cannot be used at all (missing file, broken YAML): one line says why."""


@dataclass
class LoadedFile:
    """The ModelEndpoints of one file, and every problem found in it (one line each)."""

    resources: list[ModelEndpoint] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _display_name(file: str) -> str:
    return "<stdin>" if file == "-" else file


def _read_documents(file: str) -> list[Any]:
    """The YAML documents of FILE (``-`` is stdin); :class:`InputError` when unreadable."""
    name = _display_name(file)
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, expected a YAML file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{name}: cannot read: {_one_line(str(error))}") from None
    try:
        return load_documents(text)
    except YamlLimitError as error:
        raise InputError(f"{name}: YAML refused: {_one_line(str(error))}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = error.problem or error.context or "syntax error"
        raise InputError(f"{name}: invalid YAML{where}: {_one_line(what)}") from None
    except yaml.YAMLError as error:
        raise InputError(f"{name}: invalid YAML: {_one_line(str(error))}") from None


def _is_model_endpoint(doc: dict[str, Any]) -> bool:
    api_version = doc.get("apiVersion")
    return doc.get("kind") == KIND or (
        isinstance(api_version, str) and api_version.startswith(f"{GROUP}/")
    )


def _label(doc: dict[str, Any], where: str) -> str:
    """``<namespace>/<name>`` as ``kubectl`` would place it, else where it is in the file."""
    metadata = doc.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
        namespace = metadata.get("namespace")
        return f"{namespace if isinstance(namespace, str) else 'default'}/{metadata['name']}"
    return where


LIST_KINDS = ("List", f"{KIND}List")
"""What ``kubectl get -o yaml`` prints around several objects: read their ``items``."""


def _objects(documents: list[Any], loaded: LoadedFile) -> list[tuple[str, Any]]:
    """(label, object) of every document, with ``kind: List`` documents opened up."""
    found: list[tuple[str, Any]] = []
    for index, doc in enumerate(documents, start=1):
        if isinstance(doc, dict) and doc.get("kind") in LIST_KINDS:
            items = doc.get("items")
            if not isinstance(items, list):
                loaded.problems.append(f"document {index}: items: expected a list of objects")
                continue
            found += [(f"document {index} item {i}", item) for i, item in enumerate(items)]
        elif doc is not None:  # None: an empty document, e.g. after a trailing `---`
            found.append((f"document {index}", doc))
    return found


def load_model_endpoints(file: str) -> LoadedFile:
    """Parse and validate every ModelEndpoint in FILE; other kinds are noted on stderr.

    Raises :class:`InputError` when the file cannot be read or parsed at all.
    """
    loaded = LoadedFile()
    found = 0
    for where, doc in _objects(_read_documents(file), loaded):
        if not isinstance(doc, dict):
            loaded.problems.append(
                f"{where}: expected a Kubernetes object (a mapping), got {type(doc).__name__}"
            )
            continue
        if not _is_model_endpoint(doc):
            kind = doc.get("kind") if isinstance(doc.get("kind"), str) else "no kind"
            print(
                f"note: {_display_name(file)}: {where} ({kind}) skipped: not a {KIND}",
                file=sys.stderr,
            )
            continue
        found += 1
        label = _label(doc, where)
        resource, problems = validate_resource(doc)
        if resource is not None:
            problems = image_problems(resource.spec)
            resource = None if problems else resource
        loaded.problems.extend(f"{label}: {_one_line(str(problem))}" for problem in problems)
        if resource is not None:
            loaded.resources.append(resource)
    if not found and not loaded.problems:
        raise InputError(f"{_display_name(file)}: no {KIND} ({API_VERSION}) found")
    return loaded


def _report(lines: list[str]) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return EXIT_INVALID if lines else EXIT_OK


# --- crd ---------------------------------------------------------------------------------


def _cmd_crd(args: argparse.Namespace) -> int:
    from mme_operator.api.crd import crd_yaml

    sys.stdout.write(crd_yaml())
    return EXIT_OK


def _add_crd(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "crd",
        help="print the ModelEndpoint CustomResourceDefinition (YAML)",
        description="Print the ModelEndpoint CRD generated from the API models.",
    )
    parser.set_defaults(handler=_cmd_crd)


# --- validate ----------------------------------------------------------------------------


def _cmd_validate(args: argparse.Namespace) -> int:
    loaded = load_model_endpoints(args.file)
    if loaded.problems:
        return _report(loaded.problems)
    for resource in loaded.resources:
        print(f"ok: {resource.metadata.namespace}/{resource.metadata.name}")
    return EXIT_OK


def _add_validate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "validate",
        help="check ModelEndpoint manifests; one line per problem",
        description="Validate every ModelEndpoint in FILE (multi-document YAML; other kinds are "
        "skipped). Exit 0 when all are valid, 2 with one line per problem on stderr otherwise.",
    )
    parser.add_argument("-f", "--file", required=True, help="YAML file, or - for stdin")
    parser.set_defaults(handler=_cmd_validate)


# --- render ------------------------------------------------------------------------------


def _cmd_render(args: argparse.Namespace) -> int:
    loaded = load_model_endpoints(args.file)
    if loaded.problems:
        return _report(loaded.problems)
    try:
        from mme_operator.triton import TritonConfigError, render_model_config
    except ImportError as error:
        raise InputError(f"rendering is unavailable: {_one_line(str(error))}") from None

    # Every model lands in DIR/<model>/: the same name twice would overwrite silently.
    owner: dict[str, str] = {}
    problems: list[str] = []
    rendered: list[tuple[Path, str]] = []
    notices: list[str] = []
    for resource in loaded.resources:
        label = f"{resource.metadata.namespace}/{resource.metadata.name}"
        for i, model in enumerate(resource.spec.models):
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
                problems.append(f"{label}: spec.models[{i}]: {_one_line(str(error))}")
                continue
            at = f"{label}: spec.models[{i}]"
            read = _render_from_source(model, text, at)
            if isinstance(read, str):
                problems.append(read)
                continue
            text, notes = read
            rendered.append((Path(args.output) / model.name / "config.pbtxt", text))
            notices.extend(f"note: {at}: {note}" for note in notes)
    if problems:
        return _report(problems)
    for notice in notices:
        print(notice, file=sys.stderr)
    for path, text in rendered:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            raise InputError(f"{path}: cannot write: {_one_line(str(error))}") from None
        print(f"wrote {path}")
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
        return f"{at}: {_one_line(str(error))}"
    except (
        ArtifactError,
        botocore.exceptions.BotoCoreError,
        botocore.exceptions.ClientError,
    ) as error:
        note = (
            f"source not read ({_one_line(str(error))}): this is the spec's config; a "
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
    parser = commands.add_parser(
        "render",
        help="write each model's Triton config.pbtxt",
        description="Validate FILE, then write DIR/<model>/config.pbtxt for every model of every "
        "ModelEndpoint in it. Nothing is written when any problem is found.",
    )
    parser.add_argument("-f", "--file", required=True, help="YAML file, or - for stdin")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    parser.set_defaults(handler=_cmd_render)


# --- profile -----------------------------------------------------------------------------


def _on_resources(
    args: argparse.Namespace, run: Callable[[list[ModelEndpoint], argparse.Namespace], int]
) -> int:
    """Run a command on the ModelEndpoints of ``args.file``; report problems instead when any."""
    loaded = load_model_endpoints(args.file)
    if loaded.problems:
        return _report(loaded.problems)
    return run(loaded.resources, args)


def _cmd_profile(args: argparse.Namespace) -> int:
    from mme_operator.profile.command import profile_command

    return _on_resources(args, profile_command)


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

    return _on_resources(args, size_command)


def _add_size(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from mme_operator.sizing.command import add_arguments

    parser = commands.add_parser(
        "size",
        help="GPU memory fit and cost of every candidate instance type, cheapest first",
        description="For each ModelEndpoint in FILE: the GPU memory its models need (weights "
        "size read without downloading x instances x a per-platform factor + overhead, or "
        "gpuMemoryMiB, or a profile's measurement) against every MME instance type, with cost "
        "per hour and per month, cheapest first, and the recommendation. Exit 1 when some "
        "endpoint has no fitting type.",
    )
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

    settings = get_settings()
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
    start_metrics_server(settings.metrics_port)
    liveness = args.liveness or (
        f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    )
    readiness = f"0.0.0.0:{settings.readiness_port}" if settings.readiness_port else None
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
        help="serve kopf's liveness probe here (default http://0.0.0.0:$MME_HEALTH_PORT/healthz)",
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
    import botocore.exceptions

    from mme_operator.settings import get_settings

    loaded = load_model_endpoints(args.file)
    if loaded.problems:
        return _report(loaded.problems)
    settings = get_settings()
    failed = False
    for resource in loaded.resources:
        owner = f"{resource.metadata.namespace}/{resource.metadata.name}"
        try:
            lines = _plan_lines(resource, settings)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            print(f"error: {owner}: {_aws_failure(error, resource)}", file=sys.stderr)
            failed = True
            continue
        print(f"{owner} (endpoint {resource.endpoint_name}, {resource.spec.region}):")
        for line in lines:
            print(f"  {line}")
    return EXIT_FAILED if failed else EXIT_OK


def _plan_lines(resource: ModelEndpoint, settings: Settings) -> list[str]:
    """The dry run of one resource, as lines; AWS errors are raised."""
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
    plan = dry_run(resource.to_k8s() | {"metadata": meta.model_dump()}, clients, settings)
    if isinstance(plan, list):
        return [f"invalid: {line}" for line in plan]
    return list(plan.describe())


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
    return f"cannot reach AWS: {_one_line(str(error))}"


def _add_plan(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "plan",
        help="dry run: print the actions the operator would take (changes nothing)",
        description="Observe S3 and SageMaker for each ModelEndpoint in FILE and print the "
        "ordered actions that would bring them to the spec. Read-only.",
    )
    parser.add_argument("-f", "--file", required=True, help="YAML file with ModelEndpoints, or -")
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

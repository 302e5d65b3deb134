"""Reading ModelEndpoint manifests as ``kubectl apply -f`` takes them.

Each ``-f`` is a file, a directory (every ``*.yaml``, ``*.yml`` and ``*.json`` under it,
recursively, in name order) or ``-`` for stdin; a file may hold several YAML documents and
``kind: List`` objects. Every problem is one line that starts with the file it is in.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mme_operator.api import API_VERSION, GROUP, KIND, ModelEndpoint, validate_resource
from mme_operator.api.model import MODEL_KIND, ModelResource, validate_model
from mme_operator.safe_yaml import YamlLimitError, load_documents
from mme_operator.sagemaker.images import image_problems

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"


class InputError(Exception):
    """The input cannot be used at all (missing file, broken YAML): one line says why."""


@dataclass
class LoadedFile:
    """The ModelEndpoints of one file, and every problem found in it (one line each)."""

    resources: list[ModelEndpoint] = field(default_factory=list)
    models: list[ModelResource] = field(default_factory=list)
    """The valid Models (kind Model) of the file."""
    problems: list[str] = field(default_factory=list)


def one_line(text: str) -> str:
    return " ".join(text.split())


def display_name(file: str) -> str:
    return "<stdin>" if file == "-" else file


def _read_documents(file: str) -> list[Any]:
    """The YAML documents of FILE (``-`` is stdin); :class:`InputError` when unreadable."""
    name = display_name(file)
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, expected a YAML file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{name}: cannot read: {one_line(str(error))}") from None
    try:
        return load_documents(text)
    except YamlLimitError as error:
        raise InputError(f"{name}: YAML refused: {one_line(str(error))}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = error.problem or error.context or "syntax error"
        raise InputError(f"{name}: invalid YAML{where}: {one_line(what)}") from None
    except yaml.YAMLError as error:
        raise InputError(f"{name}: invalid YAML: {one_line(str(error))}") from None


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
    """Parse and validate every ModelEndpoint and Model in FILE; other kinds are noted on
    stderr.

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
        if doc.get("kind") == MODEL_KIND:
            found += 1
            model, problems = validate_model(doc)
            label = _label(doc, where)
            loaded.problems.extend(f"{label}: {one_line(str(problem))}" for problem in problems)
            if model is not None:
                loaded.models.append(model)
            continue
        if not _is_model_endpoint(doc):
            kind = doc.get("kind") if isinstance(doc.get("kind"), str) else "no kind"
            print(
                f"note: {display_name(file)}: {where} ({kind}) skipped: not a {KIND}",
                file=sys.stderr,
            )
            continue
        found += 1
        label = _label(doc, where)
        resource, problems = validate_resource(doc)
        if resource is not None:
            problems = image_problems(resource.spec)
            resource = None if problems else resource
        loaded.problems.extend(f"{label}: {one_line(str(problem))}" for problem in problems)
        if resource is not None:
            loaded.resources.append(resource)
    if not found and not loaded.problems:
        raise InputError(f"{display_name(file)}: no {KIND} ({API_VERSION}) found")
    return loaded


@dataclass(frozen=True)
class Found:
    """One valid ModelEndpoint and the file (as the user named it) it came from."""

    file: str
    resource: ModelEndpoint
    models: tuple[ModelResource, ...] = ()
    """The Models of the inputs (any file) that name this ModelEndpoint in endpointRef."""

    @property
    def label(self) -> str:
        """``<file>: <namespace>/<name>``: how every line about it starts."""
        meta = self.resource.metadata
        return f"{self.file}: {meta.namespace}/{meta.name}"


@dataclass
class Manifests:
    """Every valid ModelEndpoint of the inputs, and one line per problem (file first)."""

    found: list[Found] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def manifest_files(inputs: Sequence[str]) -> tuple[list[str], list[str]]:
    """The files the ``-f`` inputs name, in order and once each, and a line per input naming none.

    A file that does not exist is kept: reading it says so, in its own line.
    """
    files: list[str] = []
    problems: list[str] = []
    for given in inputs:
        if given == STDIN:
            if STDIN in files:
                problems.append("error: <stdin>: - given more than once (stdin is read once)")
            else:
                files.append(STDIN)
            continue
        path = Path(given)
        if not path.is_dir():
            files.append(given)
            continue
        inside = sorted(
            str(p) for p in path.rglob("*") if p.suffix in MANIFEST_SUFFIXES and p.is_file()
        )
        if not inside:
            problems.append(
                f"error: {given}: no {', '.join('*' + s for s in MANIFEST_SUFFIXES)} file in "
                "this directory"
            )
        files.extend(inside)
    unique = list(dict.fromkeys(files))
    return unique, problems


def load_manifests(inputs: Sequence[str]) -> Manifests:
    """Read and validate every ModelEndpoint the ``-f`` inputs hold; never raises on bad input."""
    files, problems = manifest_files(inputs)
    out = Manifests(problems=problems)
    models: list[ModelResource] = []
    for file in files:
        name = display_name(file)
        try:
            loaded = load_model_endpoints(file)
        except InputError as error:
            out.problems.append(f"error: {error}")
            continue
        out.problems.extend(f"{name}: {problem}" for problem in loaded.problems)
        out.found.extend(Found(name, resource) for resource in loaded.resources)
        models.extend(loaded.models)
    by_endpoint: dict[tuple[str, str], list[ModelResource]] = {}
    for model in models:
        by_endpoint.setdefault(model.endpoint_key, []).append(model)
    out.found = [
        dataclasses.replace(
            f,
            models=tuple(
                by_endpoint.get((f.resource.metadata.namespace, f.resource.metadata.name), ())
            ),
        )
        for f in out.found
    ]
    return out

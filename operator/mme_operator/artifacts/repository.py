"""Which members go into a model archive, and the config.pbtxt the served model gets.

A source is one of:

* one file (``model.onnx``): placed at ``<name>/1/<weights file>``, config from the spec;
* a tree without any ``config.pbtxt`` (weights, maybe version directories): as before,
  under ``<name>/`` (numeric version directories kept) or ``<name>/1/``;
* one Triton model directory (``config.pbtxt`` + version directories, at the source's root
  or as its only top-level directory): its files under ``<name>/``, its config the base of
  the archive's (:mod:`mme_operator.triton.merge`);
* a repository of model directories (top-level ``<dir>/config.pbtxt`` each, possibly below
  one wrapping directory): exactly one must be an ensemble (``platform: "ensemble"``);
  its directory becomes ``<name>/`` and is what the TargetModel serves, and every other
  directory is a step model, shipped under its own name with its config unchanged. Without
  an ensemble the directory MME serves would be whichever it read last (MME-FACTS #5), so
  a non-ensemble archive holds exactly one model.

Archive layout written (what the local SageMaker and MME's Triton unpack)::

    <name>/config.pbtxt             the served model's config (merged with the spec)
    <name>/<version>/...            its files (an ensemble gets an empty <name>/1/)
    <name>/<other files>            e.g. a conda-pack env.tar.gz beside the versions
    <step>/config.pbtxt             each ensemble step, as the source has it
    <step>/<version>/...

Every config is parsed with Triton's schema; decoupled models are refused (MME-FACTS #7);
an ensemble's steps must all be shipped and its tensor maps must match what the steps
declare; ``EXECUTION_ENV_PATH`` must point at a tarball shipped in the model's directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from mme_operator.artifacts.errors import InvalidSourceError, UnsafeArchiveError
from mme_operator.artifacts.sources import EntryType, ModelSource, SourceContent, SourceEntry
from mme_operator.triton import TritonConfigError, parse_model_config
from mme_operator.triton.ensemble import check_ensemble, is_ensemble
from mme_operator.triton.merge import check_servable, merge_model_config
from mme_operator.triton.schema import model_config_pb2

CONFIG_NAME = "config.pbtxt"
MAX_CONFIG_BYTES = 1024 * 1024
EXECUTION_ENV_PARAMETER = "EXECUTION_ENV_PATH"
MODEL_DIRECTORY_VARIABLE = "$$TRITON_MODEL_DIRECTORY/"


@dataclasses.dataclass(frozen=True)
class ArchivePlan:
    """What one archive holds: the served model's config, then entries in write order."""

    config_pbtxt: str
    """The served model's ``<name>/config.pbtxt``."""
    layout: list[tuple[str, SourceEntry]]
    """(path in the archive, source entry), in write order."""
    directories: tuple[str, ...] = ()
    """Directories written even when empty (an ensemble's version directory)."""
    changes: tuple[str, ...] = ()
    """Each field of the source's config the spec overrode or added."""
    steps: tuple[str, ...] = ()
    """Ensemble step models shipped beside the served model, by name."""


def _is_versioned(rel: str) -> bool:
    head, sep, _ = rel.partition("/")
    return bool(sep) and head.isdigit()


@contextlib.contextmanager
def _bytes_open(data: bytes) -> Iterator[BinaryIO]:
    yield io.BytesIO(data)


def _read_config(entry: SourceEntry, uri: str) -> str:
    if entry.type is EntryType.HARDLINK or entry.open is None:
        raise InvalidSourceError(f"{uri}: {entry.path} must be a file, not a link")
    if entry.size > MAX_CONFIG_BYTES:
        raise InvalidSourceError(
            f"{uri}: {entry.path} is {entry.size} bytes; a config.pbtxt over "
            f"{MAX_CONFIG_BYTES} bytes is not a model config"
        )
    with entry.open() as handle:
        data = handle.read(entry.size)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidSourceError(f"{uri}: {entry.path} is not UTF-8 text: {error}") from None


def _parse(text: str, what: str) -> model_config_pb2.ModelConfig:
    try:
        return parse_model_config(text)
    except TritonConfigError as error:
        raise InvalidSourceError(f"{what}: {error}") from None


def _spec_config(spec_text: str) -> model_config_pb2.ModelConfig:
    # Without platform or backend Triton infers the backend from the version directory's
    # file names (1/model.onnx, 1/model.py); `render` says when the spec leaves both out.
    return _parse(spec_text, "the spec's config")


def _model_directories(paths: list[str]) -> tuple[str, list[str]]:
    """(wrapping prefix to strip, model directory names below it); no directories: ([])."""
    if CONFIG_NAME in paths:
        return "", [""]
    tops = {p.split("/", 1)[0] for p in paths}
    if len(tops) == 1 and all("/" in p for p in paths):
        top = next(iter(tops))
        inner = [p.split("/", 1)[1] for p in paths]
        if not top.isdigit() and (CONFIG_NAME in inner or any(map(_is_versioned, inner))):
            return top + "/", [""]
        nested = sorted({p.split("/", 1)[0] for p in inner if p.endswith("/" + CONFIG_NAME)})
        nested = [d for d in nested if f"{d}/{CONFIG_NAME}" in inner]
        if nested:
            return top + "/", nested
        return "", []
    return "", sorted(t for t in tops if f"{t}/{CONFIG_NAME}" in paths)


def _env_problems(config: model_config_pb2.ModelConfig, files: set[str], label: str) -> list[str]:
    """``EXECUTION_ENV_PATH`` must name a ``.tar.gz`` (conda-pack) in the model directory."""
    if EXECUTION_ENV_PARAMETER not in config.parameters:
        return []
    value = config.parameters[EXECUTION_ENV_PARAMETER].string_value
    if not value.startswith(MODEL_DIRECTORY_VARIABLE):
        return [
            f"{label}: {EXECUTION_ENV_PARAMETER} {value!r}: MME unpacks the archive in a "
            f"directory only Triton knows; write {MODEL_DIRECTORY_VARIABLE}<file>.tar.gz and "
            "ship the conda-pack tarball in the model directory"
        ]
    rel = value[len(MODEL_DIRECTORY_VARIABLE) :]
    if not rel.endswith((".tar.gz", ".tgz")):
        return [f"{label}: {EXECUTION_ENV_PARAMETER} {value!r} must name a conda-pack .tar.gz"]
    if rel not in files:
        return [
            f"{label}: {EXECUTION_ENV_PARAMETER} {value!r} names {rel}, which is not in the "
            "model directory; put the conda-pack tarball there"
        ]
    return []


def plan_archive(
    name: str,
    content: SourceContent,
    spec_config: str,
    weights_filename: str,
    uri: str = "source",
) -> ArchivePlan:
    """Which entries go where, and the served model's config (reads only config.pbtxt files).

    ``spec_config`` is the config rendered from the spec; a source's own config is merged
    under it. Raises :class:`InvalidSourceError` for a source that cannot be served as it
    is, with the reason.
    """
    if content.single_file:
        (entry,) = content.entries
        _checked(_spec_config(spec_config), f"the spec of model {name!r}")
        return ArchivePlan(spec_config, [(f"{name}/1/{weights_filename}", entry)])
    paths = [e.path for e in content.entries]
    strip, directories = _model_directories(paths)
    entries = {e.path: e for e in content.entries}
    if not directories:
        config = _spec_config(spec_config)
        _checked(config, f"the spec of model {name!r}")
        layout = _plain_layout(name, content, uri)
        problems = _env_problems(
            config, {p[len(name) + 1 :] for p, _ in layout}, f"model {name!r} (spec.parameters)"
        )
        if problems:
            raise InvalidSourceError("; ".join(problems))
        return ArchivePlan(spec_config, layout)
    rels = [(p[len(strip) :], entries[p]) for p in paths if p.startswith(strip)]
    if directories == [""]:
        return _single_model(name, rels, spec_config, uri, prefix=strip)
    return _repository(name, rels, directories, spec_config, uri, prefix=strip)


def _checked(config: model_config_pb2.ModelConfig, what: str) -> None:
    try:
        check_servable(config, what)
    except TritonConfigError as error:
        raise InvalidSourceError(str(error)) from None


def _plain_layout(name: str, content: SourceContent, uri: str) -> list[tuple[str, SourceEntry]]:
    rels = [(e.path, e) for e in content.entries]
    if not rels:
        raise InvalidSourceError(f"{uri} holds no model files")
    base = f"{name}/" if any(_is_versioned(rel) for rel, _ in rels) else f"{name}/1/"
    return _placed([(base + rel, e) for rel, e in rels], uri)


def _placed(layout: list[tuple[str, SourceEntry]], uri: str) -> list[tuple[str, SourceEntry]]:
    sources = {e.path for _, e in layout}
    for _, entry in layout:
        if entry.type is EntryType.HARDLINK and entry.linkname not in sources:
            raise UnsafeArchiveError(
                f"{uri}: hard link {entry.path!r} -> {entry.linkname!r} points outside the "
                "model directory; replace it with the file itself"
            )
    return layout


def _served_files(
    name: str, files: list[tuple[str, SourceEntry]], uri: str, *, ensemble: bool
) -> tuple[list[tuple[str, SourceEntry]], tuple[str, ...]]:
    """The served directory's files under ``<name>/`` (config.pbtxt left out), and empty dirs."""
    files = [(rel, e) for rel, e in files if rel != CONFIG_NAME]
    versioned = any(_is_versioned(rel) for rel, _ in files)
    if ensemble:
        return [(f"{name}/{rel}", e) for rel, e in files], (() if versioned else (f"{name}/1",))
    if not files:
        raise InvalidSourceError(f"{uri} holds no model files besides config.pbtxt")
    base = f"{name}/" if versioned else f"{name}/1/"
    return [(base + rel, e) for rel, e in files], ()


def _merged(
    name: str, spec_config: str, source_text: str, label: str
) -> tuple[str, model_config_pb2.ModelConfig, tuple[str, ...]]:
    try:
        merged = merge_model_config(spec_config, source_text, name=name, source_label=label)
    except TritonConfigError as error:
        raise InvalidSourceError(f"model {name!r}: {error}") from None
    return merged.text, merged.config, merged.changes


def _single_model(
    name: str,
    rels: list[tuple[str, SourceEntry]],
    spec_config: str,
    uri: str,
    *,
    prefix: str,
) -> ArchivePlan:
    by_rel = dict(rels)
    label = f"{uri}: {prefix}{CONFIG_NAME}"
    if CONFIG_NAME in by_rel:
        source_text = _read_config(by_rel[CONFIG_NAME], uri)
        text, config, changes = _merged(name, spec_config, source_text, label)
    else:  # a model directory of version directories only: configured by the spec
        config = _spec_config(spec_config)
        _checked(config, f"the spec of model {name!r}")
        text, changes, label = spec_config, (), f"model {name!r} (spec.parameters)"
    if is_ensemble(config):
        _check_steps(name, config, {}, label)
    layout, empty = _served_files(name, rels, uri, ensemble=is_ensemble(config))
    problems = _env_problems(config, {p[len(name) + 1 :] for p, _ in layout}, label)
    if problems:
        raise InvalidSourceError("; ".join(problems))
    return ArchivePlan(text, _placed(layout, uri), empty, changes)


def _check_steps(
    name: str,
    ensemble: model_config_pb2.ModelConfig,
    steps: Mapping[str, model_config_pb2.ModelConfig],
    label: str,
) -> None:
    try:
        check_ensemble(ensemble, steps, label)
    except TritonConfigError as error:
        raise InvalidSourceError(f"model {name!r}: {error}") from None


def _repository(
    name: str,
    rels: list[tuple[str, SourceEntry]],
    directories: list[str],
    spec_config: str,
    uri: str,
    *,
    prefix: str,
) -> ArchivePlan:
    outside = [rel for rel, _ in rels if rel.split("/", 1)[0] not in directories]
    if outside:
        raise InvalidSourceError(
            f"{uri}: {prefix}{outside[0]} lies outside the model directories "
            f"({', '.join(directories)}); a source of several models holds only their directories"
        )
    texts: dict[str, str] = {}
    configs: dict[str, model_config_pb2.ModelConfig] = {}
    by_rel = dict(rels)
    for directory in directories:
        path = f"{directory}/{CONFIG_NAME}"
        texts[directory] = _read_config(by_rel[path], uri)
        configs[directory] = _parse(texts[directory], f"{uri}: {prefix}{path}")
    ensembles = [d for d in directories if is_ensemble(configs[d])]
    if len(ensembles) != 1:
        found = "none is" if not ensembles else f"{', '.join(ensembles)} are"
        raise InvalidSourceError(
            f"{uri} holds {len(directories)} model directories ({', '.join(directories)}) and "
            f"{found} an ensemble: MME serves one model per archive (an ensemble with its "
            "steps), so give each other model its own entry in spec.models"
        )
    served = ensembles[0]
    label = f"{uri}: {prefix}{served}/{CONFIG_NAME}"
    text, config, changes = _merged(name, spec_config, texts[served], label)
    steps = {d: configs[d] for d in directories if d != served}
    for step, step_config in steps.items():
        where = f"{uri}: {prefix}{step}/{CONFIG_NAME}"
        if step == name:
            raise InvalidSourceError(
                f"{where}: the step model has the ensemble's name {name!r}; rename one"
            )
        if step_config.name and step_config.name != step:
            raise InvalidSourceError(
                f"{where}: name {step_config.name!r} differs from its directory {step!r}; "
                "Triton refuses that"
            )
        try:
            check_servable(step_config, where)
        except TritonConfigError as error:
            raise InvalidSourceError(str(error)) from None
    _check_steps(name, config, steps, label)
    served_rels = [(rel.split("/", 1)[1], e) for rel, e in rels if rel.split("/", 1)[0] == served]
    layout, empty = _served_files(name, served_rels, uri, ensemble=True)
    problems: list[str] = []
    for step in sorted(steps):
        files = [(rel, e) for rel, e in rels if rel.split("/", 1)[0] == step]
        for rel, entry in files:
            if rel == f"{step}/{CONFIG_NAME}":
                data = texts[step].encode("utf-8")
                entry = dataclasses.replace(
                    entry, size=len(data), open=functools.partial(_bytes_open, data)
                )
            layout.append((rel, entry))
        problems += _env_problems(
            steps[step], {rel[len(step) + 1 :] for rel, _ in files}, f"{uri}: {prefix}{step}"
        )
    if problems:
        raise InvalidSourceError("; ".join(problems))
    return ArchivePlan(text, _placed(layout, uri), empty, changes, tuple(sorted(steps)))


def plan_source_archive(
    name: str, spec_config: str, source: ModelSource, weights_filename: str, workdir: Path
) -> ArchivePlan:
    """:func:`plan_archive` of ``source`` as it is now (what ``render`` prints).

    Reads the source's config.pbtxt files only (an S3 prefix downloads just those; a
    ``.tar.gz`` is downloaded and scanned once); nothing is packaged.
    """
    with source.open_content(workdir) as content:
        return plan_archive(name, content, spec_config, weights_filename, source.uri)

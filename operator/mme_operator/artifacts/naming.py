"""Content-addressed names of model archives, computed without downloading anything.

SageMaker MME never reloads a model whose object is overwritten, so every change of a
model's archive must produce a new object name. The name carries a short hash of what
determines the archive's content: the packaging format, the model name, the rendered
``config.pbtxt``, the weights file name and the source's fingerprint (ETag, size, ...).
A steady-state reconcile therefore recomputes the name from metadata alone and finds the
object already there.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from mme_operator.api.spec import MODEL_NAME_PATTERN

# Bump when what an archive extracts to changes (the layout, or any byte of the tar
# stream): every model then gets a new name and is re-uploaded once. How the tar stream
# is compressed may change without a bump: an instance that cached a TargetModel and one
# that downloads it again get the same files. (Stored/deflated blocks replaced the single
# deflate stream without one: the tar stream is byte for byte the same, a test pins it.)
# 2: a source's own config.pbtxt is merged under the spec's (it was replaced), and a source
# of an ensemble and its steps is packaged as one archive.
PACKAGING_FORMAT_VERSION = "2"
SHORT_HASH_LENGTH = 12
ARCHIVE_SUFFIX = ".tar.gz"

_MODEL_NAME_RE = re.compile(MODEL_NAME_PATTERN)
_TARGET_MODEL_RE = re.compile(
    r"^(?P<model>[a-zA-Z0-9][a-zA-Z0-9_-]*)-(?P<hash>[0-9a-f]{12})\.tar\.gz$"
)


def _check_model_name(model_name: str) -> None:
    if not _MODEL_NAME_RE.match(model_name):
        raise ValueError(f"invalid model name {model_name!r}: must match {MODEL_NAME_PATTERN}")


def check_weights_filename(weights_filename: str) -> None:
    """Raise ``ValueError`` unless ``weights_filename`` is a plain file name."""
    if (
        not weights_filename
        or "/" in weights_filename
        or "\\" in weights_filename
        or weights_filename in (".", "..")
        or weights_filename == "config.pbtxt"
    ):
        raise ValueError(
            f"invalid weights file name {weights_filename!r}: must be a plain file name"
        )


def archive_hash(
    model_name: str, config_pbtxt: str, fingerprint: str, *, weights_filename: str = ""
) -> str:
    """The short content hash (12 hex digits) of a model archive, from its inputs only."""
    digest = hashlib.sha256()
    # Length-prefixed fields: no two different input tuples can produce the same byte stream.
    for field in (
        PACKAGING_FORMAT_VERSION,
        model_name,
        config_pbtxt,
        weights_filename,
        fingerprint,
    ):
        data = field.encode("utf-8")
        digest.update(f"{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()[:SHORT_HASH_LENGTH]


def target_model_name(
    model_name: str, config_pbtxt: str, fingerprint: str, *, weights_filename: str = ""
) -> str:
    """The archive's file name ``<model>-<hash>.tar.gz``: what clients send as ``TargetModel``."""
    _check_model_name(model_name)
    short = archive_hash(model_name, config_pbtxt, fingerprint, weights_filename=weights_filename)
    return f"{model_name}-{short}{ARCHIVE_SUFFIX}"


def archive_key(
    prefix: str,
    model_name: str,
    config_pbtxt: str,
    fingerprint: str,
    *,
    weights_filename: str = "",
) -> str:
    """The archive's S3 key: ``<prefix><model>-<hash>.tar.gz``.

    ``prefix`` is the endpoint's artifact prefix (empty or ending in ``/``).
    ``weights_filename`` is part of the hash because it changes the archive's content
    (``1/model.onnx`` vs ``1/model.plan``) even when nothing else does.
    """
    if prefix and not prefix.endswith("/"):
        raise ValueError(f"artifact prefix {prefix!r} must end with '/'")
    return prefix + target_model_name(
        model_name, config_pbtxt, fingerprint, weights_filename=weights_filename
    )


def parse_target_model(name: str) -> tuple[str, str] | None:
    """Split ``<model>-<hash>.tar.gz`` into (model, hash); ``None`` if it is not our pattern."""
    match = _TARGET_MODEL_RE.match(name)
    if match is None:
        return None
    return match["model"], match["hash"]


@dataclass(frozen=True)
class DesiredArchive:
    """One model archive as the spec wants it under the endpoint's prefix."""

    model_name: str
    key: str
    target_model: str
    source_uri: str
    fingerprint: str
    config_pbtxt: str
    weights_filename: str
    directory: str = ""
    """The model's folder in the archive when it is not ``model_name`` (an attached Model,
    whose ``model_name`` is ``<namespace>/<name>``: the folder is ``<name>``)."""


def desired_archive(
    *,
    prefix: str,
    model_name: str,
    config_pbtxt: str,
    source_uri: str,
    fingerprint: str,
    weights_filename: str,
) -> DesiredArchive:
    """Build the :class:`DesiredArchive` of one model (pure: no I/O)."""
    check_weights_filename(weights_filename)
    # An attached Model (``<namespace>/<name>``) lies in its namespace's folder of the prefix:
    # its TargetModel ``<namespace>/<name>-<hash>.tar.gz`` never collides with another's.
    namespace, _, directory = model_name.rpartition("/")
    folder = f"{prefix}{namespace}/" if namespace else prefix
    key = archive_key(
        folder, directory, config_pbtxt, fingerprint, weights_filename=weights_filename
    )
    return DesiredArchive(
        model_name=model_name,
        key=key,
        target_model=key[len(prefix) :],
        source_uri=source_uri,
        fingerprint=fingerprint,
        config_pbtxt=config_pbtxt,
        weights_filename=weights_filename,
        directory=directory if namespace else "",
    )

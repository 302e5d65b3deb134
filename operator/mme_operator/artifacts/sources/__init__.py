"""Model sources: where a model's weights live, identified cheaply and read as a stream.

One small interface, :class:`ModelSource` (:mod:`.base`), with one module per URI scheme:

* :mod:`.s3` ``s3://bucket/key``: one object, a prefix (``key/`` holding ``1/model.onnx``
  or plain files), or an existing ``.tar.gz``;
* :mod:`.https` ``https://host/path``: one file (or a ``.tar.gz``), with a size limit and
  a timeout;
* :mod:`.file` ``file:///path``: a file or a directory on a mounted volume, inside an
  allowed root.

``.tar.gz`` sources of any scheme are read by :mod:`.archive` after the rules of
:mod:`mme_operator.artifacts.archive_safety` passed. :func:`open_source` picks the scheme.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from boto3.s3.transfer import TransferConfig

from mme_operator.artifacts.errors import InvalidSourceError
from mme_operator.artifacts.sources.base import (
    ARCHIVE_SUFFIXES,
    EntryType,
    ModelSource,
    S3ClientFactory,
    SourceContent,
    SourceEntry,
    is_archive_name,
)
from mme_operator.artifacts.sources.file import FileSource, file_path
from mme_operator.artifacts.sources.file_hashes import file_hashes
from mme_operator.artifacts.sources.https import HttpsSource, check_url_allowed
from mme_operator.artifacts.sources.network import AddressPolicy
from mme_operator.artifacts.sources.s3 import S3Source
from mme_operator.settings import Settings, get_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def open_source(
    uri: str,
    *,
    s3_client_factory: S3ClientFactory | None = None,
    s3_client: S3Client | None = None,
    settings: Settings | None = None,
    max_bytes: int | None = None,
    max_expansion_ratio: float | None = None,
    file_roots: Sequence[str | Path] | None = None,
    allow_insecure_localhost: bool = False,
) -> ModelSource:
    """The :class:`ModelSource` for ``uri`` (no I/O happens until it is used).

    S3 sources read with ``s3_client_factory(bucket)``, or with ``s3_client`` for every
    bucket when no factory is given.

    ``max_bytes`` defaults to ``settings.max_source_bytes`` and ``max_expansion_ratio``
    (how far a ``.tar.gz`` source may expand) to ``settings.max_expansion_ratio``. ``file_roots`` (default
    ``settings.file_roots``) lists the directories ``file://`` sources may read from
    (mounted model volumes); with none,
    ``file://`` is refused, because the operator's own files (its service-account token)
    must never end up in a user's bucket. ``allow_insecure_localhost`` lets tests use
    ``http://127.0.0.1``; production accepts ``https://`` only.
    """
    settings = settings or get_settings()
    limit = max_bytes if max_bytes is not None else settings.max_source_bytes
    ratio = max_expansion_ratio or settings.max_expansion_ratio
    parsed = urllib.parse.urlsplit(uri)
    scheme = parsed.scheme.lower()
    if scheme == "s3":
        bucket, key = parsed.netloc, parsed.path.lstrip("/")
        if not bucket or not key:
            raise InvalidSourceError(f"source {uri!r}: write s3://<bucket>/<key or prefix>")
        if s3_client_factory is not None:
            client = s3_client_factory(bucket)
        elif s3_client is not None:
            client = s3_client
        else:
            raise ValueError("s3:// sources need an s3_client_factory or an s3_client")
        transfer = TransferConfig(
            multipart_threshold=settings.multipart_chunk_bytes,
            multipart_chunksize=settings.multipart_chunk_bytes,
            max_concurrency=settings.upload_concurrency,
        )
        return S3Source(
            uri,
            bucket,
            key,
            client,
            max_bytes=limit,
            max_expansion_ratio=ratio,
            transfer_config=transfer,
        )
    if scheme in ("https", "http"):
        check_url_allowed(uri, allow_insecure_localhost)
        return HttpsSource(
            uri,
            max_bytes=limit,
            max_expansion_ratio=ratio,
            timeout=settings.https_timeout_seconds,
            connect_timeout=settings.https_connect_timeout_seconds,
            deadline=settings.https_deadline_seconds,
            policy=AddressPolicy.from_setting(
                settings.https_allowed_networks, allow_loopback=allow_insecure_localhost
            ),
            allow_insecure_localhost=allow_insecure_localhost,
        )
    if scheme == "file":
        roots = settings.file_root_list if file_roots is None else file_roots
        return FileSource(
            uri,
            file_path(uri, roots),
            max_bytes=limit,
            max_expansion_ratio=ratio,
            hashes=file_hashes(settings.work_dir),
        )
    raise InvalidSourceError(
        f"source {uri!r}: unsupported scheme; use s3://bucket/key, https://... or file:///path"
    )


__all__ = [
    "ARCHIVE_SUFFIXES",
    "EntryType",
    "FileSource",
    "HttpsSource",
    "ModelSource",
    "S3ClientFactory",
    "S3Source",
    "SourceContent",
    "SourceEntry",
    "is_archive_name",
    "open_source",
]

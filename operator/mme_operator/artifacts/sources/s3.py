"""``s3://bucket/key``: one object, a prefix of objects, or an existing ``.tar.gz``.

The fingerprint comes from S3's own metadata (ETag, size, VersionId; a listing's digest
for a prefix), so nothing is downloaded to learn whether a model changed. Objects are
downloaded with the managed transfer (parallel ranged GETs) one at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from mme_operator.artifacts.archive_safety import archive_limits
from mme_operator.artifacts.errors import (
    ArtifactError,
    SourceAccessError,
    SourceChangedError,
    SourceFetchError,
    SourceNotFoundError,
    UnsafeArchiveError,
)
from mme_operator.artifacts.sources.archive import archive_content
from mme_operator.artifacts.sources.base import (
    SourceContent,
    SourceEntry,
    check_size,
    is_archive_name,
    temp_path,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclasses.dataclass(frozen=True)
class _S3Object:
    key: str
    size: int
    etag: str
    version_id: str | None = None


def _s3_error(exc: Exception, uri: str) -> ArtifactError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket", "NoSuchVersion"):
            return SourceNotFoundError(f"source {uri} does not exist ({code})")
        if code in ("403", "AccessDenied", "AllAccessDisabled") or status == 403:
            return SourceAccessError(
                f"access denied reading {uri}; grant the operator's IAM role s3:GetObject "
                "and s3:ListBucket on it"
            )
        if code in ("412", "PreconditionFailed"):
            return SourceChangedError(f"source {uri} changed while it was read; retrying")
        return SourceFetchError(f"reading {uri} failed: {code or status}: {exc}")
    return SourceFetchError(f"reading {uri} failed: {exc}")


class S3Source:
    """An S3 object, prefix, or ``.tar.gz`` (``s3://bucket/key``).

    ``key`` names an object if one exists; otherwise it is a prefix (``key/``), whose
    objects form a tree. Objects are downloaded with the managed transfer (parallel ranged
    GETs) into the work directory, one at a time, so disk use stays at one file.
    """

    def __init__(
        self,
        uri: str,
        bucket: str,
        key: str,
        client: S3Client,
        *,
        max_bytes: int,
        max_expansion_ratio: float | None = None,
        transfer_config: TransferConfig | None = None,
    ) -> None:
        self._uri = uri
        self.bucket = bucket
        self.key = key
        self.client = client
        self.max_bytes = max_bytes
        self.limits = archive_limits(max_bytes, max_expansion_ratio)
        self.transfer_config = transfer_config or TransferConfig()
        self._object: _S3Object | None = None
        self._tree: list[_S3Object] | None = None
        self._tree_prefix = ""
        self._fingerprint: str | None = None

    @property
    def uri(self) -> str:
        return self._uri

    def _head(self, key: str, version_id: str | None = None) -> _S3Object:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        head = self.client.head_object(**kwargs)
        return _S3Object(key, head["ContentLength"], head["ETag"], head.get("VersionId"))

    def _resolve(self) -> None:
        if self._object is not None or self._tree is not None:
            return
        try:
            if not self.key.endswith("/"):
                try:
                    self._object = self._head(self.key)
                except ClientError as exc:
                    code = str(exc.response.get("Error", {}).get("Code", ""))
                    if code not in ("404", "NoSuchKey", "NotFound"):
                        raise
            if self._object is None:
                self._tree_prefix = self.key.rstrip("/") + "/"
                self._tree = self._list(self._tree_prefix)
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(exc, self._uri) from exc
        if self._object is not None:
            check_size(self._uri, self._object.size, self.max_bytes)
        else:
            assert self._tree is not None
            if not self._tree:
                raise SourceNotFoundError(
                    f"source {self._uri}: no object s3://{self.bucket}/{self.key} and no objects "
                    f"under s3://{self.bucket}/{self._tree_prefix}"
                )
            check_size(self._uri, sum(o.size for o in self._tree), self.max_bytes)

    def _list(self, prefix: str) -> list[_S3Object]:
        found = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/"):  # "folder" markers made by consoles carry no data
                    continue
                rel = key[len(prefix) :]
                parts = rel.split("/")
                if "" in parts or "." in parts or ".." in parts:
                    raise UnsafeArchiveError(
                        f"source {self._uri}: object key {key!r} is not a clean relative path"
                    )
                found.append(_S3Object(key, obj["Size"], obj["ETag"]))
        found.sort(key=lambda o: o.key)
        return found

    def size_bytes(self) -> int | None:
        """ContentLength of the object, or the sum over the prefix (one HEAD or one listing)."""
        self._resolve()
        if self._object is not None:
            return self._object.size
        return sum(o.size for o in self._tree or [])

    def fingerprint(self) -> str:
        """Bucket, key, ETag, size (and VersionId) of the object, or a digest of the listing."""
        if self._fingerprint is None:
            self._resolve()
            if self._object is not None:
                o = self._object
                fp = f"s3://{self.bucket}/{o.key} etag={o.etag} size={o.size}"
                if o.version_id:
                    fp += f" version={o.version_id}"
            else:
                assert self._tree is not None
                digest = hashlib.sha256()
                for o in self._tree:
                    digest.update(
                        f"{o.key[len(self._tree_prefix) :]}\0{o.etag}\0{o.size}\n".encode()
                    )
                total = sum(o.size for o in self._tree)
                fp = (
                    f"s3://{self.bucket}/{self._tree_prefix} objects={len(self._tree)} "
                    f"size={total} sha256={digest.hexdigest()}"
                )
            self._fingerprint = fp
        return self._fingerprint

    def _download(self, obj: _S3Object, dest: Path) -> None:
        extra = {"VersionId": obj.version_id} if obj.version_id else None
        try:
            self.client.download_file(
                self.bucket, obj.key, str(dest), ExtraArgs=extra, Config=self.transfer_config
            )
            # The managed download takes no IfMatch; a HEAD after it catches an object
            # replaced since the fingerprint (ranged GETs are pinned to one ETag by s3transfer).
            after = obj if obj.version_id else self._head(obj.key)
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(exc, f"s3://{self.bucket}/{obj.key}") from exc
        if after.etag != obj.etag or dest.stat().st_size != obj.size:
            raise SourceChangedError(
                f"source s3://{self.bucket}/{obj.key} changed while it was read; retrying"
            )

    @contextlib.contextmanager
    def _downloaded(self, obj: _S3Object, workdir: Path) -> Iterator[BinaryIO]:
        path = temp_path(workdir)
        try:
            self._download(obj, path)
            with open(path, "rb") as f:
                yield f
        finally:
            path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def open_content(self, workdir: Path) -> Iterator[SourceContent]:
        """Download to ``workdir`` as the packager asks, one object at a time."""
        self.fingerprint()  # pins the identity that the name was computed from
        if self._object is not None:
            obj = self._object
            name = posixpath.basename(obj.key)
            if is_archive_name(name):
                path = temp_path(workdir, suffix=".tar.gz")
                try:
                    self._download(obj, path)
                    with archive_content(path, self._uri, self.limits) as content:
                        yield content
                finally:
                    path.unlink(missing_ok=True)
                return
            entry = SourceEntry(
                path=name, size=obj.size, open=lambda: self._downloaded(obj, workdir)
            )
            yield SourceContent(single_file=True, entries=[entry])
            return
        assert self._tree is not None
        entries = [
            SourceEntry(
                path=o.key[len(self._tree_prefix) :],
                size=o.size,
                open=functools.partial(self._downloaded, o, workdir),
            )
            for o in self._tree
        ]
        yield SourceContent(single_file=False, entries=entries)

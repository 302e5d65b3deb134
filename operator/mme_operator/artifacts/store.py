"""The model archives under one endpoint's S3 prefix: observe, upload, delete, sync.

Ownership lives in each object's user metadata (``mme-owner-uid`` = the ModelEndpoint's
uid, ``mme-managed-by: mme-operator``). Objects without our uid are never deleted or
overwritten, whatever their names look like. Keys are content-addressed
(:mod:`mme_operator.artifacts.naming`), so an object already present with our metadata
is the archive we would upload, and is never uploaded again.

Reading metadata takes one HEAD per object, so a pass reads it only where it decides
something: :meth:`ArtifactStore.observe` lists the prefix once, takes the objects the
caller knows it uploaded (key and ETag, from the resource's status) as ours without a
HEAD, and remembers what it read for an unchanged object (same ETag and LastModified) for
the life of the process. A steady pass over any number of models is one ListObjectsV2.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from mme_operator.artifacts.errors import (
    ArtifactConflictError,
    NotOwnedError,
    SourceChangedError,
)
from mme_operator.artifacts.multipart import ArchiveUpload
from mme_operator.artifacts.naming import ARCHIVE_SUFFIX, DesiredArchive
from mme_operator.artifacts.packaging import (
    DEFAULT_COMPRESSOR,
    SERVED_CONFIG_HEAD_BYTES,
    Compressor,
    package_model,
    read_served_config,
)
from mme_operator.artifacts.prepared import PreparedArchives
from mme_operator.artifacts.sources import ModelSource
from mme_operator.settings import S3_HEAD_CONCURRENCY, Settings, get_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger("mme_operator.artifacts")

MANAGED_BY = "mme-operator"
META_OWNER = "mme-owner-uid"
META_SHA256 = "mme-sha256"
META_MODEL = "mme-model"
META_FINGERPRINT = "mme-fingerprint"
META_MANAGED_BY = "mme-managed-by"
CONTENT_TYPE = "application/gzip"
_HEAD_WORKERS = S3_HEAD_CONCURRENCY
# An attached Model's archives lie in a folder named for its namespace (a DNS label).
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_PROGRESS_SECONDS = 5.0
_OWNERSHIP_CACHE_SIZE = 65536


@dataclasses.dataclass(frozen=True)
class StoredArchive:
    """An archive object under the prefix, as S3 reports it.

    ``fingerprint`` is the sha256 of the source fingerprint the archive was built from
    (the fingerprint itself may be long or name private URLs, so only its digest is stored).
    """

    key: str
    size: int
    sha256: str | None
    owner_uid: str | None
    model_name: str | None
    fingerprint: str | None = None
    etag: str | None = None
    """As listed; after our own upload, what PutObject or CompleteMultipartUpload answered."""
    config_changes: tuple[str, ...] = ()
    """After our own upload: what the spec overrode or added in the source's config.pbtxt."""

    def owned_by(self, owner_uid: str) -> bool:
        """Whether the object carries ``owner_uid`` as its owner."""
        return self.owner_uid == owner_uid


@dataclasses.dataclass(frozen=True)
class ListedObject:
    """An object as ListObjectsV2 reports it: no metadata, so no owner."""

    key: str
    size: int
    etag: str
    last_modified: str


_ownership_cache: OrderedDict[tuple[str, str, str, str], StoredArchive] = OrderedDict()
_ownership_lock = threading.Lock()


def archive_folder(prefix: str, key: str) -> str:
    """The namespace folder under ``prefix`` that holds ``key`` ("": the prefix's own level)."""
    return key[len(prefix) :].rpartition("/")[0]


def _cached_ownership(bucket: str, listed: ListedObject) -> StoredArchive | None:
    # Rewriting an object, its metadata included (a copy onto itself), changes LastModified.
    with _ownership_lock:
        found = _ownership_cache.get((bucket, listed.key, listed.etag, listed.last_modified))
        if found is not None:
            _ownership_cache.move_to_end((bucket, listed.key, listed.etag, listed.last_modified))
        return found


def _remember_ownership(bucket: str, listed: ListedObject, stored: StoredArchive) -> None:
    with _ownership_lock:
        _ownership_cache[(bucket, listed.key, listed.etag, listed.last_modified)] = stored
        while len(_ownership_cache) > _OWNERSHIP_CACHE_SIZE:
            _ownership_cache.popitem(last=False)


def forget_ownership() -> None:
    """Forget every owner read so far, as a freshly started process has."""
    with _ownership_lock:
        _ownership_cache.clear()


@dataclasses.dataclass(frozen=True)
class SyncResult:
    """Keys touched by :meth:`ArtifactStore.sync`."""

    uploaded: list[str]
    deleted: list[str]
    kept: list[str]
    foreign: list[str]


def fingerprint_digest(fingerprint: str) -> str:
    """The form of a source fingerprint stored in object metadata."""
    return hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()


def transfer_config_from_settings(settings: Settings) -> TransferConfig:
    """Multipart upload with parallel parts, sized by the operator's settings."""
    return TransferConfig(
        multipart_threshold=settings.multipart_chunk_bytes,
        multipart_chunksize=settings.multipart_chunk_bytes,
        max_concurrency=settings.upload_concurrency,
        use_threads=True,
    )


class _UploadProgress:
    """Upload callback: logs percent and MB/s every 10% or few seconds, not more.

    While the archive is still being packaged its size is not known (``total`` None):
    the log then says so instead of a percent. An archive known to be smaller than
    ``quiet_below`` (one PUT) gets no progress line: its "Uploaded archive" line says it all.
    """

    def __init__(self, key: str, total: int | None, quiet_below: int = 0) -> None:
        self.key = key
        self.total = total
        self.quiet_below = quiet_below
        self.done = 0
        self.started = time.monotonic()
        self.last_time = self.started
        self.last_percent = 0
        self.lock = threading.Lock()  # boto3 calls back from its worker threads

    def __call__(self, transferred: int) -> None:
        with self.lock:
            self.done += transferred
            if self.total is not None and self.total < self.quiet_below:
                return
            now = time.monotonic()
            percent = (
                None if self.total is None else min(100, self.done * 100 // max(self.total, 1))
            )
            if percent != 100 and (
                now - self.last_time < 1.0
                or (
                    (percent is None or percent < self.last_percent + 10)
                    and now - self.last_time < _PROGRESS_SECONDS
                )
            ):
                return
            if percent == 100 and self.last_percent == 100:
                return
            self.last_time, self.last_percent = now, percent or 0
            rate = self.done / max(now - self.started, 1e-6) / 1e6
        logger.info(
            "Uploading archive key=%s progress=%s bytes=%d rate_mb_s=%.1f",
            self.key,
            "packaging" if percent is None else f"{percent}%",
            self.done,
            rate,
        )


class ArtifactStore:
    """The archives of one ModelEndpoint under ``s3://bucket/prefix``.

    ``s3_client`` is a boto3 S3 client for the bucket's region (the caller builds it,
    with the normal credential chain). ``transfer_config`` defaults to the settings'
    multipart size and concurrency.
    """

    def __init__(
        self,
        s3_client: S3Client,
        bucket: str,
        prefix: str,
        owner_uid: str,
        *,
        kms_key_id: str | None = None,
        transfer_config: TransferConfig | None = None,
        settings: Settings | None = None,
        compressor: Compressor | None = None,
        namespaces: Collection[str] = (),
    ) -> None:
        if prefix and not prefix.endswith("/"):
            raise ValueError(f"artifact prefix {prefix!r} must end with '/'")
        if not owner_uid:
            raise ValueError("owner_uid must not be empty")
        self.s3 = s3_client
        self.bucket = bucket
        self.prefix = prefix
        self.owner_uid = owner_uid
        self.kms_key_id = kms_key_id
        self.transfer_config = transfer_config or transfer_config_from_settings(
            settings or get_settings()
        )
        self.compressor = compressor
        self.namespaces = frozenset(namespaces)
        """Folders under the prefix that hold attached Models' archives, one per namespace."""

    # ------------------------------------------------------------------ observe

    def _head(self, key: str) -> StoredArchive | None:
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        meta = head.get("Metadata", {})
        return StoredArchive(
            key=key,
            size=head["ContentLength"],
            sha256=meta.get(META_SHA256),
            owner_uid=meta.get(META_OWNER),
            model_name=meta.get(META_MODEL),
            fingerprint=meta.get(META_FINGERPRINT),
            etag=head.get("ETag"),
        )

    def list_archives(self, folders: Collection[str] | None = None) -> dict[str, ListedObject]:
        """Every ``.tar.gz`` directly under the prefix, as listed (no metadata, no HEAD).

        Sub-prefixes are left out: they may belong to another endpoint whose prefix nests
        inside ours, and MME only loads this level anyway. ``folders``: list only these
        namespace folders ("" is the prefix's own level), each with its own listing.
        """
        found: dict[str, ListedObject] = {}
        paginator = self.s3.get_paginator("list_objects_v2")
        if folders is not None:
            pages: Iterable[Mapping[str, Any]] = (
                page
                for folder in sorted(folders)
                for page in paginator.paginate(
                    Bucket=self.bucket,
                    Prefix=self.prefix + (f"{folder}/" if folder else ""),
                    Delimiter="/",
                )
            )
        elif self.namespaces:
            # With attached Models (kind Model), one listing of the whole prefix also finds
            # the archives under each of their namespaces' folders: pages, not a listing per
            # namespace.
            pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix)
        else:
            pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix, Delimiter="/")
        for page in pages:
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(ARCHIVE_SUFFIX) and self._listed_level(obj["Key"]):
                    found[obj["Key"]] = ListedObject(
                        obj["Key"], obj["Size"], obj["ETag"], str(obj["LastModified"])
                    )
        return found

    def observe(
        self,
        known: Mapping[str, StoredArchive] | None = None,
        folders: Collection[str] | None = None,
    ) -> dict[str, StoredArchive]:
        """The archives under the prefix with their owners: one listing, HEADs only as needed.

        ``known`` holds archives this owner uploaded, by key, with the ETag S3 listed for
        them (the caller keeps them in the resource's status): a listed object with that
        key and ETag is ours, with no HEAD. Any other object gets one HEAD, once per
        process while it stays unchanged. ``folders``: only these are listed (see
        :meth:`list_archives`); a known archive in any other folder is taken as it is.
        """
        listed = self.list_archives(folders)
        known = known or {}
        stored: dict[str, StoredArchive] = {}
        if folders is not None:
            for key, recorded in known.items():
                if archive_folder(self.prefix, key) not in folders:
                    stored[key] = dataclasses.replace(recorded, owner_uid=self.owner_uid)
        unknown: list[ListedObject] = []
        for key, obj in listed.items():
            ours = known.get(key)
            if ours is not None and ours.etag == obj.etag:
                stored[key] = dataclasses.replace(
                    ours, size=obj.size, owner_uid=self.owner_uid, etag=obj.etag
                )
            elif (cached := _cached_ownership(self.bucket, obj)) is not None:
                stored[key] = cached
            else:
                unknown.append(obj)
        if unknown:
            # Run the HEADs in parallel (boto3 clients are thread-safe).
            with ThreadPoolExecutor(max_workers=min(_HEAD_WORKERS, len(unknown))) as pool:
                heads = list(pool.map(lambda o: self._head(o.key), unknown))
            for obj, head in zip(unknown, heads, strict=True):
                if head is None:  # deleted since the listing
                    continue
                head = dataclasses.replace(head, etag=obj.etag)
                _remember_ownership(self.bucket, obj, head)
                stored[obj.key] = head
        return dict(sorted(stored.items()))

    def served_config(self, key: str) -> str:
        """The ``config.pbtxt`` the archive at ``key`` serves (the merged one, as uploaded).

        One ranged GET of the archive's first bytes (:data:`SERVED_CONFIG_HEAD_BYTES`), read
        only as far as the config: the weights after it are never transferred in full.
        """
        self._check_key(key)
        answer = self.s3.get_object(
            Bucket=self.bucket, Key=key, Range=f"bytes=0-{SERVED_CONFIG_HEAD_BYTES - 1}"
        )
        body = answer["Body"]
        try:
            # A stream read forward only, which is all that tarfile's "r|gz" mode asks for.
            return read_served_config(cast(BinaryIO, body), f"s3://{self.bucket}/{key}")
        finally:
            body.close()

    def list_objects(self) -> dict[str, StoredArchive]:
        """Every ``.tar.gz`` directly under the prefix, with its ownership metadata (read-only)."""
        return self.observe()

    # ------------------------------------------------------------------ apply

    def _listed_level(self, key: str) -> bool:
        """Directly under the prefix, or under one of ``namespaces``' folders in it."""
        folder, _, name = key[len(self.prefix) :].rpartition("/")
        if not folder:
            return True
        every = "*" in self.namespaces and _NAMESPACE.match(folder) is not None
        return (every or folder in self.namespaces) and "/" not in name

    def _check_key(self, key: str) -> None:
        rest = key[len(self.prefix) :]
        folder, _, name = rest.rpartition("/")
        nested = bool(folder) and _NAMESPACE.match(folder) is not None and "/" not in name
        if not key.startswith(self.prefix) or ("/" in rest and not nested):
            raise ValueError(f"key {key!r} is not directly under prefix {self.prefix!r}")

    def upload(
        self,
        desired: DesiredArchive,
        source: ModelSource,
        workdir: Path,
        *,
        seen_missing: bool = False,
        prepared: PreparedArchives | None = None,
    ) -> StoredArchive:
        """Package and upload one archive, unless it is already there (idempotent).

        Raises :class:`ArtifactConflictError` when the key is taken by an object that is not
        ours, and :class:`SourceChangedError` when ``source`` no longer has the fingerprint
        the key was computed from. ``seen_missing``: the caller has just listed the prefix
        without the key, so it is not looked up again. ``prepared``: archives packaged
        while their sources were named; the one for this key is uploaded as it is, while
        its source's files are unchanged since (nothing is read again).
        """
        self._check_key(desired.key)
        existing = None if seen_missing else self._head(desired.key)
        if existing is not None:
            if existing.owned_by(self.owner_uid):
                logger.debug("Kept archive key=%s model=%s", desired.key, desired.model_name)
                return existing
            raise ArtifactConflictError(
                f"s3://{self.bucket}/{desired.key} already exists and is not owned by this "
                f"ModelEndpoint; give each ModelEndpoint "
                "its own artifacts.prefix"
            )
        compressor = self.compressor or DEFAULT_COMPRESSOR
        ready = prepared.take(desired.target_model, source, compressor) if prepared else None
        if ready is None and source.fingerprint() != desired.fingerprint:
            raise SourceChangedError(
                f"source {desired.source_uri} changed since its archive name was computed; retrying"
            )
        metadata = {
            META_OWNER: self.owner_uid,
            META_MODEL: desired.model_name,
            META_FINGERPRINT: fingerprint_digest(desired.fingerprint),
            META_MANAGED_BY: MANAGED_BY,
        }
        if ready is not None:
            metadata[META_SHA256] = ready.sha256
        extra: dict[str, Any] = {"ContentType": CONTENT_TYPE, "Metadata": metadata}
        if self.kms_key_id:
            extra["ServerSideEncryption"] = "aws:kms"
            extra["SSEKMSKeyId"] = self.kms_key_id
        progress = _UploadProgress(
            desired.key,
            ready.size if ready else None,
            quiet_below=self.transfer_config.multipart_threshold,
        )
        upload = ArchiveUpload(
            self.s3,
            self.bucket,
            desired.key,
            extra,
            threshold=self.transfer_config.multipart_threshold,
            part_size=self.transfer_config.multipart_chunksize,
            concurrency=self.transfer_config.max_request_concurrency,
            progress=progress,
        )
        workdir.mkdir(parents=True, exist_ok=True)
        # The archive's own file in the work dir (no directory made and removed per upload).
        dest = workdir / f"mme-upload-{secrets.token_hex(8)}.tar.gz"
        started = time.monotonic()
        try:
            if ready is not None:
                with ready.path.open("rb") as archive:
                    upload.written(archive.fileno(), ready.size)
                packaged = ready
            else:
                # Parts go up while the rest is packaged (see artifacts.multipart).
                packaged = package_model(
                    desired.directory or desired.model_name,
                    desired.config_pbtxt,
                    source,
                    desired.weights_filename,
                    dest,
                    compressor=compressor,
                    on_written=upload.written,
                )
            packed = time.monotonic()
            progress.total = packaged.size
            etag = upload.finish(packaged.size, {META_SHA256: packaged.sha256})
            progress(0)
            done = time.monotonic()
        except BaseException:
            upload.abort()
            raise
        finally:
            dest.unlink(missing_ok=True)
            if ready is not None:
                ready.path.unlink(missing_ok=True)
        logger.info(
            "Uploaded archive key=%s model=%s bytes=%d sha256=%s package_s=%.1f upload_s=%.1f "
            "packaged_while_named=%s",
            desired.key,
            desired.model_name,
            packaged.size,
            packaged.sha256,
            packed - started,
            done - packed,
            ready is not None,
        )
        return StoredArchive(
            key=desired.key,
            size=packaged.size,
            sha256=packaged.sha256,
            owner_uid=self.owner_uid,
            model_name=desired.model_name,
            fingerprint=fingerprint_digest(desired.fingerprint),
            etag=etag,
            config_changes=packaged.config_changes,
        )

    def delete(self, key: str) -> bool:
        """Delete one archive we own; ``False`` if it was already gone.

        Raises :class:`NotOwnedError` unless the object's metadata names our owner uid.
        """
        self._check_key(key)
        existing = self._head(key)
        if existing is None:
            return False
        if not existing.owned_by(self.owner_uid):
            raise NotOwnedError(
                f"refusing to delete s3://{self.bucket}/{key}: it is not owned by this "
                "ModelEndpoint"
            )
        self.s3.delete_object(Bucket=self.bucket, Key=key)
        logger.info("Deleted archive key=%s model=%s", key, existing.model_name)
        return True

    def sync(
        self,
        desired: Sequence[DesiredArchive],
        sources: Callable[[str], ModelSource],
        workdir: Path,
    ) -> SyncResult:
        """Make the prefix hold exactly the desired archives (plus foreign objects).

        Uploads the missing archives first (``sources`` maps a desired archive's
        ``source_uri`` to its :class:`ModelSource`; called only for those), then deletes
        stale ``.tar.gz`` objects we own. Objects of others are reported, never touched.
        """
        keys = [d.key for d in desired]
        if len(set(keys)) != len(keys):
            raise ValueError("desired archives must have distinct keys")
        stored = self.list_objects()
        for d in desired:
            existing = stored.get(d.key)
            if existing is not None and not existing.owned_by(self.owner_uid):
                raise ArtifactConflictError(
                    f"s3://{self.bucket}/{d.key} already exists and is not owned by this "
                    f"ModelEndpoint; give each "
                    "ModelEndpoint its own artifacts.prefix"
                )
        uploaded, kept = [], []
        for d in desired:
            if d.key in stored:
                kept.append(d.key)
            else:
                self.upload(d, sources(d.source_uri), workdir, seen_missing=True)
                uploaded.append(d.key)
        wanted = set(keys)
        deleted, foreign = [], []
        for key, obj in sorted(stored.items()):
            if key in wanted:
                continue
            if obj.owned_by(self.owner_uid):
                if self.delete(key):
                    deleted.append(key)
            else:
                foreign.append(key)
        return SyncResult(uploaded=uploaded, deleted=deleted, kept=kept, foreign=foreign)

"""Model sources: where a model's weights live, identified cheaply and read as a stream.

One small interface, :class:`ModelSource`, with one implementation per URI scheme:

* ``s3://bucket/key``: one object, a prefix (``key/`` holding ``1/model.onnx`` or plain
  files), or an existing ``.tar.gz``;
* ``https://host/path``: one file (or a ``.tar.gz``), with a size limit and a timeout;
* ``file:///path``: a file or a directory on a mounted volume, inside an allowed root.

``fingerprint()`` identifies the content without downloading it (S3 ETag and size,
HTTP ETag or Last-Modified and length); it is what the archive's name is derived from.
``open_content(workdir)`` yields the content as a list of entries that the packager
streams one at a time, so a multi-GB model never sits in memory. A source object is a
snapshot: the identity seen by ``fingerprint()`` is pinned, and reading content that
no longer matches it raises :class:`SourceChangedError` rather than packaging a mix.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import enum
import functools
import hashlib
import ipaddress
import os
import posixpath
import stat
import tarfile
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from mme_operator.artifacts.errors import (
    ArtifactError,
    InvalidSourceError,
    SourceAccessError,
    SourceChangedError,
    SourceFetchError,
    SourceNotFoundError,
    SourceTooLargeError,
    UnsafeArchiveError,
)
from mme_operator.settings import Settings, get_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

try:  # ISA-L decompresses gzip several times faster than zlib; zlib is the fallback.
    from isal import igzip as _gzip_reader
except ImportError:  # pragma: no cover - isal is a dependency, the fallback is a safety net
    import gzip as _gzip_reader  # type: ignore[no-redef]

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
MAX_ARCHIVE_MEMBERS = 100_000
_COPY_CHUNK = 1024 * 1024

S3ClientFactory = Callable[[str], "S3Client"]
"""Returns the S3 client to read one bucket with (the argument is the bucket name).

The caller picks region and endpoint per bucket; the artifacts layer never creates
clients of its own, so credentials follow the normal boto3 chain of the caller.
"""


class EntryType(enum.Enum):
    """Kind of a source entry."""

    FILE = "file"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"


@dataclasses.dataclass(frozen=True)
class SourceEntry:
    """One entry of a source's content.

    ``path`` is a relative POSIX path inside the source (for a single-file source, the
    file's own name). ``open`` returns a context manager over a binary stream of exactly
    ``size`` bytes; entries must be opened in list order, each at most once (a ``.tar.gz``
    source is read as one forward stream). Links carry ``linkname`` instead: the symlink
    target as stored, or for a hard link the relative path of the entry it repeats.
    """

    path: str
    size: int
    open: Callable[[], contextlib.AbstractContextManager[BinaryIO]] | None = None
    type: EntryType = EntryType.FILE
    linkname: str = ""


@dataclasses.dataclass(frozen=True)
class SourceContent:
    """A source's content: one file (placed as the weights file) or a tree of entries."""

    single_file: bool
    entries: Sequence[SourceEntry]


class ModelSource(Protocol):
    """Where one model's weights come from."""

    @property
    def uri(self) -> str:
        """The source URI as the user wrote it."""
        ...

    def fingerprint(self) -> str:
        """Cheap identity of the content (no download where the scheme allows); cached."""
        ...

    def open_content(self, workdir: Path) -> contextlib.AbstractContextManager[SourceContent]:
        """Make the content readable, using ``workdir`` for any temporary files."""
        ...


def open_source(
    uri: str,
    *,
    s3_client_factory: S3ClientFactory | None = None,
    s3_client: S3Client | None = None,
    settings: Settings | None = None,
    max_bytes: int | None = None,
    file_roots: Sequence[str | Path] | None = None,
    allow_insecure_localhost: bool = False,
) -> ModelSource:
    """The :class:`ModelSource` for ``uri`` (no I/O happens until it is used).

    S3 sources read with ``s3_client_factory(bucket)``, or with ``s3_client`` for every
    bucket when no factory is given.

    ``max_bytes`` defaults to ``settings.max_source_bytes``. ``file_roots`` (default
    ``settings.file_roots``) lists the directories ``file://`` sources may read from
    (mounted model volumes); with none,
    ``file://`` is refused, because the operator's own files (its service-account token)
    must never end up in a user's bucket. ``allow_insecure_localhost`` lets tests use
    ``http://127.0.0.1``; production accepts ``https://`` only.
    """
    settings = settings or get_settings()
    limit = max_bytes if max_bytes is not None else settings.max_source_bytes
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
        return S3Source(uri, bucket, key, client, max_bytes=limit, transfer_config=transfer)
    if scheme in ("https", "http"):
        _check_url_allowed(uri, allow_insecure_localhost)
        return HttpsSource(
            uri,
            max_bytes=limit,
            timeout=settings.https_timeout_seconds,
            allow_insecure_localhost=allow_insecure_localhost,
        )
    if scheme == "file":
        roots = settings.file_root_list if file_roots is None else file_roots
        return FileSource(uri, _file_path(uri, parsed, roots), max_bytes=limit)
    raise InvalidSourceError(
        f"source {uri!r}: unsupported scheme; use s3://bucket/key, https://... or file:///path"
    )


def is_archive_name(name: str) -> bool:
    """Whether a file name marks an existing model archive (``.tar.gz`` / ``.tgz``)."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _check_size(uri: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise SourceTooLargeError(
            f"source {uri} is {size} bytes, more than the limit of {max_bytes} bytes; "
            "use a smaller model or raise MME_MAX_SOURCE_BYTES"
        )


def _temp_path(workdir: Path, suffix: str = "") -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=workdir, prefix="mme-src-", suffix=suffix)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def _open_local(path: Path) -> Iterator[BinaryIO]:
    with open(path, "rb") as f:
        yield f


# --------------------------------------------------------------------------- archives


@dataclasses.dataclass(frozen=True)
class _Member:
    index: int
    path: str
    size: int
    type: EntryType
    linkname: str = ""


def _normalize_member_path(name: str, uri: str) -> str:
    """The member's path relative to the archive root; '' for the root itself."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(
            f"archive {uri} holds an absolute path {name!r}; rebuild it with relative paths"
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(
            f"archive {uri} holds {name!r}, which points outside the model directory; "
            "rebuild it without '..' in member paths"
        )
    return "/".join(parts)


def _scan_archive(path: Path, uri: str, max_bytes: int) -> list[_Member]:
    """First pass over a ``.tar.gz``: validate every member, keep regular files and links."""
    members: list[_Member] = []
    regular: set[str] = set()
    total = 0
    with _open_tar_stream(path, uri) as tf:
        for index, info in enumerate(_iter_tar(tf, uri)):
            if index >= MAX_ARCHIVE_MEMBERS:
                raise InvalidSourceError(
                    f"archive {uri} has more than {MAX_ARCHIVE_MEMBERS} members"
                )
            rel = _normalize_member_path(info.name, uri)
            if info.isdir() or not rel:
                continue
            if info.ischr() or info.isblk() or info.isfifo():
                raise UnsafeArchiveError(
                    f"archive {uri} holds a device or fifo {info.name!r}; "
                    "a model archive may only hold files, directories and relative links"
                )
            if info.issym():
                target = info.linkname
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
                if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
                    raise UnsafeArchiveError(
                        f"archive {uri} holds a symlink {info.name!r} -> {target!r} pointing "
                        "outside the model directory; replace it with the file itself"
                    )
                members.append(_Member(index, rel, 0, EntryType.SYMLINK, target))
            elif info.islnk():
                target = _normalize_member_path(info.linkname, uri)
                if target not in regular:
                    raise UnsafeArchiveError(
                        f"archive {uri} holds a hard link {info.name!r} -> {info.linkname!r} "
                        "to no earlier file of the archive; replace it with the file itself"
                    )
                members.append(_Member(index, rel, 0, EntryType.HARDLINK, target))
            elif info.isreg():
                total += info.size
                _check_size(uri, total, max_bytes)
                members.append(_Member(index, rel, info.size, EntryType.FILE))
                regular.add(rel)
            else:
                raise UnsafeArchiveError(
                    f"archive {uri} holds {info.name!r} of unsupported type {info.type!r}"
                )
    return members


@contextlib.contextmanager
def _open_tar_stream(path: Path, uri: str) -> Iterator[tarfile.TarFile]:
    with contextlib.ExitStack() as stack:
        try:
            raw = stack.enter_context(_gzip_reader.open(path, "rb"))  # type: ignore[no-untyped-call]
            tf = stack.enter_context(tarfile.open(fileobj=raw, mode="r|"))
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InvalidSourceError(f"source {uri} is not a valid .tar.gz archive: {exc}") from exc
        yield tf


def _iter_tar(tf: tarfile.TarFile, uri: str) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            info = tf.next()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InvalidSourceError(f"source {uri} is not a valid .tar.gz archive: {exc}") from exc
        if info is None:
            return
        yield info


@contextlib.contextmanager
def _archive_content(path: Path, uri: str, max_bytes: int) -> Iterator[SourceContent]:
    """A ``.tar.gz`` as a tree, read in a second forward pass (archive order is kept)."""
    members = _scan_archive(path, uri, max_bytes)
    with _open_tar_stream(path, uri) as tf:
        stream = _iter_tar(tf, uri)
        position = -1

        @contextlib.contextmanager
        def open_member(index: int) -> Iterator[BinaryIO]:
            nonlocal position
            if index <= position:
                raise RuntimeError("archive entries must be opened in order, once each")
            info = None
            while position < index:
                info = next(stream)
                position += 1
            assert info is not None
            handle = tf.extractfile(info)
            if handle is None:  # pragma: no cover - only regular files are opened
                raise InvalidSourceError(f"archive {uri}: cannot read {info.name!r}")
            with handle:
                yield handle  # type: ignore[misc]

        entries = [
            SourceEntry(
                path=m.path,
                size=m.size,
                open=functools.partial(open_member, m.index) if m.type is EntryType.FILE else None,
                type=m.type,
                linkname=m.linkname,
            )
            for m in members
        ]
        yield SourceContent(single_file=False, entries=entries)


# --------------------------------------------------------------------------- file://


def _file_path(uri: str, parsed: urllib.parse.SplitResult, roots: Sequence[str | Path]) -> Path:
    if parsed.netloc not in ("", "localhost"):
        raise InvalidSourceError(
            f"source {uri!r}: write file:///absolute/path (three slashes) for a mounted volume"
        )
    path = Path(urllib.parse.unquote(parsed.path))
    if not path.is_absolute():
        raise InvalidSourceError(f"source {uri!r}: the path must be absolute")
    if not roots:
        raise InvalidSourceError(
            f"source {uri}: file:// sources are disabled; mount the model volume into the "
            "operator and list its directory in MME_FILE_ROOTS"
        )
    real = Path(os.path.realpath(path))
    for root in roots:
        real_root = Path(os.path.realpath(root))
        if real == real_root or real.is_relative_to(real_root):
            return real
    allowed = ", ".join(str(r) for r in roots)
    raise InvalidSourceError(f"source {uri}: {path} is not under an allowed root ({allowed})")


def _walk_local_tree(root: Path, uri: str) -> list[tuple[str, Path, int]]:
    """(relative path, real path, size) of every file under ``root``, sorted by path."""
    found: list[tuple[str, Path, int]] = []
    real_root = Path(os.path.realpath(root))
    visited: set[Path] = set()

    def walk(directory: Path, rel_dir: str) -> None:
        real_dir = Path(os.path.realpath(directory))
        if real_dir in visited:
            raise UnsafeArchiveError(f"source {uri}: directory symlink loop at {directory}")
        visited.add(real_dir)
        with os.scandir(directory) as it:
            children = sorted(it, key=lambda e: e.name)
        for child in children:
            # Kubernetes ConfigMap/Secret volumes keep their real files in '..data' dirs
            # and expose them via symlinks; taking both would duplicate every file.
            if child.name.startswith(".."):
                continue
            rel = f"{rel_dir}{child.name}"
            real = Path(os.path.realpath(child.path))
            if child.is_symlink() and not (real == real_root or real.is_relative_to(real_root)):
                raise UnsafeArchiveError(
                    f"source {uri}: symlink {rel} points outside the source directory "
                    f"(to {real}); copy the file in instead"
                )
            try:
                st = os.stat(child.path)
            except FileNotFoundError as exc:
                raise InvalidSourceError(f"source {uri}: {rel} is a broken symlink") from exc
            if stat.S_ISDIR(st.st_mode):
                walk(Path(child.path), rel + "/")
            elif stat.S_ISREG(st.st_mode):
                found.append((rel, real, st.st_size))
            else:
                raise UnsafeArchiveError(
                    f"source {uri}: {rel} is a device, fifo or socket; only files are allowed"
                )
        visited.discard(real_dir)

    walk(root, "")
    found.sort(key=lambda item: item[0])
    return found


_HASH_CACHE_SIZE = 4096
_hash_cache: collections.OrderedDict[tuple[int, ...], str] = collections.OrderedDict()
_hash_cache_lock = threading.Lock()


def _sha256_file(path: Path) -> str:
    """sha256 of a file, cached by its stat identity.

    A drift check every few minutes must not re-read GBs of unchanged weights; any write
    changes mtime/ctime/size, which misses the cache and hashes the content again.
    """
    st = os.stat(path)
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _hash_cache_lock:
        cached = _hash_cache.get(identity)
        if cached is not None:
            _hash_cache.move_to_end(identity)
            return cached
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    with _hash_cache_lock:
        _hash_cache[identity] = digest
        while len(_hash_cache) > _HASH_CACHE_SIZE:
            _hash_cache.popitem(last=False)
    return digest


class FileSource:
    """A file or directory on a volume mounted into the operator (``file:///path``)."""

    def __init__(self, uri: str, path: Path, *, max_bytes: int) -> None:
        self._uri = uri
        self.path = path
        self.max_bytes = max_bytes
        self._fingerprint: str | None = None

    @property
    def uri(self) -> str:
        return self._uri

    def _stat(self) -> os.stat_result:
        try:
            return os.stat(self.path)
        except FileNotFoundError as exc:
            raise SourceNotFoundError(
                f"source {self._uri}: {self.path} does not exist; is the volume mounted?"
            ) from exc
        except PermissionError as exc:
            raise SourceAccessError(
                f"source {self._uri}: permission denied on {self.path}"
            ) from exc

    def _tree(self) -> list[tuple[str, Path, int]]:
        tree = _walk_local_tree(self.path, self._uri)
        if not tree:
            raise InvalidSourceError(f"source {self._uri}: directory {self.path} holds no files")
        _check_size(self._uri, sum(size for _, _, size in tree), self.max_bytes)
        return tree

    def fingerprint(self) -> str:
        """sha256 of the content (a directory: of its sorted relative paths and contents).

        Local reads are cheap next to an upload, and mtimes are useless as identity on
        volumes that are copied around; so the content itself is the identity.
        """
        if self._fingerprint is None:
            st = self._stat()
            if stat.S_ISDIR(st.st_mode):
                outer = hashlib.sha256()
                for rel, real, _size in self._tree():
                    name = rel.encode("utf-8")
                    outer.update(f"{len(name)}:".encode() + name)
                    outer.update(bytes.fromhex(_sha256_file(real)))
                self._fingerprint = f"file-tree sha256={outer.hexdigest()}"
            elif stat.S_ISREG(st.st_mode):
                _check_size(self._uri, st.st_size, self.max_bytes)
                self._fingerprint = f"file sha256={_sha256_file(self.path)}"
            else:
                raise InvalidSourceError(f"source {self._uri}: not a regular file or directory")
        return self._fingerprint

    @contextlib.contextmanager
    def open_content(self, workdir: Path) -> Iterator[SourceContent]:
        """The file or directory as it is on disk; nothing is copied."""
        st = self._stat()
        if stat.S_ISDIR(st.st_mode):
            entries = [
                SourceEntry(path=rel, size=size, open=functools.partial(_open_local, real))
                for rel, real, size in self._tree()
            ]
            yield SourceContent(single_file=False, entries=entries)
            return
        if not stat.S_ISREG(st.st_mode):
            raise InvalidSourceError(f"source {self._uri}: not a regular file or directory")
        _check_size(self._uri, st.st_size, self.max_bytes)
        if is_archive_name(self.path.name):
            with _archive_content(self.path, self._uri, self.max_bytes) as content:
                yield content
            return
        entry = SourceEntry(
            path=self.path.name, size=st.st_size, open=lambda: _open_local(self.path)
        )
        yield SourceContent(single_file=True, entries=[entry])


# --------------------------------------------------------------------------- s3://


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
        transfer_config: TransferConfig | None = None,
    ) -> None:
        self._uri = uri
        self.bucket = bucket
        self.key = key
        self.client = client
        self.max_bytes = max_bytes
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
            _check_size(self._uri, self._object.size, self.max_bytes)
        else:
            assert self._tree is not None
            if not self._tree:
                raise SourceNotFoundError(
                    f"source {self._uri}: no object s3://{self.bucket}/{self.key} and no objects "
                    f"under s3://{self.bucket}/{self._tree_prefix}"
                )
            _check_size(self._uri, sum(o.size for o in self._tree), self.max_bytes)

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
        path = _temp_path(workdir)
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
                path = _temp_path(workdir, suffix=".tar.gz")
                try:
                    self._download(obj, path)
                    with _archive_content(path, self._uri, self.max_bytes) as content:
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


# --------------------------------------------------------------------------- https://

_LOCAL_HOSTS = ("localhost",)


def _check_url_allowed(url: str, allow_insecure_localhost: bool) -> None:
    parsed = urllib.parse.urlsplit(url)
    scheme = parsed.scheme.lower()
    if scheme == "https" and parsed.hostname:
        return
    if scheme == "http" and allow_insecure_localhost and parsed.hostname:
        host = parsed.hostname
        try:
            local = ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = host in _LOCAL_HOSTS
        if local:
            return
    raise InvalidSourceError(f"source {url!r}: only https:// URLs are allowed")


def _display_url(url: str) -> str:
    """The URL without query, fragment and credentials: presigned URLs change on every
    signing and carry secrets, neither of which belongs in a fingerprint or a log line."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    netloc = f"{host}:{p.port}" if p.port else host
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path, "", ""))


class _SchemeCheckingRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, allow_insecure_localhost: bool) -> None:
        self.allow_insecure_localhost = allow_insecure_localhost

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        # A redirect must not downgrade to plain http (or leave loopback in tests).
        _check_url_allowed(newurl, self.allow_insecure_localhost)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class HttpsSource:
    """One file served over ``https://`` (a ``.tar.gz`` URL is read as an archive).

    ``timeout`` bounds every socket operation (connect and each read), so a stalled
    server fails the download instead of hanging the reconcile.
    """

    def __init__(
        self,
        uri: str,
        *,
        max_bytes: int,
        timeout: float,
        allow_insecure_localhost: bool = False,
    ) -> None:
        _check_url_allowed(uri, allow_insecure_localhost)
        self._uri = uri
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._opener = urllib.request.build_opener(
            _SchemeCheckingRedirects(allow_insecure_localhost)
        )
        self._display = _display_url(uri)
        self._fingerprint: str | None = None
        self._etag: str | None = None
        self._content_sha256: str | None = None

    @property
    def uri(self) -> str:
        return self._uri

    def _request(self, method: str) -> Any:
        request = urllib.request.Request(self._uri, method=method)
        try:
            return self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise self._http_error(exc.code) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise SourceFetchError(f"fetching {self._display} failed: {exc}") from exc

    def _http_error(self, code: int) -> ArtifactError:
        if code in (404, 410):
            return SourceNotFoundError(f"source {self._display} does not exist (HTTP {code})")
        if code in (401, 403):
            return SourceAccessError(f"access to {self._display} denied (HTTP {code})")
        return SourceFetchError(f"fetching {self._display} failed (HTTP {code})")

    def _check_length(self, headers: Any) -> int | None:
        length = headers.get("Content-Length")
        if length is None:
            return None
        size = int(length)
        _check_size(self._display, size, self.max_bytes)
        return size

    def _stream(self, response: Any, sink: Callable[[bytes], object]) -> str:
        """Copy the body to ``sink`` with the size limit and timeout; return its sha256."""
        digest = hashlib.sha256()
        total = 0
        try:
            while chunk := response.read(_COPY_CHUNK):
                total += len(chunk)
                _check_size(self._display, total, self.max_bytes)
                digest.update(chunk)
                sink(chunk)
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise SourceFetchError(
                f"downloading {self._display} failed after {total} bytes "
                f"(timeout {self.timeout:g}s): {exc}"
            ) from exc
        return digest.hexdigest()

    def fingerprint(self) -> str:
        """URL with ETag or Last-Modified and length from a HEAD; else a content hash."""
        if self._fingerprint is not None:
            return self._fingerprint
        try:
            with self._request("HEAD") as response:
                headers = response.headers
        except (SourceAccessError, SourceFetchError):
            # Presigned URLs are signed for GET only and some servers refuse HEAD: the
            # content hash below is slower but always works.
            headers = None
        etag = headers.get("ETag") if headers is not None else None
        modified = headers.get("Last-Modified") if headers is not None else None
        if headers is not None and (etag or modified):
            size = self._check_length(headers)
            self._etag = etag
            validator = f"etag={etag}" if etag else f"last-modified={modified}"
            self._fingerprint = f"{self._display} {validator} size={size}"
        else:
            with self._request("GET") as response:
                self._check_length(response.headers)
                self._content_sha256 = self._stream(response, lambda _chunk: None)
            self._fingerprint = f"{self._display} sha256={self._content_sha256}"
        return self._fingerprint

    def _download(self, dest: Path) -> None:
        with self._request("GET") as response, open(dest, "wb") as out:
            self._check_length(response.headers)
            etag = response.headers.get("ETag")
            content_sha256 = self._stream(response, out.write)
        if (self._etag and etag and etag != self._etag) or (
            self._content_sha256 and content_sha256 != self._content_sha256
        ):
            raise SourceChangedError(f"source {self._display} changed while it was read; retrying")

    @contextlib.contextmanager
    def open_content(self, workdir: Path) -> Iterator[SourceContent]:
        """Download the file to ``workdir`` (streamed to disk), then read it from there."""
        self.fingerprint()
        name = posixpath.basename(urllib.parse.urlsplit(self._uri).path) or "download"
        path = _temp_path(workdir, suffix=".tar.gz" if is_archive_name(name) else "")
        try:
            self._download(path)
            if is_archive_name(name):
                with _archive_content(path, self._display, self.max_bytes) as content:
                    yield content
            else:
                size = path.stat().st_size
                entry = SourceEntry(path=name, size=size, open=lambda: _open_local(path))
                yield SourceContent(single_file=True, entries=[entry])
        finally:
            path.unlink(missing_ok=True)


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

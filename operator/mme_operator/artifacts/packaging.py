"""Deterministic, streaming packaging of a model into a Triton model-repository ``.tar.gz``.

Which members go where, and the config the served model gets (a source's own
``config.pbtxt`` merged under the spec's, ensembles with their steps), is decided by
:mod:`mme_operator.artifacts.repository`; this module writes the bytes.

The same inputs give byte-identical output: entries in a fixed order, every header field
fixed (mtime 0, uid/gid 0, empty owner names, modes 0644/0755), explicit directory
entries, PAX format, gzip header with mtime 0 and no file name. The archive holds
directories, regular files and hard links to its own earlier files, never a symbolic link
(see :mod:`mme_operator.artifacts.archive_safety`). Model files are streamed
(never held in memory) and the sha256 of the archive is computed while it is written.
Compression is ISA-L level 1 (weights barely compress, so speed is what matters), with
zlib level 1 as the fallback when ``isal`` cannot be imported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import io
import os
import queue
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO, Literal

from mme_operator.artifacts.errors import (
    SourceChangedError,
)
from mme_operator.artifacts.naming import _check_model_name, check_weights_filename
from mme_operator.artifacts.repository import plan_archive
from mme_operator.artifacts.sources import EntryType, ModelSource, SourceContent, SourceEntry

try:
    from isal import igzip as _igzip

    ISAL_AVAILABLE = True
except ImportError:  # pragma: no cover - isal is a dependency; the fallback is a safety net
    ISAL_AVAILABLE = False

Compressor = Literal["isal", "zlib"]
DEFAULT_COMPRESSOR: Compressor = "isal" if ISAL_AVAILABLE else "zlib"
COMPRESS_LEVEL = 1
FILE_MODE = 0o644
DIR_MODE = 0o755
_COPY_BUFFER = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class PackagedArchive:
    """A packaged archive on local disk."""

    path: Path
    sha256: str
    size: int
    config_changes: tuple[str, ...] = ()
    """What the spec overrode or added in the source's own config.pbtxt."""


class _HashingWriter:
    """Hashes, counts and writes the compressed stream on a background thread.

    Compression (main thread) and sha256 + disk writes (this thread) both release the
    GIL, so the two overlap on separate cores: about 1.5x the packaging throughput of
    doing them in turn. The queue is bounded, so at most a few MiB are in flight.
    """

    _DONE = b""

    def __init__(self, raw: BinaryIO, depth: int = 8) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="mme-archive-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (data := self._queue.get()) is not self._DONE:
            if self._error is None:
                try:
                    self.digest.update(data)
                    self.raw.write(data)
                except BaseException as exc:  # surfaced to the writer in write()/close()
                    self._error = exc

    def write(self, data: bytes) -> int:
        if self._error is not None:
            raise self._error
        if not data:
            return 0
        chunk = bytes(data)  # callers may reuse a buffer after write() returns
        self._queue.put(chunk)
        self.size += len(chunk)
        return len(chunk)

    def flush(self) -> None:
        pass

    def tell(self) -> int:
        return self.size

    def close(self) -> None:
        """Wait until everything is written; re-raise a write error."""
        if self._thread.is_alive():
            self._queue.put(self._DONE)
            self._thread.join()
        if self._error is not None:
            raise self._error


class _ExactReader:
    """Reads one entry; a short read means the source changed under us (not a bad disk)."""

    def __init__(self, raw: BinaryIO, size: int, what: str) -> None:
        self.raw = raw
        self.remaining = size
        self.what = what

    def read(self, n: int = -1) -> bytes:
        want = self.remaining if n < 0 else min(n, self.remaining)
        data = self.raw.read(want)
        if len(data) < want:
            raise SourceChangedError(
                f"{self.what} ended early; it changed while it was packaged; retrying"
            )
        self.remaining -= len(data)
        return data


def _gzip_writer(fileobj: _HashingWriter, compressor: Compressor) -> gzip.GzipFile:
    if compressor == "isal":
        if not ISAL_AVAILABLE:  # pragma: no cover
            raise RuntimeError("isal is not installed")
        return _igzip.IGzipFile(  # type: ignore[no-untyped-call]
            filename="", mode="wb", compresslevel=COMPRESS_LEVEL, fileobj=fileobj, mtime=0
        )
    return gzip.GzipFile(
        filename="", mode="wb", compresslevel=COMPRESS_LEVEL, fileobj=fileobj, mtime=0
    )


def _info(name: str, type_: bytes, mode: int, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.mode = mode
    info.size = size
    info.linkname = linkname
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def package_model(
    name: str,
    config_pbtxt: str,
    source: ModelSource,
    weights_filename: str,
    dest: Path,
    *,
    compressor: Compressor | None = None,
) -> PackagedArchive:
    """Package one model into ``dest`` (a deterministic ``.tar.gz``) and return its sha256.

    Temporary downloads go to a scratch directory next to ``dest`` and are removed
    afterwards; ``dest`` appears only when the archive is complete.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix="mme-pkg-") as scratch:
        return package_content(
            name,
            config_pbtxt,
            source.open_content(Path(scratch)),
            weights_filename,
            dest,
            uri=source.uri,
            compressor=compressor,
        )


def package_content(
    name: str,
    config_pbtxt: str,
    content: contextlib.AbstractContextManager[SourceContent],
    weights_filename: str,
    dest: Path,
    *,
    uri: str,
    compressor: Compressor | None = None,
) -> PackagedArchive:
    """Package a source's opened ``content`` into ``dest``, as :func:`package_model` does.

    ``content`` is left only after ``dest`` is complete, so a source that checks what was
    read when it is left (see ``FileSource.open_content_to_name``) checks the whole archive.
    """
    _check_model_name(name)
    check_weights_filename(weights_filename)
    compressor = compressor or DEFAULT_COMPRESSOR
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    complete = False
    try:
        with content as opened:
            plan = plan_archive(name, opened, config_pbtxt, weights_filename, uri)
            layout = plan.layout
            with open(partial, "wb") as raw:
                writer = _HashingWriter(raw)
                with (
                    contextlib.closing(writer),
                    _gzip_writer(writer, compressor) as gz,
                    tarfile.TarFile(
                        fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8"
                    ) as tar,
                ):
                    tar.copybufsize = _COPY_BUFFER  # type: ignore[attr-defined]  # 16 KiB default is slow
                    config = plan.config_pbtxt.encode("utf-8")
                    tar.addfile(_info(name, tarfile.DIRTYPE, DIR_MODE))
                    tar.addfile(
                        _info(f"{name}/config.pbtxt", tarfile.REGTYPE, FILE_MODE, len(config)),
                        io.BytesIO(config),
                    )
                    directories = {name}
                    for empty in plan.directories:
                        _add_parents(tar, empty + "/", directories)
                    placed = {e.path: p for p, e in layout}
                    for path, entry in layout:
                        _add_parents(tar, path, directories)
                        _add_entry(tar, path, entry, placed, uri)
            os.replace(partial, dest)
            complete = True
    except BaseException:
        if complete:  # the source refused what was read when it was left
            dest.unlink(missing_ok=True)
        raise
    finally:
        partial.unlink(missing_ok=True)
    return PackagedArchive(
        path=dest,
        sha256=writer.digest.hexdigest(),
        size=writer.size,
        config_changes=plan.changes,
    )


def _add_parents(tar: tarfile.TarFile, path: str, directories: set[str]) -> None:
    parts = path.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        directory = "/".join(parts[:depth])
        if directory not in directories:
            directories.add(directory)
            tar.addfile(_info(directory, tarfile.DIRTYPE, DIR_MODE))


def _add_entry(
    tar: tarfile.TarFile,
    path: str,
    entry: SourceEntry,
    placed: dict[str, str],
    uri: str,
) -> None:
    if entry.type is EntryType.HARDLINK:
        tar.addfile(_info(path, tarfile.LNKTYPE, FILE_MODE, linkname=placed[entry.linkname]))
        return
    assert entry.open is not None
    with entry.open() as handle:
        reader = _ExactReader(handle, entry.size, f"{uri}: {entry.path}")
        tar.addfile(_info(path, tarfile.REGTYPE, FILE_MODE, entry.size), reader)

"""Local weights read once: a ``file://`` source is packaged while it is named.

An archive's name is made of its source's content, so naming a local source whose files
are not remembered (:mod:`.sources.file_hashes`) reads every byte of it; the upload that
usually follows (new or changed weights are rarely in S3 yet) would read them all again
to package them. :meth:`PreparedArchives.name` packages such a source while it hashes it,
and keeps the archive for the pass's upload: the archive holds exactly the bytes its name
is made of, by construction.

:meth:`ArtifactStore.upload <mme_operator.artifacts.store.ArtifactStore.upload>` takes
the prepared archive only while every file of the source still has the identity (inode,
size, mtime, ctime) it had when it was read; a file written since makes the upload
package again from the source, where the check against the name refuses changed content.
An archive no upload takes (its key was in S3 already, the pass failed) is removed when
the pass ends; none outlives the :class:`PreparedArchives` context.

Disk: the archives wait for their uploads side by side, so what they may take at once is
bounded for the whole process (``limit_bytes``, shared by every pass; the engine gives half
of ``MME_MAX_SOURCE_BYTES``), and the work dir's filesystem must keep twice a source's
size free. A source that does not fit is named as before (hashed alone), and its upload
reads it again.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Collection
from pathlib import Path
from types import TracebackType

from mme_operator.artifacts.errors import ArtifactError
from mme_operator.artifacts.naming import target_model_name
from mme_operator.artifacts.packaging import (
    DEFAULT_COMPRESSOR,
    Compressor,
    PackagedArchive,
    package_content,
)
from mme_operator.artifacts.sources import FileSource, ModelSource
from mme_operator.artifacts.sources.file import FileIdentities

logger = logging.getLogger("mme_operator.artifacts")

_held_lock = threading.Lock()
_held_bytes = 0
"""Bytes reserved by the prepared archives of every pass of this process."""


def _reserve(size: int, limit: int | None) -> bool:
    global _held_bytes
    with _held_lock:
        if limit is not None and _held_bytes + size > limit:
            return False
        _held_bytes += size
        return True


def _release(size: int) -> None:
    global _held_bytes
    with _held_lock:
        _held_bytes -= size


def held_bytes() -> int:
    """Bytes the prepared archives of all passes of this process hold (reserved) now."""
    with _held_lock:
        return _held_bytes


def _archive_bound(source_bytes: int) -> int:
    # Tar headers, and deflate's worst case on incompressible weights, with room to spare.
    return source_bytes + source_bytes // 64 + 1024 * 1024


@dataclasses.dataclass(frozen=True)
class PreparedArchive:
    """An archive packaged while its source was named."""

    packaged: PackagedArchive
    compressor: Compressor
    identities: FileIdentities
    """Each source file's identity when it was read into the archive."""
    reserved: int
    """Bytes reserved for it against the process's limit, released when it is taken or removed."""

    def discard(self) -> None:
        """Remove the file and release its reservation."""
        self.packaged.path.unlink(missing_ok=True)
        _release(self.reserved)


class PreparedArchives:
    """The archives one reconcile pass packaged while naming its sources, by target model.

    A context manager: on leaving, every archive not taken is removed, with the directory
    that held them (a new one under ``workdir``, made on the first archive). Thread-safe.
    ``limit_bytes``: what the prepared archives of all passes may hold at once (None: no
    limit besides the free space).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        limit_bytes: int | None = None,
        compressor: Compressor | None = None,
    ) -> None:
        self.workdir = workdir
        self.limit_bytes = limit_bytes
        self.compressor: Compressor = compressor or DEFAULT_COMPRESSOR
        self._archives: dict[str, PreparedArchive] = {}
        self._lock = threading.Lock()
        self._directory: Path | None = None
        self._count = 0

    def __enter__(self) -> PreparedArchives:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _new_path(self) -> Path:
        with self._lock:
            if self._directory is None:
                self.workdir.mkdir(parents=True, exist_ok=True)
                self._directory = Path(tempfile.mkdtemp(dir=self.workdir, prefix="mme-prepared-"))
            self._count += 1
            return self._directory / f"{self._count}.tar.gz"

    def _reserve(self, size: int) -> int | None:
        """Reserve room for an archive of a ``size``-byte source: the bytes, or None."""
        bound = _archive_bound(size)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Keep as much again free: an upload that must package after all needs that room.
        if shutil.disk_usage(self.workdir).free < 2 * bound:
            return None
        return bound if _reserve(bound, self.limit_bytes) else None

    def name(
        self,
        source: ModelSource,
        *,
        model_name: str,
        config_pbtxt: str,
        weights_filename: str,
    ) -> str:
        """``source.fingerprint()``; packaging the model meanwhile where that reads its files.

        Only a ``file://`` source (not a ``.tar.gz``) with a file not remembered is
        packaged, and only while its archive fits under ``limit_bytes`` and the work dir's
        disk has twice its size free; any other source is named as it always is. Where packaging fails (the source is unusable, or
        changed while it was read), the source is named without it, and the upload meets
        the same problem where it always did.
        """
        if not isinstance(source, FileSource) or not source.needs_reading_to_name():
            return source.fingerprint()
        size = source.size_bytes() or 0
        reserved = self._reserve(size)
        if reserved is None:
            logger.info(
                "Named source without packaging it uri=%s bytes=%d reason=%s",
                source.uri,
                size,
                "prepared archives hold their limit of the work dir, or it is short of space",
            )
            return source.fingerprint()
        dest = self._new_path()
        started = time.monotonic()
        try:
            packaged = package_content(
                model_name,
                config_pbtxt,
                source.open_content_to_name(),
                weights_filename,
                dest,
                uri=source.uri,
                compressor=self.compressor,
            )
        except (ArtifactError, ValueError) as exc:
            dest.unlink(missing_ok=True)
            _release(reserved)
            logger.info("Named source without packaging it uri=%s reason=%s", source.uri, exc)
            return source.fingerprint()
        except BaseException:
            dest.unlink(missing_ok=True)
            _release(reserved)
            raise
        fingerprint = source.fingerprint()  # follows from what was read: no read
        target = target_model_name(
            model_name, config_pbtxt, fingerprint, weights_filename=weights_filename
        )
        prepared = PreparedArchive(packaged, self.compressor, source.named_identities, reserved)
        with self._lock:
            replaced = self._archives.pop(target, None)
            self._archives[target] = prepared
        if replaced is not None:
            replaced.discard()
        logger.info(
            "Packaged archive while naming its source model=%s target=%s bytes=%d package_s=%.1f",
            model_name,
            target,
            packaged.size,
            time.monotonic() - started,
        )
        return fingerprint

    def take(
        self, target_model: str, source: ModelSource, compressor: Compressor
    ) -> PackagedArchive | None:
        """The archive prepared for ``target_model``, if ``source`` is as it was read then.

        The caller owns the file from then on: it is one upload's archive, as one packaged
        for the upload would be, and no longer counts against the limit. An archive made
        with another compressor, or of files written, replaced, added or removed since, is
        removed: None.
        """
        with self._lock:
            prepared = self._archives.pop(target_model, None)
        if prepared is None:
            return None
        try:
            usable = (
                prepared.compressor == compressor
                and isinstance(source, FileSource)
                and source.identities() == prepared.identities
            )
        except BaseException:
            prepared.discard()
            raise
        _release(prepared.reserved)
        if not usable:
            prepared.packaged.path.unlink(missing_ok=True)
            logger.info(
                "Dropped archive packaged while naming target=%s reason=source changed since",
                target_model,
            )
            return None
        return prepared.packaged

    def keep_only(self, target_models: Collection[str]) -> None:
        """Remove the archives no upload of ``target_models`` will take (their keys exist)."""
        with self._lock:
            dropped = [t for t in self._archives if t not in target_models]
            removed = [self._archives.pop(t) for t in dropped]
        for prepared in removed:
            prepared.discard()

    def close(self) -> None:
        """Remove every archive not taken, and their directory."""
        self.keep_only(())
        with self._lock:
            directory, self._directory = self._directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

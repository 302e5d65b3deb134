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

The gzip stream deflates only the blocks of about 1 MiB where deflating pays and stores
the rest (:mod:`mme_operator.artifacts.gzip_stream`): weights go at close to the speed
of reading them, text shrinks a little more than it did. Deflating is ISA-L level 2,
with zlib level 1 as the fallback when ``isal`` cannot be imported. The tar stream inside is the
one earlier versions wrote, byte for byte: only how it is compressed changed, so an
archive extracts to the same files whichever version made it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import secrets
import shutil
import tarfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from mme_operator.artifacts.errors import (
    ArchiveConfigError,
    SourceChangedError,
)
from mme_operator.artifacts.gzip_stream import (
    ISAL_AVAILABLE,
    Chunk,
    Compressor,
    GzipBlockWriter,
)
from mme_operator.artifacts.naming import _check_model_name, check_weights_filename
from mme_operator.artifacts.repository import ArchivePlan, plan_archive
from mme_operator.artifacts.sources import EntryType, ModelSource, SourceContent, SourceEntry

__all__ = [
    "COMPRESS_LEVELS",
    "ISAL_AVAILABLE",
    "Compressor",
    "PackagedArchive",
    "package_content",
    "package_model",
    "read_served_config",
]

DEFAULT_COMPRESSOR: Compressor = "isal" if ISAL_AVAILABLE else "zlib"
COMPRESS_LEVELS: dict[Compressor, int] = {"isal": 2, "zlib": 1}
"""Deflate level of the blocks that are deflated. ISA-L level 2 compresses text about 1%
better than the level 1 earlier versions used for the whole stream, at the same speed;
zlib, the fallback, is kept fast."""
FILE_MODE = 0o644
DIR_MODE = 0o755
_COPY_BUFFER = 1024 * 1024
SERVED_CONFIG_HEAD_BYTES = 1024 * 1024
"""How much of an archive's start :func:`read_served_config` is given: the served
directory's config.pbtxt (the archive's second member) lies well within it."""
_IOV_MAX = 1024

WrittenCallback = Callable[[int, int], None]
"""Called as the archive grows: (descriptor of the file being written, bytes of it final)."""


@dataclasses.dataclass(frozen=True)
class PackagedArchive:
    """A packaged archive on local disk."""

    path: Path
    sha256: str
    size: int
    config_changes: tuple[str, ...] = ()
    """What the spec overrode or added in the source's own config.pbtxt."""


class _FileSink:
    """Writes the gzip stream's chunks to the archive file, and says how far it got."""

    def __init__(self, fd: int, on_written: WrittenCallback | None) -> None:
        self.fd = fd
        self.on_written = on_written
        self.written = 0

    def __call__(self, chunks: Sequence[Chunk]) -> None:
        pending = list(chunks)
        while pending:
            done = os.writev(self.fd, pending[:_IOV_MAX])
            self.written += done
            while pending and done >= len(pending[0]):
                done -= len(pending.pop(0))
            if done:
                pending[0] = memoryview(pending[0])[done:]
        if self.on_written is not None:
            self.on_written(self.fd, self.written)


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
    on_written: WrittenCallback | None = None,
) -> PackagedArchive:
    """Package one model into ``dest`` (a deterministic ``.tar.gz``) and return its sha256.

    Temporary downloads go to a scratch directory next to ``dest`` and are removed
    afterwards; ``dest`` appears only when the archive is complete. ``on_written`` is
    told, as the archive grows, how many of its bytes are final (an upload can send them
    while the rest is packaged).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _scratch_beside(dest) as scratch:
        return package_content(
            name,
            config_pbtxt,
            source.open_content(scratch),
            weights_filename,
            dest,
            uri=source.uri,
            compressor=compressor,
            on_written=on_written,
        )


@contextlib.contextmanager
def _scratch_beside(dest: Path) -> Iterator[Path]:
    """A scratch directory next to ``dest`` for a source's downloads, made only when one
    downloads (``sources.base.temp_path`` makes it) and removed afterwards: a local
    source is packaged without a directory made and removed for nothing."""
    scratch = dest.parent / f"mme-pkg-{secrets.token_hex(8)}"
    try:
        yield scratch
    finally:
        if os.path.lexists(scratch):
            shutil.rmtree(scratch, ignore_errors=True)


def package_content(
    name: str,
    config_pbtxt: str,
    content: contextlib.AbstractContextManager[SourceContent],
    weights_filename: str,
    dest: Path,
    *,
    uri: str,
    compressor: Compressor | None = None,
    on_written: WrittenCallback | None = None,
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
            with open(partial, "w+b", buffering=0) as raw:  # readable: an upload reads it
                writer = GzipBlockWriter(
                    _FileSink(raw.fileno(), on_written),
                    compressor=compressor,
                    level=COMPRESS_LEVELS[compressor],
                )
                try:
                    _write_tar(writer, name, plan, uri)
                except BaseException:
                    writer.abort()
                    raise
                writer.close()
            os.replace(partial, dest)
            complete = True
    except BaseException:
        if complete:  # the source refused what was read when it was left
            dest.unlink(missing_ok=True)
        raise
    finally:
        partial.unlink(missing_ok=True)
    return PackagedArchive(
        path=dest, sha256=writer.sha256, size=writer.size, config_changes=plan.changes
    )


def _write_tar(out: GzipBlockWriter, name: str, plan: ArchivePlan, uri: str) -> None:
    with tarfile.TarFile(
        fileobj=out,  # type: ignore[arg-type]  # write-only: tarfile reads nothing in "w" mode
        mode="w",
        format=tarfile.PAX_FORMAT,
        encoding="utf-8",
    ) as tar:
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
        placed = {e.path: p for p, e in plan.layout}
        for path, entry in plan.layout:
            _add_parents(tar, path, directories)
            _add_entry(tar, path, entry, placed, uri)


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


def read_served_config(stream: BinaryIO, what: str) -> str:
    """The served model's ``config.pbtxt`` from the start of an archive this module wrote.

    :func:`_write_tar` writes the served directory first and its config.pbtxt right after
    it, so the first two members are enough: ``stream`` may be just the archive's first
    bytes (a ranged GET), inflated as far as those members and no further.
    """
    try:
        with tarfile.open(fileobj=stream, mode="r|gz") as tar:
            directory, config = tar.next(), tar.next()
            if (
                directory is None
                or not directory.isdir()
                or config is None
                or not config.isfile()
                or config.name != f"{directory.name}/config.pbtxt"
            ):
                raise ArchiveConfigError(
                    f"{what} does not start with a model directory and its config.pbtxt"
                )
            handle = tar.extractfile(config)
            assert handle is not None  # a regular file
            return handle.read().decode("utf-8")
    except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as exc:
        raise ArchiveConfigError(
            f"cannot read config.pbtxt from the first bytes of {what}: {exc}"
        ) from exc

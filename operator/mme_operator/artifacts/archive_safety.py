"""What archives are refused: the safety rules for ``.tar.gz`` model sources.

A model archive is extracted by SageMaker on the serving instance, so anything that
could land outside the model directory, or fill a disk, is refused before a byte is
packaged. One forward pass over the archive (:func:`scan_archive`) checks every member:

* **Paths** are relative and never climb out (no ``/abs``, no ``C:``, no ``..``), each
  path appears once, and no member sits "inside" a file or a link.
* **Types**: regular files, directories, symbolic links and hard links; devices, fifos
  and anything else are refused.
* **Links are resolved as a filesystem would**, component by component, following links
  to links (at most :data:`MAX_LINK_HOPS`), never as text: ``s -> ../../..`` followed by
  ``model.py -> a/b/c/s/../../etc/passwd`` reads as harmless text but climbs out once
  ``s`` is followed, and is refused. A link (symbolic or hard, chained or not) must end
  at a regular file of the archive; links to directories, to nothing or outside are
  refused. Accepted links reach the packager as *hard links to the file they resolve
  to*, placed after every file: the archive we upload never holds a symbolic link, so
  no extractor's handling of links (GNU tar, Python's tarfile, SageMaker's) has to be
  trusted. Links to files are resolved rather than refused because real model trees
  hold them (aliases such as ``model.onnx -> model-v3.onnx``).
* **Size**: at most :data:`MAX_ARCHIVE_MEMBERS` members; the regular files together at
  most the source size limit (``MME_MAX_SOURCE_BYTES``); and, against decompression
  bombs, at most ``MME_MAX_EXPANSION_RATIO`` times the compressed size (archives that
  expand to less than :data:`RATIO_FREE_BYTES` are exempt: they cannot hurt). The
  decompressed stream itself is counted too: between two members it may only hold the
  declared data and a few KiB of headers, so an oversized pax header cannot get past.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mme_operator.artifacts.errors import (
    InvalidSourceError,
    SourceTooLargeError,
    UnsafeArchiveError,
)
from mme_operator.artifacts.sources.base import EntryType, check_size
from mme_operator.settings import get_settings

try:  # ISA-L decompresses gzip several times faster than zlib; zlib is the fallback.
    from isal import igzip as _gzip_reader
except ImportError:  # pragma: no cover - isal is a dependency, the fallback is a safety net
    import gzip as _gzip_reader  # type: ignore[no-redef]

MAX_ARCHIVE_MEMBERS = 100_000
MAX_LINK_HOPS = 40  # Linux's own limit on symlinks followed in one lookup
RATIO_FREE_BYTES = 64 * 1024**2
_HEADER_ALLOWANCE = 8192  # tar and pax headers + padding per member, beside the content
_STREAM_SLACK = 64 * 1024  # what tarfile and gzip buffer ahead of the member being read


@dataclasses.dataclass(frozen=True)
class ArchiveLimits:
    """How large an archive may expand: total bytes, and bytes per compressed byte."""

    max_bytes: int
    max_expansion_ratio: float

    def allowed_expansion(self, compressed_size: int) -> int:
        """The most content bytes an archive of ``compressed_size`` bytes may hold."""
        by_ratio = max(int(compressed_size * self.max_expansion_ratio), RATIO_FREE_BYTES)
        return min(self.max_bytes, by_ratio)


def archive_limits(max_bytes: int, max_expansion_ratio: float | None = None) -> ArchiveLimits:
    """The limits an archive source is held to (the ratio defaults to the settings')."""
    if max_expansion_ratio is None:
        max_expansion_ratio = get_settings().max_expansion_ratio
    return ArchiveLimits(max_bytes=max_bytes, max_expansion_ratio=max_expansion_ratio)


@dataclasses.dataclass(frozen=True)
class ArchiveMember:
    """A member of an archive that passed the rules.

    Regular files come first, in archive order (``index`` is their position in the
    stream); links follow, each a hard link whose ``linkname`` is the regular file it
    resolves to.
    """

    index: int
    path: str
    size: int
    type: EntryType
    linkname: str = ""
    data: bytes | None = None
    """The bytes of a small ``config.pbtxt``, read during the scan: packaging reads model
    configs before the files they describe, and a ``.tar.gz`` is read forward only."""


CONFIG_MEMBER = "config.pbtxt"
MAX_CONFIG_MEMBER_BYTES = 1024 * 1024


def normalize_member_path(name: str, uri: str) -> str:
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


class _CountingReader:
    """Counts decompressed bytes and stops at ``limit``: tar headers may lie, this cannot."""

    def __init__(self, limit: int, uri: str) -> None:
        self.raw: BinaryIO | None = None
        self.limit = limit
        self.uri = uri
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        assert self.raw is not None
        data = self.raw.read(n)
        self.count += len(data)
        if self.count > self.limit:
            raise SourceTooLargeError(
                f"archive {self.uri} holds more data than its members declare (an oversized "
                "header?); rebuild it with plain tar"
            )
        return data


@contextlib.contextmanager
def open_tar_stream(
    path: Path, uri: str, counter: _CountingReader | None = None
) -> Iterator[tarfile.TarFile]:
    """The archive at ``path`` as a forward-only tar stream, read through ``counter``
    when given."""
    with contextlib.ExitStack() as stack:
        try:
            raw = stack.enter_context(_gzip_reader.open(path, "rb"))  # type: ignore[no-untyped-call]
            if counter is not None:
                counter.raw, raw = raw, counter
            tf = stack.enter_context(tarfile.open(fileobj=raw, mode="r|"))
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InvalidSourceError(f"source {uri} is not a valid .tar.gz archive: {exc}") from exc
        yield tf


def iter_tar(tf: tarfile.TarFile, uri: str) -> Iterator[tarfile.TarInfo]:
    """The members of a tar stream; a broken stream is an :class:`InvalidSourceError`."""
    while True:
        try:
            info = tf.next()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InvalidSourceError(f"source {uri} is not a valid .tar.gz archive: {exc}") from exc
        if info is None:
            return
        yield info


@dataclasses.dataclass
class _Tree:
    """What the scan saw, for resolving links once every member is known."""

    uri: str
    files: dict[str, int] = dataclasses.field(default_factory=dict)  # path -> size
    order: list[tuple[int, str]] = dataclasses.field(default_factory=list)  # (index, path)
    symlinks: dict[str, str] = dataclasses.field(default_factory=dict)  # path -> target
    hardlinks: dict[str, str] = dataclasses.field(default_factory=dict)  # path -> member
    directories: set[str] = dataclasses.field(default_factory=set)
    links: list[str] = dataclasses.field(default_factory=list)  # in archive order

    def add(self, path: str) -> None:
        if path in self.files or path in self.symlinks or path in self.hardlinks:
            raise UnsafeArchiveError(
                f"archive {self.uri} holds {path!r} twice; a later copy would replace the "
                "first on extraction, so rebuild it with each path once"
            )

    def is_directory(self, path: str) -> bool:
        return path == "" or path in self.directories

    def resolve(self, path: str, what: str) -> str:
        """``path`` with every symbolic link followed, as a filesystem lookup does."""
        remaining = path.split("/")
        current: list[str] = []
        hops = 0
        while remaining:
            part = remaining.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not current:
                    raise UnsafeArchiveError(
                        f"archive {self.uri}: {what} points outside the model directory once "
                        "its links are followed; replace the link with the file itself"
                    )
                current.pop()
                continue
            candidate = "/".join([*current, part])
            target = self.symlinks.get(candidate)
            if target is None:
                current.append(part)
                continue
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise UnsafeArchiveError(
                    f"archive {self.uri}: {what} follows more than {MAX_LINK_HOPS} links "
                    "(a loop?); replace the link with the file itself"
                )
            if target.startswith("/"):
                raise UnsafeArchiveError(
                    f"archive {self.uri}: {what} leads to the absolute link {candidate!r} -> "
                    f"{target!r}; replace the link with the file itself"
                )
            remaining = target.split("/") + remaining
        return "/".join(current)

    def final_file(self, path: str, what: str) -> str:
        """The regular file a link ends at, through chains of symbolic and hard links."""
        hops = 0
        resolved = self.resolve(path, what)
        while resolved in self.hardlinks:
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise UnsafeArchiveError(f"archive {self.uri}: {what} is a loop of hard links")
            resolved = self.resolve(self.hardlinks[resolved], what)
        if resolved in self.files:
            return resolved
        kind = "a directory" if self.is_directory(resolved) else "nothing in the archive"
        raise UnsafeArchiveError(
            f"archive {self.uri}: {what} resolves to {kind} ({resolved or '.'!r}); a link may "
            "only point to a file of the model; replace it with the file itself"
        )


def scan_archive(path: Path, uri: str, limits: ArchiveLimits) -> list[ArchiveMember]:
    """Check every member of the ``.tar.gz`` at ``path`` against the rules above."""
    allowed = limits.allowed_expansion(path.stat().st_size)
    tree = _Tree(uri)
    total = 0
    configs: dict[str, bytes] = {}
    # Until the next member is known, the stream may only hold the rest of this one's
    # declared data and the next headers: a pax header cannot smuggle in a gigabyte.
    counter = _CountingReader(_HEADER_ALLOWANCE + _STREAM_SLACK, uri)
    with open_tar_stream(path, uri, counter) as tf:
        for index, info in enumerate(iter_tar(tf, uri)):
            data = -(-max(info.size, 0) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
            counter.limit = counter.count + data + _HEADER_ALLOWANCE + _STREAM_SLACK
            if index >= MAX_ARCHIVE_MEMBERS:
                raise InvalidSourceError(
                    f"archive {uri} has more than {MAX_ARCHIVE_MEMBERS} members"
                )
            rel = normalize_member_path(info.name, uri)
            if not rel:
                continue
            parents = rel.split("/")[:-1]
            tree.directories.update("/".join(parents[: i + 1]) for i in range(len(parents)))
            if info.isdir():
                tree.directories.add(rel)
                continue
            tree.add(rel)
            if info.ischr() or info.isblk() or info.isfifo():
                raise UnsafeArchiveError(
                    f"archive {uri} holds a device or fifo {info.name!r}; "
                    "a model archive may only hold files, directories and links to its files"
                )
            if info.issym():
                tree.symlinks[rel] = info.linkname
                tree.links.append(rel)
            elif info.islnk():
                tree.hardlinks[rel] = normalize_member_path(info.linkname, uri)
                tree.links.append(rel)
            elif info.isreg():
                total += info.size
                check_size(uri, total, limits.max_bytes)
                if total > allowed:
                    _too_expanded(uri, path.stat().st_size, total, limits)
                tree.files[rel] = info.size
                tree.order.append((index, rel))
                if rel.rsplit("/", 1)[-1] == CONFIG_MEMBER and info.size <= MAX_CONFIG_MEMBER_BYTES:
                    handle = tf.extractfile(info)
                    if handle is not None:
                        configs[rel] = handle.read()
            else:
                raise UnsafeArchiveError(
                    f"archive {uri} holds {info.name!r} of unsupported type {info.type!r}"
                )
    for directory in sorted(tree.directories):
        if directory in tree.files or directory in tree.symlinks or directory in tree.hardlinks:
            raise UnsafeArchiveError(
                f"archive {uri} holds members inside {directory!r}, which is not a directory; "
                "rebuild it without links standing in for directories"
            )
    members = [
        ArchiveMember(i, rel, tree.files[rel], EntryType.FILE, data=configs.get(rel))
        for i, rel in tree.order
    ]
    for rel in tree.links:
        target = tree.final_file(rel, f"link {rel!r}")
        members.append(ArchiveMember(-1, rel, 0, EntryType.HARDLINK, target))
    return members


def _too_expanded(uri: str, compressed: int, total: int, limits: ArchiveLimits) -> None:
    raise SourceTooLargeError(
        f"archive {uri} expands from {compressed} bytes to at least {total} bytes, more than "
        f"{limits.max_expansion_ratio:g} times its compressed size (a decompression bomb?); "
        "rebuild it, or raise MME_MAX_EXPANSION_RATIO"
    )

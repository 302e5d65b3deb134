"""What archives are refused: the safety rules for ``.tar.gz`` model sources.

A model archive is extracted by SageMaker on the serving instance, so anything that
could land outside the model directory, or fill the disk, is refused before a byte is
packaged. One forward pass over the archive (:func:`scan_archive`) checks every member:

* paths are relative and never climb out (no ``/abs``, no ``C:``, no ``..``);
* members are regular files, directories, symbolic links or hard links; devices,
  fifos and anything else are refused;
* a symbolic link must stay inside the archive root; a hard link must repeat an
  earlier regular file of the archive;
* at most :data:`MAX_ARCHIVE_MEMBERS` members, and the regular files together at most
  the configured source size limit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import posixpath
import tarfile
from collections.abc import Iterator
from pathlib import Path

from mme_operator.artifacts.errors import InvalidSourceError, UnsafeArchiveError
from mme_operator.artifacts.sources.base import EntryType, check_size

try:  # ISA-L decompresses gzip several times faster than zlib; zlib is the fallback.
    from isal import igzip as _gzip_reader
except ImportError:  # pragma: no cover - isal is a dependency, the fallback is a safety net
    import gzip as _gzip_reader  # type: ignore[no-redef]

MAX_ARCHIVE_MEMBERS = 100_000


@dataclasses.dataclass(frozen=True)
class ArchiveMember:
    """A member of an archive that passed the rules, in archive order."""

    index: int
    path: str
    size: int
    type: EntryType
    linkname: str = ""


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


@contextlib.contextmanager
def open_tar_stream(path: Path, uri: str) -> Iterator[tarfile.TarFile]:
    """The archive at ``path`` as a forward-only tar stream."""
    with contextlib.ExitStack() as stack:
        try:
            raw = stack.enter_context(_gzip_reader.open(path, "rb"))  # type: ignore[no-untyped-call]
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


def scan_archive(path: Path, uri: str, max_bytes: int) -> list[ArchiveMember]:
    """Check every member of the ``.tar.gz`` at ``path``; keep regular files and links."""
    members: list[ArchiveMember] = []
    regular: set[str] = set()
    total = 0
    with open_tar_stream(path, uri) as tf:
        for index, info in enumerate(iter_tar(tf, uri)):
            if index >= MAX_ARCHIVE_MEMBERS:
                raise InvalidSourceError(
                    f"archive {uri} has more than {MAX_ARCHIVE_MEMBERS} members"
                )
            rel = normalize_member_path(info.name, uri)
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
                members.append(ArchiveMember(index, rel, 0, EntryType.SYMLINK, target))
            elif info.islnk():
                target = normalize_member_path(info.linkname, uri)
                if target not in regular:
                    raise UnsafeArchiveError(
                        f"archive {uri} holds a hard link {info.name!r} -> {info.linkname!r} "
                        "to no earlier file of the archive; replace it with the file itself"
                    )
                members.append(ArchiveMember(index, rel, 0, EntryType.HARDLINK, target))
            elif info.isreg():
                total += info.size
                check_size(uri, total, max_bytes)
                members.append(ArchiveMember(index, rel, info.size, EntryType.FILE))
                regular.add(rel)
            else:
                raise UnsafeArchiveError(
                    f"archive {uri} holds {info.name!r} of unsupported type {info.type!r}"
                )
    return members

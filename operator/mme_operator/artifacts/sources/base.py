"""The interface every model source implements, and the small helpers they share.

A source is a snapshot: ``fingerprint()`` pins the identity the archive's name is derived
from, and ``open_content()`` yields entries that the packager streams one at a time;
content that no longer matches the pinned identity raises :class:`SourceChangedError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from mme_operator.artifacts.errors import SourceTooLargeError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
COPY_CHUNK = 1024 * 1024

S3ClientFactory = Callable[[str], "S3Client"]
"""Returns the S3 client to read one bucket with (the argument is the bucket name).

The caller picks region and endpoint per bucket; the artifacts layer never creates
clients of its own, so credentials follow the normal boto3 chain of the caller.
"""


class EntryType(enum.Enum):
    """Kind of a source entry. Symbolic links never reach the packager: file sources read
    what a link resolves to, and archives turn links into hard links to the file they
    resolve to (see :mod:`mme_operator.artifacts.archive_safety`)."""

    FILE = "file"
    HARDLINK = "hardlink"


@dataclasses.dataclass(frozen=True)
class SourceEntry:
    """One entry of a source's content.

    ``path`` is a relative POSIX path inside the source (for a single-file source, the
    file's own name). ``open`` returns a context manager over a binary stream of exactly
    ``size`` bytes; entries must be opened in list order, each at most once (a ``.tar.gz``
    source is read as one forward stream). A hard link carries ``linkname`` instead: the
    relative path of the regular file of the same source that it repeats.
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

    def size_bytes(self) -> int | None:
        """Bytes of the weights as stored, without downloading; None where the scheme cannot tell.

        What sizing estimates GPU memory from (S3 ContentLength, a file's size, an https
        Content-Length); a compressed archive counts as its compressed size.
        """
        ...


def is_archive_name(name: str) -> bool:
    """Whether a file name marks an existing model archive (``.tar.gz`` / ``.tgz``)."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def check_size(uri: str, size: int, max_bytes: int) -> None:
    """Refuse a source larger than ``max_bytes``."""
    if size > max_bytes:
        raise SourceTooLargeError(
            f"source {uri} is {size} bytes, more than the limit of {max_bytes} bytes; "
            "use a smaller model or raise MME_MAX_SOURCE_BYTES"
        )


def temp_path(workdir: Path, suffix: str = "") -> Path:
    """A new empty file in ``workdir`` for a download."""
    workdir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=workdir, prefix="mme-src-", suffix=suffix)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def open_local(path: Path) -> Iterator[BinaryIO]:
    """``open(path, "rb")`` as the context manager a :class:`SourceEntry` returns."""
    with open(path, "rb") as f:
        yield f

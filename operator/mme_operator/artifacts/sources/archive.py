"""A ``.tar.gz`` source (from any scheme) read as a tree, after the safety rules passed."""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mme_operator.artifacts.archive_safety import (
    ArchiveLimits,
    iter_tar,
    open_tar_stream,
    scan_archive,
)
from mme_operator.artifacts.errors import InvalidSourceError
from mme_operator.artifacts.sources.base import EntryType, SourceContent, SourceEntry


@contextlib.contextmanager
def _open_bytes(data: bytes) -> Iterator[BinaryIO]:
    # A config.pbtxt read during the scan: opened in any order, any number of times.
    yield io.BytesIO(data)


@contextlib.contextmanager
def archive_content(path: Path, uri: str, limits: ArchiveLimits) -> Iterator[SourceContent]:
    """A ``.tar.gz`` as a tree, read in a second forward pass (archive order is kept)."""
    members = scan_archive(path, uri, limits)
    with open_tar_stream(path, uri) as tf:
        stream = iter_tar(tf, uri)
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
                open=(
                    None
                    if m.type is not EntryType.FILE
                    else functools.partial(open_member, m.index)
                    if m.data is None
                    else functools.partial(_open_bytes, m.data)
                ),
                type=m.type,
                linkname=m.linkname,
            )
            for m in members
        ]
        yield SourceContent(single_file=False, entries=entries)

"""``file:///path``: a file or directory on a volume mounted into the operator.

Only paths inside an allowed root (``MME_FILE_ROOTS``) are read, so the operator's own
files (its service-account token) never end up in a user's bucket. Symbolic links in a
directory are followed as the filesystem resolves them and must stay inside the source.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import stat
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from mme_operator.artifacts.archive_safety import archive_limits
from mme_operator.artifacts.errors import (
    InvalidSourceError,
    SourceAccessError,
    SourceChangedError,
    SourceNotFoundError,
    UnsafeArchiveError,
)
from mme_operator.artifacts.sources.archive import archive_content
from mme_operator.artifacts.sources.base import (
    SourceContent,
    SourceEntry,
    check_size,
    is_archive_name,
)
from mme_operator.artifacts.sources.file_hashes import (
    FileHashes,
    Identity,
    file_hashes,
    identity_of,
    open_hashing,
    open_verified,
)


def file_path(uri: str, roots: Sequence[str | Path]) -> Path:
    """The real path a ``file://`` URI names, if it lies under one of ``roots``."""
    parsed = urllib.parse.urlsplit(uri)
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


FileIdentities = tuple[tuple[str, Identity], ...]
"""(relative path, identity) of every file of a source, sorted by path."""


class FileSource:
    """A file or directory on a volume mounted into the operator (``file:///path``)."""

    def __init__(
        self,
        uri: str,
        path: Path,
        *,
        max_bytes: int,
        max_expansion_ratio: float | None = None,
        hashes: FileHashes | None = None,
    ) -> None:
        self._uri = uri
        self.path = path
        self.max_bytes = max_bytes
        self.limits = archive_limits(max_bytes, max_expansion_ratio)
        self.hashes = hashes or file_hashes(None)
        self._fingerprint: str | None = None
        self._digests: dict[Path, str] = {}  # per file, as named by the fingerprint
        self._identities: dict[Path, Identity] = {}  # what each digest was taken of
        self.named_identities: FileIdentities = ()
        """Set by :meth:`open_content_to_name`: each file's identity as it was named."""

    def _sha256(self, path: Path) -> str:
        identity, digest = self.hashes.identified_sha256(path)
        self._remember(path, identity, digest)
        return digest

    def _remember(self, path: Path, identity: Identity, digest: str) -> None:
        self._digests[path] = digest
        self._identities[path] = identity

    def _open(self, path: Path, rel: str) -> contextlib.AbstractContextManager[BinaryIO]:
        crc = self.hashes.crc32(self._identities[path])  # taken with the digest, if it was
        return open_verified(path, self._digests[path], f"source {self._uri}: {rel}", crc)

    def _open_hashing(self, path: Path, rel: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return open_hashing(
            path,
            self.hashes,
            f"source {self._uri}: {rel}",
            functools.partial(self._remember, path),
        )

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
        check_size(self._uri, sum(size for _, _, size in tree), self.max_bytes)
        return tree

    def _files(self) -> tuple[list[tuple[str, Path, int]], bool]:
        """(relative path, real path, size) of its files, and whether it is a directory."""
        st = self._stat()
        if stat.S_ISDIR(st.st_mode):
            return self._tree(), True
        if not stat.S_ISREG(st.st_mode):
            raise InvalidSourceError(f"source {self._uri}: not a regular file or directory")
        check_size(self._uri, st.st_size, self.max_bytes)
        return [(self.path.name, self.path, st.st_size)], False

    def size_bytes(self) -> int | None:
        """The file's size, or the sum over the directory's files."""
        st = self._stat()
        if stat.S_ISDIR(st.st_mode):
            return sum(size for _, _, size in self._tree())
        return st.st_size

    @staticmethod
    def _fingerprint_of(
        files: list[tuple[str, Path, int]], tree: bool, digest_of: Callable[[Path], str]
    ) -> str:
        if not tree:
            ((_, real, _),) = files
            return f"file sha256={digest_of(real)}"
        outer = hashlib.sha256()
        for rel, real, _size in files:
            name = rel.encode("utf-8")
            outer.update(f"{len(name)}:".encode() + name)
            outer.update(bytes.fromhex(digest_of(real)))
        return f"file-tree sha256={outer.hexdigest()}"

    def fingerprint(self) -> str:
        """sha256 of the content (a directory: of its sorted relative paths and contents).

        Mtimes are useless as identity on volumes that are copied around, so the content
        itself is the identity; each file's digest is remembered across restarts
        (:mod:`.file_hashes`), so only a new or changed file is read to name it.
        """
        if self._fingerprint is None:
            self._fingerprint = self._fingerprint_of(*self._files(), self._sha256)
        return self._fingerprint

    def needs_reading_to_name(self) -> bool:
        """Whether naming it reads a file (one not remembered); always False for an archive.

        Such a source is better packaged while it is named (:meth:`open_content_to_name`):
        its bytes are then read once, not once to name it and once more to package it.
        """
        if self._fingerprint is not None:
            return False
        files, tree = self._files()
        if not tree and is_archive_name(self.path.name):
            return False
        return not all(self.hashes.remembers(real) for _, real, _ in files)

    def identities(self) -> FileIdentities:
        """Each file's identity now, from a fresh walk (stats only, no read)."""
        files, _ = self._files()
        return tuple((rel, identity_of(real, os.stat(real))) for rel, real, _ in files)

    @contextlib.contextmanager
    def open_content_to_name(self) -> Iterator[SourceContent]:
        """The content of a source not named yet, for packaging it while it is named.

        Each file is hashed as the packager reads it; once the packager is through,
        :meth:`fingerprint` follows from those digests with no further read (a file the
        packager leaves out, such as the source's own ``config.pbtxt``, is hashed alone),
        so the archive holds exactly the bytes its name is made of, and
        :attr:`named_identities` says which versions of the files those were. Not for a
        ``.tar.gz`` source, nor for one named already.
        """
        if self._fingerprint is not None:
            raise RuntimeError(f"source {self._uri} is named already")
        files, tree = self._files()
        if not tree and is_archive_name(self.path.name):
            raise ValueError(f"source {self._uri} is an archive; name it with fingerprint()")
        entries = [
            SourceEntry(path=rel, size=size, open=functools.partial(self._open_hashing, real, rel))
            for rel, real, size in files
        ]
        yield SourceContent(single_file=not tree, entries=entries)
        self._fingerprint = self._fingerprint_of(
            files,
            tree,
            lambda real: self._digests[real] if real in self._digests else self._sha256(real),
        )
        self.named_identities = tuple((rel, self._identities[real]) for rel, real, _ in files)

    @contextlib.contextmanager
    def open_content(self, workdir: Path) -> Iterator[SourceContent]:
        """The file or directory as it is on disk; nothing is copied.

        Each file is hashed as the packager reads it and must match the digest the
        fingerprint was made of, so the archive never holds bytes other than its name says.
        """
        self.fingerprint()
        st = self._stat()
        if stat.S_ISDIR(st.st_mode):
            tree = self._tree()
            if any(real not in self._digests for _, real, _ in tree):
                raise SourceChangedError(f"source {self._uri} changed since it was named; retrying")
            entries = [
                SourceEntry(path=rel, size=size, open=functools.partial(self._open, real, rel))
                for rel, real, size in tree
            ]
            yield SourceContent(single_file=False, entries=entries)
            return
        if not stat.S_ISREG(st.st_mode):
            raise InvalidSourceError(f"source {self._uri}: not a regular file or directory")
        check_size(self._uri, st.st_size, self.max_bytes)
        if is_archive_name(self.path.name):
            with archive_content(self.path, self._uri, self.limits) as content:
                yield content
            return
        entry = SourceEntry(
            path=self.path.name,
            size=st.st_size,
            open=functools.partial(self._open, self.path, self.path.name),
        )
        yield SourceContent(single_file=True, entries=[entry])

"""The sha256 of local model files, remembered across restarts of the operator.

A ``file://`` source is identified by its content (volumes are copied around, so mtimes
alone make a poor name), which costs a full read. A drift check or a restart must not
re-read gigabytes of unchanged weights, so each digest is remembered under the file's
identity: real path, inode, size, mtime and ctime (in nanoseconds). Any write changes
mtime and ctime (ctime cannot be set back by a user), a replaced file has a new inode, so
a changed file always misses and is hashed again.

The digests live in memory and, when ``MME_WORK_DIR`` is set (the chart sets it to its
``workDir`` volume), in ``<work dir>/file-sha256.jsonl``: one JSON object per line,
appended as files are hashed, read back at start, rewritten when it holds mostly
outdated lines. A line cut short by a crash is skipped. A restart of the container
(the emptyDir survives it) therefore reads no weights at all; a new pod reads each file
once.

Each line also keeps the file's CRC-32 (``crc32``), taken in the same read: packaging
checks what it reads against that instead of hashing the file with sha256 a second time
(the check is there for a file rewritten between naming and packaging, which any CRC
catches but by a 1 in 4 billion chance; a line without it, written by an earlier
version, is checked with sha256 as before).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, cast

from mme_operator.artifacts.errors import SourceChangedError

try:
    from isal.isal_zlib import crc32 as _crc32
except ImportError:  # pragma: no cover - isal is a dependency
    _crc32 = zlib.crc32

logger = logging.getLogger("mme_operator.artifacts")

CACHE_FILE_NAME = "file-sha256.jsonl"
_READ_BYTES = 1024 * 1024
MAX_ENTRIES = 100_000

Identity = tuple[str, int, int, int, int]
"""(real path, inode, size, mtime_ns, ctime_ns)."""


def identity_of(path: Path, st: os.stat_result) -> Identity:
    """What a file's digest is remembered under."""
    return (str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class FileHashes:
    """Remembered sha256 digests of local files (thread-safe)."""

    def __init__(self, cache_file: Path | None) -> None:
        self.cache_file = cache_file
        self._digests: OrderedDict[Identity, str] = OrderedDict()
        self._crcs: dict[Identity, int] = {}
        self._lock = threading.Lock()
        self._loaded = cache_file is None
        self._lines = 0

    def _load(self) -> None:
        """Read the cache file once (under the lock)."""
        self._loaded = True
        assert self.cache_file is not None
        try:
            text = self.cache_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            logger.warning("Ignored file digest cache path=%s error=%s", self.cache_file, exc)
            return
        for line in text.splitlines():
            self._lines += 1
            try:
                row = json.loads(line)
                key: Identity = (
                    str(row["path"]),
                    int(row["inode"]),
                    int(row["size"]),
                    int(row["mtime_ns"]),
                    int(row["ctime_ns"]),
                )
                digest = str(row["sha256"])
                crc = int(row["crc32"]) if "crc32" in row else None
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash, or written by hand
            self._digests[key] = digest
            self._digests.move_to_end(key)
            self._set_crc(key, crc)
        self._trim()

    def _trim(self) -> None:
        while len(self._digests) > MAX_ENTRIES:
            key, _ = self._digests.popitem(last=False)
            self._crcs.pop(key, None)

    def _set_crc(self, key: Identity, crc: int | None) -> None:
        if crc is None:
            self._crcs.pop(key, None)
        else:
            self._crcs[key] = crc

    def crc32(self, key: Identity) -> int | None:
        """The CRC-32 remembered with the digest of ``key``, if it was taken."""
        with self._lock:
            return self._crcs.get(key)

    def get(self, key: Identity) -> str | None:
        """The remembered digest of a file with this identity, if any."""
        with self._lock:
            if not self._loaded:
                self._load()
            digest = self._digests.get(key)
            if digest is not None:
                self._digests.move_to_end(key)
            return digest

    def put(self, key: Identity, digest: str, crc: int | None = None) -> None:
        """Remember ``digest`` (and ``crc``) for ``key``, written down with a cache file."""
        with self._lock:
            if not self._loaded:
                self._load()
            self._digests[key] = digest
            self._set_crc(key, crc)
            self._trim()
            if self.cache_file is None:
                return
            try:
                self._append(key, digest, crc)
            except OSError as exc:  # a full or read-only work dir costs re-reads, not a failure
                logger.warning(
                    "Could not write file digest cache path=%s error=%s", self.cache_file, exc
                )

    def _append(self, key: Identity, digest: str, crc: int | None) -> None:
        assert self.cache_file is not None
        if self._lines > 2 * len(self._digests) + 1000:
            self._rewrite()
            return
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.cache_file, "a", encoding="utf-8") as out:
            out.write(_line(key, digest, crc))
        self._lines += 1

    def _rewrite(self) -> None:
        assert self.cache_file is not None
        partial = self.cache_file.with_name(self.cache_file.name + ".part")
        with open(partial, "w", encoding="utf-8") as out:
            for key, digest in self._digests.items():
                out.write(_line(key, digest, self._crcs.get(key)))
        os.replace(partial, self.cache_file)
        self._lines = len(self._digests)

    def sha256(self, path: Path) -> str:
        """The sha256 of the file at ``path``: remembered, or read once and remembered."""
        return self.identified_sha256(path)[1]

    def identified_sha256(self, path: Path) -> tuple[Identity, str]:
        """The file's identity and the sha256 remembered under it (read once if not)."""
        st = os.stat(path)
        key = identity_of(path, st)
        digest = self.get(key)
        if digest is None:
            with open(path, "rb") as f:
                reader = HashingReader(f)
                while reader.read(_READ_BYTES):
                    pass
            digest = reader.digest.hexdigest()
            self.put(key, digest, reader.crc)
        return key, digest

    def remembers(self, path: Path) -> bool:
        """Whether the digest of the file at ``path``, as it is now, is known without a read."""
        with self._lock:
            if not self._loaded:
                self._load()
            return identity_of(path, os.stat(path)) in self._digests


def _line(key: Identity, digest: str, crc: int | None) -> str:
    path, inode, size, mtime_ns, ctime_ns = key
    row = {
        "path": path,
        "inode": inode,
        "size": size,
        "mtime_ns": mtime_ns,
        "ctime_ns": ctime_ns,
        "sha256": digest,
    }
    if crc is not None:
        row["crc32"] = crc
    return json.dumps(row, separators=(",", ":")) + "\n"


_shared: dict[Path | None, FileHashes] = {}
_shared_lock = threading.Lock()


def file_hashes(work_dir: str | Path | None) -> FileHashes:
    """The process-wide digests kept in ``work_dir`` (in memory only when it is None)."""
    cache_file = Path(work_dir) / CACHE_FILE_NAME if work_dir else None
    with _shared_lock:
        if cache_file not in _shared:
            _shared[cache_file] = FileHashes(cache_file)
        return _shared[cache_file]


class VerifyingReader:
    """Checks what the packager reads, and refuses content that is not what was named.

    The archive's name comes from the digest taken before packaging; a file rewritten in
    between (same size or not) would otherwise be packaged under the old name. The check
    is the CRC-32 taken with that digest where there is one (a fraction of sha256's cost),
    else the sha256 itself.
    """

    def __init__(self, raw: BinaryIO, expected: str, what: str, crc: int | None = None) -> None:
        self.raw = raw
        self.expected = expected
        self.expected_crc = crc
        self.what = what
        self.digest = hashlib.sha256() if crc is None else None
        self.crc = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if self.digest is None:
            self.crc = _crc32(data, self.crc)
        else:
            self.digest.update(data)
        return data

    def check(self) -> None:
        """Raise :class:`SourceChangedError` unless the bytes read are the ones named."""
        if self.digest is None:
            same = self.crc == self.expected_crc
        else:
            same = self.digest.hexdigest() == self.expected
        if not same:
            raise SourceChangedError(f"{self.what} changed while it was packaged; retrying")


class HashingReader:
    """Hashes (sha256 and CRC-32) and counts what is read of a file not named yet."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.crc = 0
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.digest.update(data)
        self.crc = _crc32(data, self.crc)
        self.size += len(data)
        return data


@contextlib.contextmanager
def open_hashing(
    path: Path, hashes: FileHashes, what: str, remember: Callable[[Identity, str], None]
) -> Iterator[BinaryIO]:
    """``path`` opened for the packager before it is named; its digest remembered once read.

    The digest goes under the identity taken before the file was opened, and only when the
    file still has it after the last byte was read (a file written meanwhile has a new
    mtime and ctime, a replaced one a new inode): otherwise :class:`SourceChangedError`.
    ``remember`` also gets (identity, digest).
    """
    before = identity_of(path, os.stat(path))
    with open(path, "rb") as f:
        reader = HashingReader(f)
        yield cast(BinaryIO, reader)
    if identity_of(path, os.stat(path)) != before or reader.size != before[2]:
        raise SourceChangedError(f"{what} changed while it was packaged; retrying")
    digest = reader.digest.hexdigest()
    hashes.put(before, digest, reader.crc)
    remember(before, digest)


@contextlib.contextmanager
def open_verified(
    path: Path, expected: str, what: str, crc: int | None = None
) -> Iterator[BinaryIO]:
    """``path`` opened for the packager, checked against ``expected`` (or ``crc``) once read."""
    with open(path, "rb") as f:
        reader = VerifyingReader(f, expected, what, crc)
        yield cast(BinaryIO, reader)
        reader.check()

"""A deterministic gzip stream that deflates only the blocks where deflating pays.

Weights barely compress (random-looking bytes gain nothing at ISA-L level 1, fp16 a few
percent) yet deflating them was most of the packaging time; configs, vocabularies and
code do compress (text to about a quarter). So the stream is cut into blocks of
:data:`BLOCK_BYTES` at fixed offsets, and each block is written either deflated or
*stored* (copied as it is, which gzip allows), whichever the block's own bytes call for.

The output is one ordinary gzip member (RFC 1952: mtime 0, no file name, CRC-32 and size
at the end) whose deflate stream (RFC 1951) is a run of non-final blocks closed by an
empty final stored block. A stored block is its bytes in sub-blocks of at most 65535
bytes; a deflated block is a raw deflate stream primed with the 32 KiB before it (what
the inflater's window holds then, however those bytes were written) and ended by a sync
flush, so the next block starts on a byte boundary. Stored and deflated blocks in one
stream are plain RFC 1951 (zlib itself writes stored blocks for incompressible input), so
every inflater reads it: gzip, zlib, Python's ``tarfile``, GNU tar (tested), and the
``tar``/zlib a SageMaker container extracts archives with.

The choice: four slices of 4 KiB spread over the block are deflated; where they shrink
to :data:`DEFLATE_PAYS` or less the block is deflated, and kept deflated only where the
whole block shrank that much too (a sample can mislead: a tar header before weights).
Everything the output depends on (block offsets, the sample, what each compressor is
given) is a function of the stream's bytes alone, never of how they were handed over or
of thread timing: the same input gives the same bytes.

A stream of one block (a config and small weights: most archives of a shared endpoint)
is encoded by the caller when it closes, with the same bytes as below, and no thread is
started for it. Longer streams spread the work over threads: the caller (the tar writer,
reading sources) fills blocks; a small pool chooses and encodes them and takes each
block's CRC-32 (compression, where chosen, runs on several cores); one thread takes the
encoded blocks in order, joins the CRC-32s and updates the archive's sha256; another
hands them to the sink (the file).
Queues between them hold ``depth`` blocks each, so memory stays a few MiB whatever the
input's size.
"""

from __future__ import annotations

import hashlib
import queue
import struct
import threading
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

try:
    from isal import isal_zlib as _isal_zlib

    ISAL_AVAILABLE = True
except ImportError:  # pragma: no cover - isal is a dependency; the fallback is a safety net
    ISAL_AVAILABLE = False

Compressor = Literal["isal", "zlib"]
Chunk = bytes | memoryview

STORED_MAX = 65535
"""The most bytes one stored deflate block holds."""
BLOCK_BYTES = 16 * STORED_MAX
"""Bytes of input per choice (about 1 MiB): a stored block is exactly 16 sub-blocks."""
WINDOW = 32 * 1024
SAMPLE_SLICES = 4
SAMPLE_SLICE_BYTES = 4096
DEFLATE_PAYS = 0.9
"""A block is deflated where it deflates to this fraction of its size or less: a saving
under 10% does not pay for deflating at a third of the speed of storing (or less)."""

GZIP_HEADER = bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF])
"""Magic, deflate, no flags (no name), mtime 0, no extra flags, OS unknown."""
_FINAL_EMPTY_STORED = bytes([1, 0, 0, 0xFF, 0xFF])


def _compressobj(compressor: Compressor, level: int, zdict: bytes) -> Any:
    module: Any = _isal_zlib if compressor == "isal" else zlib
    if compressor == "isal" and not ISAL_AVAILABLE:  # pragma: no cover
        raise RuntimeError("isal is not installed")
    if zdict:
        return module.compressobj(level, zlib.DEFLATED, -15, zdict=zdict)
    return module.compressobj(level, zlib.DEFLATED, -15)


def _deflated_size(data: bytes, compressor: Compressor, level: int) -> int:
    if compressor == "isal":
        return len(_isal_zlib.compress(data, level, -15))
    return len(zlib.compress(data, level, -15))


_crc32: Callable[[Chunk, int], int] = _isal_zlib.crc32 if ISAL_AVAILABLE else zlib.crc32
# Where the CRC-32 of blocks can be joined, each block's is taken by its encoder (in
# parallel) and joined in order; otherwise the ordered thread takes it of every block.
_crc32_combine: Callable[[int, int, int], int] | None = (
    _isal_zlib.crc32_combine if ISAL_AVAILABLE else None
)


def _gather(pieces: Sequence[Chunk], start: int, length: int) -> bytes:
    """``length`` bytes of the concatenated ``pieces`` from offset ``start``."""
    out = bytearray()
    offset = 0
    for piece in pieces:
        end = offset + len(piece)
        if end > start and offset < start + length:
            lo = max(start - offset, 0)
            hi = min(start + length - offset, len(piece))
            out += piece[lo:hi]
        offset = end
        if offset >= start + length:
            break
    return bytes(out)


def _sample(pieces: Sequence[Chunk], size: int) -> bytes:
    if size <= SAMPLE_SLICES * SAMPLE_SLICE_BYTES:
        return _gather(pieces, 0, size)
    step = size // SAMPLE_SLICES
    return b"".join(_gather(pieces, i * step, SAMPLE_SLICE_BYTES) for i in range(SAMPLE_SLICES))


def _stored(pieces: Sequence[Chunk], size: int) -> list[Chunk]:
    """``pieces`` as stored deflate sub-blocks: a 5-byte header, then up to 65535 bytes."""
    out: list[Chunk] = []
    left_in_block = 0
    left = size
    for piece in pieces:
        view = memoryview(piece)
        while view:
            if left_in_block == 0:
                left_in_block = min(STORED_MAX, left)
                out.append(struct.pack("<BHH", 0, left_in_block, left_in_block ^ 0xFFFF))
            take = view[:left_in_block]
            out.append(take)
            left_in_block -= len(take)
            left -= len(take)
            view = view[len(take) :]
    return out


def encode_block(
    pieces: Sequence[Chunk], window: bytes, compressor: Compressor, level: int
) -> list[Chunk]:
    """One block's deflate output: deflated where its sample says it pays, else stored.

    ``window`` is the (up to) 32 KiB of the stream just before the block.
    """
    size = sum(len(p) for p in pieces)
    sample = _sample(pieces, size)
    if _deflated_size(sample, compressor, level) <= DEFLATE_PAYS * len(sample):
        deflater = _compressobj(compressor, level, window)
        data = b"".join(pieces)
        deflated = deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH)
        stored_size = size + 5 * -(-size // STORED_MAX)
        if len(deflated) <= DEFLATE_PAYS * stored_size:  # a sample can mislead: check
            return [deflated]
    return _stored(pieces, size)


def _encode_job(
    pieces: Sequence[Chunk], window: bytes, compressor: Compressor, level: int
) -> tuple[int | None, list[Chunk]]:
    """A block's CRC-32 (where it can be joined to the stream's later) and encoding."""
    crc = None
    if _crc32_combine is not None:
        crc = 0
        for piece in pieces:
            crc = _crc32(piece, crc)
    return crc, encode_block(pieces, window, compressor, level)


class _Stage:
    """One thread doing ``work`` on items in the order they are put; ``None`` ends it.

    The first error of ``work`` is kept (later items are then skipped, so whoever puts
    them never waits for ever) and raised by the next :meth:`put`.
    """

    def __init__(self, name: str, work: Callable[[Any], None], depth: int) -> None:
        self.work = work
        self.error: BaseException | None = None
        self.skip = False
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.error is None and not self.skip:
                try:
                    self.work(item)
                except BaseException as exc:  # raised to the producer by put() / join()
                    self.error = exc

    def put(self, item: Any) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def join(self) -> None:
        """Wait until every item put so far is done (or skipped); end the thread."""
        self._queue.put(None)
        self._thread.join()


_END = object()


class GzipBlockWriter:
    """A write-only file object producing the gzip stream described in the module docstring.

    ``sink`` gets the output in order, a list of byte chunks at a time, on a thread of
    its own (a one-block stream's all at once, on the caller's thread at :meth:`close`); it
    must write them out before it returns. Data handed to :meth:`write` must not be
    changed afterwards (``bytes`` never are; anything else is copied). :meth:`close`
    finishes the stream and re-raises an error of the sink or of an encoder; :meth:`abort`
    stops it. After ``close``, :attr:`sha256` and :attr:`size` describe the whole output.
    """

    def __init__(
        self,
        sink: Callable[[Sequence[Chunk]], None],
        *,
        compressor: Compressor,
        level: int,
        workers: int = 2,
        depth: int = 2,
    ) -> None:
        self._compressor: Compressor = compressor
        self._level = level
        self._pieces: list[Chunk] = []
        self._filled = 0
        self._window = b""
        self._position = 0
        self._crc = 0
        self.digest = hashlib.sha256()
        self.size = 0
        self._closed = False
        self._sink_work = sink
        self._workers = workers
        self._depth = depth
        # Threads start with the first full block: a stream of one block (a config and small
        # weights, most archives of a shared endpoint) is encoded by the caller at close, as
        # the threads would have (the same bytes), without starting four threads for it.
        self._pool: ThreadPoolExecutor | None = None
        self._sink: _Stage | None = None
        self._hasher: _Stage | None = None

    def _start(self) -> tuple[ThreadPoolExecutor, _Stage]:
        """The encoders, the hasher and the sink threads (started once); the header sent."""
        if self._pool is None or self._hasher is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="mme-deflate")
            # Hashing and writing are separate threads: each takes a core's share of the work.
            self._sink = _Stage("mme-archive-sink", self._sink_work, self._depth)
            self._hasher = _Stage("mme-archive-hash", self._hash, self._depth)
            self._sink.put(self._hashed([GZIP_HEADER]))
        return self._pool, self._hasher

    @property
    def sha256(self) -> str:
        return self.digest.hexdigest()

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        """Uncompressed bytes written so far (what ``tarfile`` counts its offsets in)."""
        return self._position

    def flush(self) -> None:
        pass

    def _raise_error(self) -> None:
        for stage in (self._hasher, self._sink):
            if stage is not None and stage.error is not None:
                raise stage.error

    def write(self, data: Any) -> int:
        self._raise_error()
        chunk: Chunk = data if isinstance(data, bytes) else bytes(data)
        view = memoryview(chunk)
        written = len(view)
        while view:
            room = BLOCK_BYTES - self._filled
            piece = view[:room]
            self._pieces.append(piece)
            self._filled += len(piece)
            view = view[len(piece) :]
            if self._filled == BLOCK_BYTES:
                self._submit()
        self._position += written
        return written

    def _submit(self) -> None:
        pool, hasher = self._start()
        pieces, self._pieces, self._filled = self._pieces, [], 0
        future = pool.submit(_encode_job, pieces, self._window, self._compressor, self._level)
        size = sum(len(p) for p in pieces)
        tail = _gather(pieces, max(size - WINDOW, 0), min(size, WINDOW))
        self._window = (self._window + tail)[-WINDOW:]
        hasher.put((pieces, future))

    def _close_inline(self) -> None:
        """The whole stream at once, on the caller's thread: no block went to the threads."""
        pieces, self._pieces, self._filled = self._pieces, [], 0
        encoded = (
            encode_block(pieces, self._window, self._compressor, self._level) if pieces else []
        )
        for piece in pieces:
            self._crc = _crc32(piece, self._crc)
        trailer = struct.pack("<II", self._crc, self._position & 0xFFFFFFFF)
        self._sink_work(self._hashed([GZIP_HEADER, *encoded, _FINAL_EMPTY_STORED + trailer]))

    def _hashed(self, chunks: Sequence[Chunk]) -> Sequence[Chunk]:
        for chunk in chunks:
            self.digest.update(chunk)
            self.size += len(chunk)
        return chunks

    def _hash(self, item: Any) -> None:
        sink = self._sink
        assert sink is not None  # the hasher runs only once _start made both
        if item is _END:
            trailer = struct.pack("<II", self._crc, self._position & 0xFFFFFFFF)
            sink.put(self._hashed([_FINAL_EMPTY_STORED + trailer]))
            return
        pieces, future = item
        crc, encoded = future.result()
        if crc is not None and _crc32_combine is not None:
            self._crc = _crc32_combine(self._crc, crc, sum(len(p) for p in pieces))
        else:
            for piece in pieces:
                self._crc = _crc32(piece, self._crc)
        sink.put(self._hashed(encoded))

    def close(self) -> None:
        """Write the last block and the gzip trailer; wait until the sink has all of it."""
        if self._closed:
            return
        if self._hasher is None:
            self._closed = True
            self._close_inline()
            return
        try:
            self._raise_error()
            if self._filled:
                self._submit()
            self._hasher.put(_END)
        finally:
            self._finish()
        self._raise_error()

    def abort(self) -> None:
        """Stop without finishing the stream (after an error of the caller)."""
        if self._closed:
            return
        if self._hasher is not None and self._sink is not None:
            self._hasher.skip = self._sink.skip = True
        self._finish()

    def _finish(self) -> None:
        self._closed = True
        if self._hasher is None or self._sink is None or self._pool is None:
            return  # never started: nothing was sent
        self._hasher.join()
        self._sink.join()
        self._pool.shutdown(wait=True, cancel_futures=True)

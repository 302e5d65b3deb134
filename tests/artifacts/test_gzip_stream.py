"""The gzip stream of archives: stored and deflated blocks, the same bytes however written."""

from __future__ import annotations

import errno
import gzip
import hashlib
import itertools
import random
import subprocess
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from mme_operator.artifacts import open_source, package_model
from mme_operator.artifacts.gzip_stream import BLOCK_BYTES, Chunk, GzipBlockWriter

from tests.artifacts.conftest import mixed_model, text_bytes


def content(size: int, seed: int = 0) -> bytes:
    """Runs of random bytes, text and zeros, in about block-sized pieces."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        kind = rng.choice(["random", "text", "zeros"])
        run = rng.randrange(1, BLOCK_BYTES)
        if kind == "random":
            out += rng.randbytes(run)
        elif kind == "text":
            out += text_bytes(run, rng.randrange(1000))
        else:
            out += bytes(run)
    return bytes(out[:size])


def encode(data: bytes, cuts: Sequence[int] = (), **options: int) -> bytes:
    """``data`` through a writer, handed over in pieces cut at ``cuts``."""
    out: list[bytes] = []

    def sink(chunks: Sequence[Chunk]) -> None:
        out.extend(bytes(c) for c in chunks)

    writer = GzipBlockWriter(sink, compressor="isal", level=2, **options)
    edges = [0, *sorted(cuts), len(data)]
    for start, end in itertools.pairwise(edges):
        writer.write(data[start:end])
    writer.close()
    stream = b"".join(out)
    assert writer.size == len(stream)
    return stream


def test_the_same_bytes_come_out_however_they_are_written_and_packaged(tmp_path: Path) -> None:
    data = content(5 * BLOCK_BYTES + 4321, seed=1)
    reference = encode(data)
    rng = random.Random(2)
    for workers in (1, 2, 3):
        cuts = sorted(rng.sample(range(1, len(data)), 40))
        assert encode(data, cuts, workers=workers, depth=workers) == reference
    assert encode(data, range(1, 5000)) == reference  # 5000 one-byte writes first
    assert gzip.decompress(reference) == data
    # A whole model, packaged twice, as two reconcile passes would.
    src = mixed_model(tmp_path / "src")
    first, second = (
        package_model(
            "m",
            'name: "m"\n',
            open_source(src.as_uri(), file_roots=[tmp_path]),
            "model.onnx",
            tmp_path / f"{i}.tar.gz",
        )
        for i in range(2)
    )
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha256 == second.sha256


@pytest.mark.parametrize(
    "size",
    [0, 1, BLOCK_BYTES - 1, BLOCK_BYTES, BLOCK_BYTES + 1, 3 * BLOCK_BYTES + 12345],
)
def test_every_inflater_reads_streams_of_any_length(size: int, tmp_path: Path) -> None:
    data = content(size, seed=size)
    stream = encode(data)
    assert gzip.decompress(stream) == data
    inflater = zlib.decompressobj(31)
    assert inflater.decompress(stream) == data
    assert inflater.eof and not inflater.unused_data
    path = tmp_path / "s.gz"
    path.write_bytes(stream)
    assert (
        subprocess.run(["gzip", "-dc", str(path)], check=True, capture_output=True).stdout == data
    )


def test_incompressible_input_costs_five_bytes_per_64_kib(tmp_path: Path) -> None:
    data = random.Random(3).randbytes(8 * BLOCK_BYTES)
    stream = encode(data)
    assert len(stream) <= len(data) + 5 * (len(data) // 65535 + 1) + 18 + 5


def test_a_sink_that_fails_stops_the_writer_with_its_error() -> None:
    def full_disk(chunks: Sequence[Chunk]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    writer = GzipBlockWriter(full_disk, compressor="isal", level=2)
    with pytest.raises(OSError, match="No space left"):
        for _ in range(64):  # fails within a few blocks, never hangs
            writer.write(bytes(BLOCK_BYTES))
        writer.close()
    writer.abort()


@pytest.mark.parametrize("size", [0, 1, 4096, BLOCK_BYTES - 1])
def test_a_one_block_stream_is_encoded_on_the_callers_thread_into_the_same_bytes(
    size: int,
) -> None:
    data = content(size, seed=size + 7)
    out: list[bytes] = []
    threads: set[str] = set()

    def sink(chunks: Sequence[Chunk]) -> None:
        threads.add(threading.current_thread().name)
        threads.update(t.name for t in threading.enumerate() if t.name.startswith("mme-"))
        out.extend(bytes(c) for c in chunks)

    inline = GzipBlockWriter(sink, compressor="isal", level=2)
    for start in range(0, size, 1000):
        inline.write(data[start : start + 1000])
    inline.close()
    assert threads == {threading.current_thread().name}  # no encoder, hasher or sink thread
    stream = b"".join(out)
    assert gzip.decompress(stream) == data
    assert inline.sha256 == hashlib.sha256(stream).hexdigest() and inline.size == len(stream)

    out.clear()
    threaded = GzipBlockWriter(sink, compressor="isal", level=2)
    threaded._start()  # the threads a longer stream starts with its first full block
    threaded.write(data)
    threaded.close()
    assert b"".join(out) == stream


def test_a_sink_that_fails_on_a_one_block_stream_fails_its_close() -> None:
    def full_disk(chunks: Sequence[Chunk]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    writer = GzipBlockWriter(full_disk, compressor="isal", level=2)
    writer.write(b"config")
    with pytest.raises(OSError, match="No space left"):
        writer.close()

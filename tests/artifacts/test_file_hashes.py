"""Local weights are read once: their digests survive a restart, and packaging checks them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
from mme_operator.artifacts import SourceChangedError, open_source, package_model
from mme_operator.artifacts.sources.file_hashes import CACHE_FILE_NAME
from mme_operator.settings import Settings

WEIGHTS_MIB = 32

# A fresh interpreter is a restarted operator; /proc/self/io counts every byte it reads.
FINGERPRINT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mme_operator.artifacts import open_source
    from mme_operator.settings import Settings

    def read_bytes():
        io = Path("/proc/self/io").read_text().split()
        return int(io[io.index("rchar:") + 1])

    uri, root, work = sys.argv[1:]
    source = open_source(uri, settings=Settings(work_dir=work), file_roots=[root])
    before = read_bytes()
    fingerprint = source.fingerprint()
    print(read_bytes() - before, fingerprint)
    """
)


def fingerprint_in_a_new_process(src: Path, root: Path, work: Path) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-c", FINGERPRINT, src.as_uri(), str(root), str(work)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    read, fingerprint = result.stdout.split(" ", 1)
    return int(read), fingerprint.strip()


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux's /proc/self/io")
def test_a_restarted_operator_reads_no_weight_bytes(tmp_path: Path) -> None:
    root, work = tmp_path / "models", tmp_path / "work"
    src = root / "bert"
    (src / "1").mkdir(parents=True)
    (src / "1" / "model.onnx").write_bytes(os.urandom(WEIGHTS_MIB * 1024**2))
    (src / "vocab.txt").write_bytes(b"hello\n" * 1000)

    first_read, first = fingerprint_in_a_new_process(src, root, work)
    assert first_read >= WEIGHTS_MIB * 1024**2
    assert (work / CACHE_FILE_NAME).exists()

    again_read, again = fingerprint_in_a_new_process(src, root, work)
    assert again == first
    assert again_read < 64 * 1024, f"a restart read {again_read} bytes"

    # Rewritten with the same size and its mtime set back: the ctime still tells.
    weights = src / "1" / "model.onnx"
    st = weights.stat()
    weights.write_bytes(os.urandom(WEIGHTS_MIB * 1024**2))
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    changed_read, changed = fingerprint_in_a_new_process(src, root, work)
    assert changed != first
    assert changed_read >= WEIGHTS_MIB * 1024**2


def test_a_cache_line_cut_short_by_a_crash_is_skipped(tmp_path: Path) -> None:
    root, work = tmp_path / "models", tmp_path / "work"
    weights = root / "model.onnx"
    root.mkdir()
    weights.write_bytes(b"weights")
    work.mkdir()
    (work / CACHE_FILE_NAME).write_text('{"path": "/x", "inode": 1, "size"\n')
    settings = Settings(work_dir=str(work))
    fingerprint = open_source(weights.as_uri(), settings=settings, file_roots=[root]).fingerprint()
    lines = (work / CACHE_FILE_NAME).read_text().splitlines()
    assert json.loads(lines[-1])["path"] == str(weights)
    assert fingerprint.startswith("file sha256=")


def test_content_changed_after_it_was_named_is_not_packaged_under_that_name(
    tmp_path: Path,
) -> None:
    root = tmp_path / "models"
    weights = root / "model.onnx"
    root.mkdir()
    weights.write_bytes(b"A" * 4096)
    source = open_source(weights.as_uri(), file_roots=[root])
    source.fingerprint()  # the archive's name is made of this
    weights.write_bytes(b"B" * 4096)  # same size
    with pytest.raises(SourceChangedError, match="changed while it was packaged"):
        package_model("m", 'name: "m"', source, "model.onnx", tmp_path / "out.tar.gz")
    assert not (tmp_path / "out.tar.gz").exists()


def test_packaging_checks_the_crc32_kept_with_the_digest_and_old_lines_by_sha256(
    tmp_path: Path,
) -> None:
    root, work = tmp_path / "models", tmp_path / "work"
    weights = root / "model.onnx"
    root.mkdir()
    weights.write_bytes(os.urandom(3 * 1024**2))
    settings = Settings(work_dir=str(work))
    open_source(weights.as_uri(), settings=settings, file_roots=[root]).fingerprint()
    (line,) = (work / CACHE_FILE_NAME).read_text().splitlines()
    row = json.loads(line)
    # Taken in the same read as the sha256: packaging checks it instead of a second sha256.
    assert row["crc32"] == zlib.crc32(weights.read_bytes())

    # A line an earlier version wrote has no CRC: a changed file is still refused.
    del row["crc32"]
    earlier = tmp_path / "earlier-work"  # a new work dir: read afresh, as after a restart
    earlier.mkdir()
    (earlier / CACHE_FILE_NAME).write_text(json.dumps(row) + "\n")
    settings = Settings(work_dir=str(earlier))
    source = open_source(weights.as_uri(), settings=settings, file_roots=[root])
    source.fingerprint()  # from the line, no read
    weights.write_bytes(os.urandom(3 * 1024**2))
    with pytest.raises(SourceChangedError, match="changed while it was packaged"):
        package_model("m", 'name: "m"', source, "model.onnx", tmp_path / "out.tar.gz")

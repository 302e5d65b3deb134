"""Packaging: Triton layout, byte-identical archives, and refusal of unsafe inputs."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
from mme_operator.api import ModelSpec
from mme_operator.artifacts import (
    ArchiveConfigError,
    InvalidSourceError,
    ModelSource,
    UnsafeArchiveError,
    open_source,
    package_model,
)
from mme_operator.artifacts.packaging import read_served_config
from mme_operator.triton import default_model_filename, parse_model_config, render_model_config

from tests.artifacts.conftest import (
    make_tar,
    mixed_model,
    tar_device,
    tar_link,
    text_bytes,
    write_tree,
)

CONFIG = 'name: "bert"\nplatform: "onnxruntime_onnx"\n'


def file_source(path: Path, root: Path) -> ModelSource:
    return open_source(path.as_uri(), file_roots=[root])


def members(path: Path) -> list[tuple[str, str, int]]:
    """(name, kind, size) of every member, in archive order."""
    kinds = {
        tarfile.DIRTYPE: "dir",
        tarfile.REGTYPE: "file",
        tarfile.SYMTYPE: "symlink",
        tarfile.LNKTYPE: "hardlink",
    }
    with tarfile.open(path) as tar:
        return [(m.name, kinds.get(m.type, str(m.type)), m.size) for m in tar]


def read_member(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


def test_single_file_goes_to_version_1_under_the_weights_name(tmp_path: Path) -> None:
    weights = tmp_path / "src" / "exported.onnx"
    write_tree(tmp_path / "src", {"exported.onnx": b"onnx-bytes"})
    archive = package_model(
        "bert", CONFIG, file_source(weights, tmp_path), "model.onnx", tmp_path / "a.tar.gz"
    )
    assert members(archive.path) == [
        ("bert", "dir", 0),
        ("bert/config.pbtxt", "file", len(CONFIG)),
        ("bert/1", "dir", 0),
        ("bert/1/model.onnx", "file", 10),
    ]
    assert read_member(archive.path, "bert/config.pbtxt") == CONFIG.encode()
    assert archive.sha256 == hashlib.sha256(archive.path.read_bytes()).hexdigest()
    assert archive.size == archive.path.stat().st_size
    with tarfile.open(archive.path) as tar:
        for m in tar:
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
            assert m.mode == (0o755 if m.isdir() else 0o644)
    header = archive.path.read_bytes()[:10]
    assert header[3] == 0  # gzip FLG: no file name stored
    assert header[4:8] == b"\0\0\0\0"  # gzip MTIME 0


SOURCE_CONFIG = b'name: "old"\nbackend: "python"\nmax_batch_size: 4\n'


def test_directory_with_version_dirs_is_copied_and_its_config_merged(tmp_path: Path) -> None:
    # Was: the source's config.pbtxt replaced by the spec's (issue 18: now the base).
    src = write_tree(
        tmp_path / "src",
        {
            "config.pbtxt": SOURCE_CONFIG,
            "1/model.py": b"code",
            "2/model.py": b"v2",
            "labels.txt": b"x",
        },
    )
    archive = package_model(
        "echo", CONFIG, file_source(src, tmp_path), "model.py", tmp_path / "a.tar.gz"
    )
    names = [name for name, _, _ in members(archive.path)]
    assert names == [
        "echo",
        "echo/config.pbtxt",
        "echo/1",
        "echo/1/model.py",
        "echo/2",
        "echo/2/model.py",
        "echo/labels.txt",
    ]
    config = parse_model_config(read_member(archive.path, "echo/config.pbtxt").decode())
    assert (config.name, config.platform, config.backend, config.max_batch_size) == (
        "echo",
        "onnxruntime_onnx",
        "python",
        4,
    )


def test_directory_without_version_dirs_goes_under_version_1(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"model.py": b"code", "assets/vocab.txt": b"v"})
    archive = package_model(
        "echo", CONFIG, file_source(src, tmp_path), "model.py", tmp_path / "a.tar.gz"
    )
    files = [name for name, kind, _ in members(archive.path) if kind == "file"]
    assert files == ["echo/config.pbtxt", "echo/1/assets/vocab.txt", "echo/1/model.py"]


def test_existing_archive_rooted_at_its_model_dir_is_re_rooted(tmp_path: Path) -> None:
    src = make_tar(
        tmp_path / "old.tar.gz",
        [
            ("resnet/config.pbtxt", SOURCE_CONFIG),
            ("resnet/1/model.onnx", b"w"),
            ("resnet/3/model.onnx", b"w3"),
        ],
    )
    archive = package_model(
        "bert", CONFIG, file_source(src, tmp_path), "model.onnx", tmp_path / "a.tar.gz"
    )
    files = [name for name, kind, _ in members(archive.path) if kind == "file"]
    assert files == ["bert/config.pbtxt", "bert/1/model.onnx", "bert/3/model.onnx"]
    assert read_member(archive.path, "bert/3/model.onnx") == b"w3"


def test_same_inputs_give_byte_identical_archives_whatever_the_mtimes(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"1/model.onnx": os.urandom(300_000), "1/extra.bin": b"e"})
    first = package_model(
        "m", CONFIG, file_source(src, tmp_path), "model.onnx", tmp_path / "a.tar.gz"
    )
    for i, path in enumerate(sorted(src.rglob("*"))):
        os.utime(path, (1_000_000 + i, 2_000_000 + i))
    os.chmod(src / "1" / "extra.bin", 0o600)
    second = package_model(
        "m", CONFIG, file_source(src, tmp_path), "model.onnx", tmp_path / "b.tar.gz"
    )
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()
    changed = package_model(
        "m", CONFIG + "\n", file_source(src, tmp_path), "model.onnx", tmp_path / "c.tar.gz"
    )
    assert changed.sha256 != first.sha256


# Measured with the packaging before blocks were chosen (one ISA-L level 1 stream).
MIXED_SIZE_BEFORE = 3528780
MIXED_TAR_SHA256 = "b3463d66dd3db8f0711cdd685eb208003e1a61d3c6c684a81ba8b0cfb59ca796"
TEXT_SIZE_BEFORE = 3768425


def verbatim_share(data: bytes, archive: bytes, chunk: int = 4096) -> float:
    """Share of ``data``'s 4 KiB chunks found as they are in ``archive`` (stored, not deflated)."""
    chunks = [data[i : i + chunk] for i in range(0, len(data) - chunk + 1, chunk)]
    return sum(c in archive for c in chunks) / len(chunks)


def test_weights_are_stored_text_deflated_and_every_reader_opens_the_archive(
    tmp_path: Path,
) -> None:
    src = mixed_model(tmp_path / "src")
    archive = package_model(
        "m", CONFIG, file_source(src, tmp_path), "model.onnx", tmp_path / "m.tar.gz"
    )
    data = archive.path.read_bytes()
    weights = (src / "1" / "model.onnx").read_bytes()
    # The random 2 MiB went in as stored blocks; the text-like tables were deflated.
    assert verbatim_share(weights[: 2 * 1024**2], data) > 0.9
    assert verbatim_share(weights[4 * 1024**2 :], data) == 0
    assert archive.size < MIXED_SIZE_BEFORE  # and the whole shrinks at least as before
    # What extracts is byte for byte what earlier versions wrote: names need no new version.
    assert hashlib.sha256(gzip.decompress(data)).hexdigest() == MIXED_TAR_SHA256

    subprocess.run(["gzip", "-t", str(archive.path)], check=True)
    listed = subprocess.run(
        ["tar", "-tzf", str(archive.path)], check=True, capture_output=True, text=True
    ).stdout.split()
    assert listed == [
        name + "/" if kind == "dir" else name for name, kind, _ in members(archive.path)
    ]
    for tool in ("gnu-tar", "tarfile"):
        out = tmp_path / tool
        out.mkdir()
        if tool == "gnu-tar":
            subprocess.run(["tar", "-xzf", str(archive.path), "-C", str(out)], check=True)
        else:
            with tarfile.open(archive.path) as tar:
                tar.extractall(out, filter="data")
        assert (out / "m" / "config.pbtxt").read_text() == CONFIG
        for rel in ("1/model.onnx", "1/vocab.txt", "1/config.json"):
            assert (out / "m" / rel).read_bytes() == (src / rel).read_bytes(), (tool, rel)
        shutil.rmtree(out)


def test_compressible_input_shrinks_at_least_as_much_as_before(tmp_path: Path) -> None:
    vocab = write_tree(tmp_path / "src", {"vocab.bin": text_bytes(8 * 1024**2, 11)})
    archive = package_model(
        "m", CONFIG, file_source(vocab / "vocab.bin", tmp_path), "model.onnx", tmp_path / "t.gz"
    )
    assert archive.size <= TEXT_SIZE_BEFORE * 0.995, archive.size / TEXT_SIZE_BEFORE
    assert read_member(archive.path, "m/1/model.onnx") == (vocab / "vocab.bin").read_bytes()


def test_zlib_fallback_also_gives_a_valid_deterministic_archive(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"model.onnx": b"w" * 1000})
    a = package_model(
        "m",
        CONFIG,
        file_source(src / "model.onnx", tmp_path),
        "model.onnx",
        tmp_path / "a.tar.gz",
        compressor="zlib",
    )
    b = package_model(
        "m",
        CONFIG,
        file_source(src / "model.onnx", tmp_path),
        "model.onnx",
        tmp_path / "b.tar.gz",
        compressor="zlib",
    )
    assert a.sha256 == b.sha256
    assert read_member(a.path, "m/1/model.onnx") == b"w" * 1000


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param([("../evil.sh", b"x")], id="dot-dot"),
        pytest.param([("1/../../evil.sh", b"x")], id="dot-dot-nested"),
        pytest.param([("/etc/cron.d/evil", b"x")], id="absolute"),
        pytest.param(
            [("1/model.onnx", b"x"), tar_link("1/link", "../../../etc/passwd")], id="symlink-out"
        ),
        pytest.param(
            [("1/model.onnx", b"x"), tar_link("1/link", "/etc/passwd")], id="symlink-absolute"
        ),
        pytest.param(
            [("1/model.onnx", b"x"), tar_link("1/h", "/etc/passwd", tarfile.LNKTYPE)],
            id="hardlink-out",
        ),
        pytest.param([("1/model.onnx", b"x"), tar_device("1/null")], id="device"),
        pytest.param([("1/model.onnx", b"x"), tar_link("1/fifo", "", tarfile.FIFOTYPE)], id="fifo"),
    ],
)
def test_archives_that_escape_the_model_directory_are_refused(
    tmp_path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]]
) -> None:
    src = make_tar(tmp_path / "evil.tar.gz", entries)
    with pytest.raises(UnsafeArchiveError):
        package_model("m", CONFIG, file_source(src, tmp_path), "model.onnx", tmp_path / "a.tar.gz")
    assert not (tmp_path / "a.tar.gz").exists()


def test_symlink_escaping_after_re_rooting_is_refused(tmp_path: Path) -> None:
    # Inside the archive, but outside the model directory once 'resnet/' is stripped.
    src = make_tar(
        tmp_path / "t.tar.gz",
        [
            ("resnet/1/model.onnx", b"w"),
            tar_link("resnet/1/x", "../../other.txt"),
        ],
    )
    with pytest.raises(UnsafeArchiveError):
        package_model("m", CONFIG, file_source(src, tmp_path), "model.onnx", tmp_path / "a.tar.gz")


def test_symlink_to_a_file_inside_the_model_becomes_a_hard_link(tmp_path: Path) -> None:
    src = make_tar(
        tmp_path / "t.tar.gz", [tar_link("1/alias.onnx", "model.onnx"), ("1/model.onnx", b"w")]
    )
    archive = package_model(
        "m", CONFIG, file_source(src, tmp_path), "model.onnx", tmp_path / "a.tar.gz"
    )
    listed = members(archive.path)
    assert all(kind != "symlink" for _, kind, _ in listed)
    # After the file it repeats, so an extractor can link it.
    assert listed[-1] == ("m/1/alias.onnx", "hardlink", 0)
    with tarfile.open(archive.path) as tar:
        assert tar.getmember("m/1/alias.onnx").linkname == "m/1/model.onnx"


def test_directory_symlink_pointing_outside_is_refused(tmp_path: Path) -> None:
    outside = write_tree(tmp_path / "secrets", {"token": b"secret"})
    src = write_tree(tmp_path / "src", {"1/model.onnx": b"w"})
    (src / "1" / "token").symlink_to(outside / "token")
    with pytest.raises(UnsafeArchiveError, match="outside"):
        package_model("m", CONFIG, file_source(src, tmp_path), "model.onnx", tmp_path / "a.tar.gz")


def test_file_sources_outside_the_allowed_roots_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidSourceError, match="disabled"):
        open_source("file:///var/run/secrets/kubernetes.io/serviceaccount/token")
    with pytest.raises(InvalidSourceError, match="not under an allowed root"):
        open_source("file:///etc/passwd", file_roots=[tmp_path])


def test_truncated_archive_is_reported_as_invalid(tmp_path: Path) -> None:
    src = tmp_path / "t.tar.gz"
    src.write_bytes(b"not a gzip file at all")
    with pytest.raises(InvalidSourceError, match=r"not a valid \.tar\.gz"):
        package_model("m", CONFIG, file_source(src, tmp_path), "model.onnx", tmp_path / "a.tar.gz")


PACK_1GB = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    from mme_operator.artifacts import open_source, package_model
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    archive = package_model(
        "big", "name: 'big'", open_source(src.as_uri(), file_roots=[src.parent]), "model.onnx", out
    )
    status = Path("/proc/self/status").read_text()
    hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    print(archive.size, int(hwm.split()[1]) * 1024)
    """
)


@pytest.mark.slow
def test_a_1gb_model_packs_without_holding_it_in_memory(tmp_path: Path) -> None:
    src = tmp_path / "model.onnx"
    with open(src, "wb") as f:
        f.truncate(1024**3)  # sparse: no disk used, reads as zeros
    out = tmp_path / "big.tar.gz"
    result = subprocess.run(
        [sys.executable, "-c", PACK_1GB, str(src), str(out)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    size, peak_rss = map(int, result.stdout.split())
    assert size == out.stat().st_size
    assert peak_rss < 200 * 1024**2, f"peak RSS {peak_rss / 1024**2:.0f} MiB"
    with tarfile.open(out, "r|gz") as tar:
        # Stop at the weights' header: skipping 1 GiB through tarfile's stream is slow.
        weights = next(m for m in tar if m.name == "big/1/model.onnx")
    assert weights.size == 1024**3


def test_the_served_config_is_read_from_the_first_bytes_of_an_ensemble_archive(
    tmp_path: Path,
) -> None:
    models = Path(__file__).resolve().parents[1] / "models"
    model = ModelSpec.model_validate(
        {"name": "pipeline", "source": (models / "add_sub_ensemble").as_uri()}
    )
    archive = package_model(
        "pipeline",
        render_model_config(model),
        open_source(model.source, file_roots=["/"]),
        default_model_filename(model),
        tmp_path / "pipeline.tar.gz",
    )
    assert [m[0] for m in members(archive.path)][:2] == ["pipeline", "pipeline/config.pbtxt"]
    head = archive.path.read_bytes()[:4096]  # what a ranged GET of the start brings
    served = parse_model_config(read_served_config(io.BytesIO(head), "pipeline.tar.gz"))
    assert (served.name, served.platform) == ("pipeline", "ensemble")
    assert [t.name for t in served.input] == ["INPUT0", "INPUT1"]


def test_an_archive_not_starting_with_a_model_directory_has_no_served_config(
    tmp_path: Path,
) -> None:
    path = make_tar(tmp_path / "odd.tar.gz", [("weights.bin", b"w"), ("m/config.pbtxt", b"")])
    with pytest.raises(ArchiveConfigError, match="does not start with a model directory"):
        read_served_config(io.BytesIO(path.read_bytes()), "odd.tar.gz")

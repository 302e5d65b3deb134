"""What archives are refused: links resolved as a filesystem would, and decompression bombs."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest
from mme_operator.artifacts import (
    SourceTooLargeError,
    UnsafeArchiveError,
    open_source,
    package_model,
)
from mme_operator.settings import Settings

from tests.artifacts.conftest import make_tar, tar_dir, tar_link, write_tree

CONFIG = 'name: "m"\nplatform: "onnxruntime_onnx"\n'
DEEP = "a/b/c/d"


def package(src: Path, tmp_path: Path, **limits: float) -> Path:
    source = open_source(src.as_uri(), file_roots=[src.parent], **limits)  # type: ignore[arg-type]
    out = tmp_path / "out.tar.gz"
    package_model("m", CONFIG, source, "model.onnx", out)
    return out


def deep_dirs() -> list[tarfile.TarInfo]:
    parts = DEEP.split("/")
    return [tar_dir("/".join(parts[: i + 1])) for i in range(len(parts))]


# ------------------------------------------------------------------ links


def test_a_link_through_a_link_that_climbs_out_is_refused(tmp_path: Path) -> None:
    # As text, 'a/b/c/d/s/../../etc/passwd' stays inside; a filesystem follows s to the
    # root first, and the two '..' then climb out of it.
    src = make_tar(
        tmp_path / "chain.tar.gz",
        [
            ("1/model.onnx", b"w"),
            tar_link("1/model.py", f"../{DEEP}/s/../../etc/passwd"),
            *deep_dirs(),
            tar_link(f"{DEEP}/s", "../../../.."),
        ],
    )
    with pytest.raises(UnsafeArchiveError, match=r"'1/model.py' points outside"):
        package(src, tmp_path)
    assert not (tmp_path / "out.tar.gz").exists()


def test_writing_through_a_chained_directory_link_is_refused(tmp_path: Path) -> None:
    # t -> a/b/c/d/s/.. is the root's parent; GNU tar would write t/evil.sh beside the model.
    src = make_tar(
        tmp_path / "through.tar.gz",
        [
            *deep_dirs(),
            tar_link(f"{DEEP}/s", "../../../.."),
            tar_link("t", f"{DEEP}/s/.."),
            ("t/evil.sh", b"rm -rf /"),
            ("1/model.onnx", b"w"),
        ],
    )
    with pytest.raises(UnsafeArchiveError, match="'t', which is not a directory"):
        package(src, tmp_path)


@pytest.mark.parametrize(
    ("entries", "complaint"),
    [
        pytest.param([tar_link("1/d", "..")], "resolves to a directory", id="to-directory"),
        pytest.param([tar_link("1/x", "nothing.onnx")], "nothing in the archive", id="dangling"),
        pytest.param([tar_link("1/x", "y"), tar_link("1/y", "x")], "more than 40 links", id="loop"),
        pytest.param(
            [tar_link("1/s", "/"), tar_link("1/x", "s/etc/passwd")],
            "absolute link",
            id="through-absolute",
        ),
        pytest.param(
            [tar_link("1/s", "../.."), tar_link("1/h", "1/s/etc/passwd", tarfile.LNKTYPE)],
            "outside",
            id="hardlink-through-symlink-out",
        ),
        pytest.param(
            [tar_link("1/h1", "1/h2", tarfile.LNKTYPE), tar_link("1/h2", "1/h1", tarfile.LNKTYPE)],
            "loop of hard links",
            id="hardlink-loop",
        ),
        pytest.param([("1/model.onnx", b"evil")], "twice", id="duplicate-path"),
    ],
)
def test_links_that_do_not_end_at_a_file_of_the_model_are_refused(
    tmp_path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]], complaint: str
) -> None:
    src = make_tar(tmp_path / "t.tar.gz", [("1/model.onnx", b"w"), *entries])
    with pytest.raises(UnsafeArchiveError, match=complaint):
        package(src, tmp_path)


def test_a_hard_link_chain_and_a_symlink_chain_to_a_file_become_hard_links_to_it(
    tmp_path: Path,
) -> None:
    src = make_tar(
        tmp_path / "links.tar.gz",
        [
            tar_link("1/alias2.onnx", "alias.onnx"),  # a symlink to a symlink, before both
            tar_link("1/alias.onnx", "../1/model.onnx"),
            ("1/model.onnx", b"weights"),
            tar_link("1/h1", "1/model.onnx", tarfile.LNKTYPE),
            tar_link("1/h2", "1/h1", tarfile.LNKTYPE),  # a hard link to a hard link
            tar_link("1/h3", "1/alias2.onnx", tarfile.LNKTYPE),  # a hard link to a symlink
        ],
    )
    out = package(src, tmp_path)
    with tarfile.open(out) as tar:
        links = {m.name: m.linkname for m in tar if m.islnk() or m.issym()}
        assert all(not m.issym() for m in tar)
    assert links == {
        f"m/1/{n}": "m/1/model.onnx" for n in ("alias2.onnx", "alias.onnx", "h1", "h2", "h3")
    }
    gnu_tar = shutil.which("tar")
    if gnu_tar is None:  # pragma: no cover - GNU tar is on every image the tests run on
        pytest.skip("no tar binary")
    dest = tmp_path / "extracted"
    dest.mkdir()
    subprocess.run([gnu_tar, "-xzf", str(out), "-C", str(dest)], check=True)
    extracted = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert len(extracted) == 7  # config.pbtxt, model.onnx and five links to it
    assert (dest / "m/1/h3").read_bytes() == b"weights"
    assert not (tmp_path / "etc").exists()


def test_a_chained_symlink_in_a_file_source_is_resolved_by_the_filesystem(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_bytes(b"root:x:0:0")
    root = tmp_path / "models"
    src = write_tree(root / "src", {"1/model.onnx": b"w"})
    (src / DEEP).mkdir(parents=True)
    (src / DEEP / "s").symlink_to("../../../..")
    (src / "1" / "model.py").symlink_to(f"../{DEEP}/s/../../etc/passwd")
    source = open_source(src.as_uri(), file_roots=[root])
    with pytest.raises(UnsafeArchiveError, match=r"outside|loop"):
        package_model("m", CONFIG, source, "model.onnx", tmp_path / "out.tar.gz")


# ------------------------------------------------------------------ decompression bombs


def gzip_of_zeros(path: Path, header: tarfile.TarInfo, zero_mib: int) -> Path:
    """A .tar.gz of one member of ``zero_mib`` MiB of zeros, built in milliseconds: gzip
    allows concatenated members, so one compressed MiB of zeros is written many times."""

    def member(data: bytes) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()

    block = member(b"\0" * 1024**2)
    with open(path, "wb") as out:
        out.write(member(header.tobuf(format=tarfile.GNU_FORMAT)))
        for _ in range(zero_mib):
            out.write(block)
        out.write(member(b"\0" * 1024))  # end-of-archive blocks
    return path


def test_a_1mb_archive_expanding_to_1gib_is_refused_by_default(tmp_path: Path) -> None:
    header = tarfile.TarInfo("1/model.onnx")
    header.size = 1024**3
    src = gzip_of_zeros(tmp_path / "bomb.tar.gz", header, 1024)
    assert src.stat().st_size < 1.1 * 1024**2
    assert header.size <= Settings().max_source_bytes  # under the size limit: the ratio refuses
    with pytest.raises(SourceTooLargeError, match="times its compressed size"):
        package(src, tmp_path)


def test_a_header_that_lies_cannot_get_past_the_stream_count(tmp_path: Path) -> None:
    # A pax header claiming 200 MiB: tarfile would read all of it into memory.
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = 200 * 1024**2
    src = gzip_of_zeros(tmp_path / "pax.tar.gz", header, 200)
    with pytest.raises(SourceTooLargeError, match="more data than its members declare"):
        package(src, tmp_path)


def test_small_archives_and_ordinary_ratios_pass(tmp_path: Path) -> None:
    header = tarfile.TarInfo("1/model.onnx")
    header.size = 32 * 1024**2  # 1000x, but 32 MiB cannot hurt anyone
    out = package(gzip_of_zeros(tmp_path / "small.tar.gz", header, 32), tmp_path)
    assert out.exists()
    header.size = 96 * 1024**2
    big = gzip_of_zeros(tmp_path / "big.tar.gz", header, 96)
    with pytest.raises(SourceTooLargeError):
        package(big, tmp_path)
    assert package(big, tmp_path, max_expansion_ratio=2000).exists()

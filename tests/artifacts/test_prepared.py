"""Local weights packaged while they are named: the same archive, under the same name.

Against moto's S3 server: the archive a first upload takes from naming is byte for byte
the one packaging the named source gives, a file written between naming and upload is
refused as before, and no archive stays on disk, whatever became of the upload.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mme_operator.artifacts import (
    ArtifactStore,
    DesiredArchive,
    PreparedArchives,
    SourceChangedError,
    desired_archive,
    open_source,
    package_model,
)
from mme_operator.artifacts.prepared import held_bytes
from mme_operator.artifacts.sources import FileSource
from mme_operator.artifacts.sources.file_hashes import FileHashes, identity_of
from mme_operator.settings import Settings

from tests.artifacts.conftest import write_tree

PREFIX = "ml/prepared/"
OWNER = "3f0c8c1e-0000-4000-8000-00000000f11e"
CONFIG = 'name: "m"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n'

TREES: dict[str, dict[str, bytes]] = {
    "single-file": {"model.onnx": os.urandom(300_000)},
    "tree-with-its-own-config": {
        "bert/config.pbtxt": b'name: "theirs"\n',
        "bert/1/model.onnx": os.urandom(200_000),
        "bert/1/assets/vocab.txt": b"hello\n" * 100,
        "bert/2/model.onnx": b"",
    },
}


def source_path(root: Path, files: dict[str, bytes]) -> Path:
    write_tree(root, files)
    return root / "model.onnx" if list(files) == ["model.onnx"] else root


def rewrite(path: Path, content: bytes) -> None:
    """Write ``path`` again, late enough that its ctime shows it (clocks are coarse)."""
    ctime = path.stat().st_ctime_ns
    while path.stat().st_ctime_ns == ctime:
        time.sleep(0.001)
        path.write_bytes(content)


def fresh_source(path: Path, root: Path) -> FileSource:
    """A source that remembers nothing, as in a process that never read it."""
    source = open_source(path.as_uri(), file_roots=[root])
    assert isinstance(source, FileSource)
    source.hashes = FileHashes(None)
    return source


def named(prepared: PreparedArchives, source: FileSource) -> DesiredArchive:
    fingerprint = prepared.name(
        source, model_name="m", config_pbtxt=CONFIG, weights_filename="model.onnx"
    )
    return desired_archive(
        prefix=PREFIX,
        model_name="m",
        config_pbtxt=CONFIG,
        source_uri=source.uri,
        fingerprint=fingerprint,
        weights_filename="model.onnx",
    )


@pytest.fixture
def store(s3: Any, bucket: str, settings: Settings) -> ArtifactStore:
    return ArtifactStore(s3, bucket, PREFIX, OWNER, settings=settings)


@pytest.mark.parametrize("files", TREES.values(), ids=TREES.keys())
def test_the_archive_made_while_naming_is_the_one_packaging_gives(
    tmp_path: Path, files: dict[str, bytes]
) -> None:
    root = tmp_path / "volume"
    path = source_path(root, files)
    with PreparedArchives(tmp_path / "work") as prepared:
        desired = named(prepared, fresh_source(path, root))
        ready = prepared.take(desired.target_model, fresh_source(path, root), prepared.compressor)
        assert ready is not None

        # The old path: name the source by hashing it, then package it.
        plain = fresh_source(path, root)
        assert plain.fingerprint() == desired.fingerprint
        again = package_model("m", CONFIG, plain, "model.onnx", tmp_path / "again.tar.gz")
        assert ready.path.read_bytes() == again.path.read_bytes()
        assert (ready.sha256, ready.size) == (again.sha256, again.size)


def test_a_source_named_once_is_remembered_and_not_packaged_again(tmp_path: Path) -> None:
    root = tmp_path / "volume"
    path = source_path(root, TREES["single-file"])
    hashes = FileHashes(None)
    with PreparedArchives(tmp_path / "work") as prepared:
        first = fresh_source(path, root)
        first.hashes = hashes
        desired = named(prepared, first)
        second = fresh_source(path, root)
        second.hashes = hashes
        assert not second.needs_reading_to_name()
        assert named(prepared, second) == desired
        assert len(list((tmp_path / "work").rglob("*.tar.gz"))) == 1


def test_the_upload_takes_the_prepared_archive_and_leaves_nothing(
    s3: Any,
    bucket: str,
    store: ArtifactStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root, work = tmp_path / "volume", tmp_path / "work"
    path = source_path(root, TREES["tree-with-its-own-config"])
    with PreparedArchives(work) as prepared:
        desired = named(prepared, fresh_source(path, root))
        with caplog.at_level(logging.INFO, logger="mme_operator.artifacts"):
            stored = store.upload(
                desired, fresh_source(path, root), work, seen_missing=True, prepared=prepared
            )
        assert "packaged_while_named=True" in caplog.text
        assert list(work.rglob("*.tar.gz")) == []
    body = s3.get_object(Bucket=bucket, Key=desired.key)["Body"].read()
    plain = fresh_source(path, root)
    plain.fingerprint()
    again = package_model("m", CONFIG, plain, "model.onnx", tmp_path / "again.tar.gz")
    assert body == again.path.read_bytes()
    assert stored.sha256 == again.sha256
    assert list(work.iterdir()) == []


def test_weights_rewritten_between_naming_and_upload_are_refused(
    s3: Any, bucket: str, store: ArtifactStore, tmp_path: Path
) -> None:
    root, work = tmp_path / "volume", tmp_path / "work"
    path = source_path(root, {"model.onnx": b"A" * 65536})
    with PreparedArchives(work) as prepared:
        desired = named(prepared, fresh_source(path, root))
        rewrite(path, b"B" * 65536)  # same size, after the name was made
        with pytest.raises(SourceChangedError, match="changed since its archive name"):
            store.upload(
                desired, fresh_source(path, root), work, seen_missing=True, prepared=prepared
            )
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert list(work.iterdir()) == []


def test_weights_written_while_they_are_read_to_be_named_are_not_packaged(
    tmp_path: Path,
) -> None:
    root = tmp_path / "volume"
    path = source_path(root, {"model.onnx": b"A" * 65536})
    source = fresh_source(path, root)
    before = identity_of(path, path.stat())
    with (
        pytest.raises(SourceChangedError, match="changed while it was packaged"),
        source.open_content_to_name() as content,
    ):
        (entry,) = content.entries
        assert entry.open is not None
        with entry.open() as f:
            f.read(1000)
            rewrite(path, b"B" * 65536)
            f.read()
    assert source.hashes.get(before) is None  # no digest of what was half read


def test_a_failed_upload_leaves_no_archive_in_the_work_dir(
    s3: Any, store: ArtifactStore, tmp_path: Path
) -> None:
    root, work = tmp_path / "volume", tmp_path / "work"
    path = source_path(root, TREES["single-file"])
    missing = ArtifactStore(s3, "no-such-bucket-prepared", PREFIX, OWNER, settings=Settings())
    with PreparedArchives(work) as prepared:
        desired = named(prepared, fresh_source(path, root))
        with pytest.raises(ClientError, match="NoSuchBucket"):
            missing.upload(
                desired, fresh_source(path, root), work, seen_missing=True, prepared=prepared
            )
        assert list(work.rglob("*.tar.gz")) == []
    assert list(work.iterdir()) == []


def test_archives_no_upload_took_are_removed_with_the_pass(tmp_path: Path) -> None:
    root, work = tmp_path / "volume", tmp_path / "work"
    path = source_path(root, TREES["single-file"])
    with PreparedArchives(work) as prepared:
        named(prepared, fresh_source(path, root))
        assert len(list(work.rglob("*.tar.gz"))) == 1
    assert list(work.iterdir()) == []


def test_archive_sources_are_named_as_before_without_packaging(tmp_path: Path) -> None:
    root = tmp_path / "volume"
    write_tree(root / "src", {"1/model.onnx": b"weights"})
    archive = package_model(
        "m",
        CONFIG,
        fresh_source(root / "src", root),
        "model.onnx",
        root / "m.tar.gz",
    )
    source = fresh_source(archive.path, root)
    assert not source.needs_reading_to_name()
    with PreparedArchives(tmp_path / "work") as prepared:
        named(prepared, source)
        assert not (tmp_path / "work").exists() or list((tmp_path / "work").rglob("*.gz")) == []


def test_what_prepared_archives_hold_at_once_is_limited(tmp_path: Path) -> None:
    root = tmp_path / "volume"
    first = source_path(root / "a", {"model.onnx": os.urandom(100_000)})
    second = source_path(root / "b", {"model.onnx": os.urandom(100_000)})
    held = held_bytes()
    with PreparedArchives(tmp_path / "work", limit_bytes=1_200_000) as prepared:
        named(prepared, fresh_source(first, root / "a"))
        assert len(list((tmp_path / "work").rglob("*.tar.gz"))) == 1
        assert held_bytes() > held
        # No room left under the limit: named by hashing alone, as before.
        plain = fresh_source(second, root / "b")
        desired = named(prepared, plain)
        assert desired.fingerprint == fresh_source(second, root / "b").fingerprint()
        assert len(list((tmp_path / "work").rglob("*.tar.gz"))) == 1
    assert held_bytes() == held

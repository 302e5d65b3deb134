"""The archive store against moto's S3 server: idempotent sync, ownership, SSE-KMS."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
from mme_operator.artifacts import (
    ArtifactConflictError,
    ArtifactStore,
    DesiredArchive,
    ModelSource,
    NotOwnedError,
    desired_archive,
    open_source,
)
from mme_operator.settings import Settings

from tests.artifacts.conftest import write_tree

PREFIX = "ml/small-llms/"
OWNER = "3f0c8c1e-0000-4000-8000-000000000001"
OTHER_OWNER = "9a9a9a9a-0000-4000-8000-000000000002"


def config(name: str, batch: int = 8) -> str:
    return f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: {batch}\n'


class Models:
    """Model weights on a volume, as sources and desired archives."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        self.settings = settings

    def source(self, uri: str) -> ModelSource:
        return open_source(uri, settings=self.settings, file_roots=[self.root])

    def desired(self, name: str, weights: bytes, batch: int = 8) -> DesiredArchive:
        path = write_tree(self.root, {f"{name}.onnx": weights}) / f"{name}.onnx"
        uri = path.as_uri()
        return desired_archive(
            prefix=PREFIX,
            model_name=name,
            config_pbtxt=config(name, batch),
            source_uri=uri,
            fingerprint=self.source(uri).fingerprint(),
            weights_filename="model.onnx",
        )


@pytest.fixture
def models(tmp_path: Path, settings: Settings) -> Models:
    return Models(tmp_path / "volume", settings)


@pytest.fixture
def store(s3: Any, bucket: str, settings: Settings) -> ArtifactStore:
    return ArtifactStore(s3, bucket, PREFIX, OWNER, settings=settings)


def snapshot(s3: Any, bucket: str) -> dict[str, tuple[str, Any]]:
    listing = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: (o["ETag"], o["LastModified"]) for o in listing}


def test_sync_uploads_archives_with_ownership_metadata(
    s3: Any, bucket: str, store: ArtifactStore, models: Models, tmp_path: Path
) -> None:
    bert = models.desired("bert", b"bert-weights")
    result = store.sync([bert], models.source, tmp_path / "work")
    assert result.uploaded == [bert.key]
    assert bert.key == f"{PREFIX}{bert.target_model}"
    head = s3.head_object(Bucket=bucket, Key=bert.key)
    assert head["ContentType"] == "application/gzip"
    meta = head["Metadata"]
    assert meta["mme-owner-uid"] == OWNER
    assert meta["mme-model"] == "bert"
    assert meta["mme-managed-by"] == "mme-operator"
    assert len(meta["mme-sha256"]) == 64 and len(meta["mme-fingerprint"]) == 64
    stored = store.list_objects()[bert.key]
    assert (stored.owner_uid, stored.model_name, stored.sha256) == (
        OWNER,
        "bert",
        meta["mme-sha256"],
    )
    assert list((tmp_path / "work").iterdir()) == []  # temporary archive removed


def test_resync_uploads_nothing(
    s3: Any, bucket: str, store: ArtifactStore, models: Models, tmp_path: Path
) -> None:
    desired = [models.desired(f"m{i}", f"w{i}".encode()) for i in range(3)]
    store.sync(desired, models.source, tmp_path / "work")
    before = snapshot(s3, bucket)
    again = [models.desired(f"m{i}", f"w{i}".encode()) for i in range(3)]  # fresh fingerprints
    result = store.sync(again, models.source, tmp_path / "work")
    assert result.uploaded == [] and result.deleted == []
    assert sorted(result.kept) == sorted(d.key for d in desired)
    assert snapshot(s3, bucket) == before
    assert (
        store.upload(again[0], models.source(again[0].source_uri), tmp_path / "work").owner_uid
        == OWNER
    )
    assert snapshot(s3, bucket) == before


def test_changing_one_model_of_ten_uploads_exactly_one_archive(
    s3: Any, bucket: str, store: ArtifactStore, models: Models, tmp_path: Path
) -> None:
    desired = [models.desired(f"m{i}", f"w{i}".encode()) for i in range(10)]
    store.sync(desired, models.source, tmp_path / "work")
    before = snapshot(s3, bucket)
    changed = [models.desired(f"m{i}", f"w{i}".encode()) for i in range(10)]
    changed[4] = models.desired("m4", b"w4", batch=16)  # new config, same weights
    result = store.sync(changed, models.source, tmp_path / "work")
    assert result.uploaded == [changed[4].key]
    assert result.deleted == [desired[4].key]  # the old archive of m4, which we own
    after = snapshot(s3, bucket)
    assert set(after) == set(before) - {desired[4].key} | {changed[4].key}
    assert all(after[k] == before[k] for k in after if k != changed[4].key)


def test_stale_owned_archives_are_deleted_and_foreign_objects_kept(
    s3: Any, bucket: str, store: ArtifactStore, models: Models, tmp_path: Path
) -> None:
    keep, stale = models.desired("keep", b"k"), models.desired("stale", b"s")
    store.sync([keep, stale], models.source, tmp_path / "work")
    # Same naming pattern as ours, but no owner, or another owner: never touched.
    lookalike = f"{PREFIX}stale-0123456789ab.tar.gz"
    s3.put_object(Bucket=bucket, Key=lookalike, Body=b"theirs")
    theirs = f"{PREFIX}other-aaaaaaaaaaaa.tar.gz"
    s3.put_object(Bucket=bucket, Key=theirs, Body=b"x", Metadata={"mme-owner-uid": OTHER_OWNER})
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}README.txt", Body=b"notes")
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}nested/x-aaaaaaaaaaaa.tar.gz", Body=b"n")

    result = store.sync([keep], models.source, tmp_path / "work")
    assert result.deleted == [stale.key]
    assert result.kept == [keep.key]
    assert result.foreign == sorted([lookalike, theirs])
    remaining = set(snapshot(s3, bucket))
    assert stale.key not in remaining
    assert {keep.key, lookalike, theirs, f"{PREFIX}README.txt"} <= remaining


def test_delete_refuses_objects_we_do_not_own(s3: Any, bucket: str, store: ArtifactStore) -> None:
    key = f"{PREFIX}bert-0123456789ab.tar.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=b"x", Metadata={"mme-owner-uid": OTHER_OWNER})
    with pytest.raises(NotOwnedError, match="refusing to delete"):
        store.delete(key)
    assert key in snapshot(s3, bucket)
    assert store.delete(f"{PREFIX}gone-0123456789ab.tar.gz") is False


def test_desired_key_taken_by_a_foreign_object_is_a_conflict(
    s3: Any, bucket: str, store: ArtifactStore, models: Models, tmp_path: Path
) -> None:
    bert = models.desired("bert", b"w")
    s3.put_object(Bucket=bucket, Key=bert.key, Body=b"x", Metadata={"mme-owner-uid": OTHER_OWNER})
    with pytest.raises(ArtifactConflictError, match=r"its own artifacts\.prefix"):
        store.sync([bert], models.source, tmp_path / "work")
    with pytest.raises(ArtifactConflictError):
        store.upload(bert, models.source(bert.source_uri), tmp_path / "work")


def test_sse_kms_upload_sends_the_kms_headers(
    s3: Any, bucket: str, settings: Settings, models: Models, tmp_path: Path
) -> None:
    kms_store = ArtifactStore(
        s3, bucket, PREFIX, OWNER, kms_key_id="alias/models", settings=settings
    )
    bert = models.desired("bert", b"w")
    kms_store.upload(bert, models.source(bert.source_uri), tmp_path / "work")
    head = s3.head_object(Bucket=bucket, Key=bert.key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith("alias/models")


def test_large_archive_goes_up_in_parallel_parts_and_logs_progress(
    s3: Any,
    bucket: str,
    store: ArtifactStore,
    models: Models,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    big = models.desired("big", os.urandom(12 * 1024**2))  # > 2 parts of 5 MiB
    with caplog.at_level(logging.INFO, logger="mme_operator.artifacts"):
        store.upload(big, models.source(big.source_uri), tmp_path / "work")
    head = s3.head_object(Bucket=bucket, Key=big.key)
    assert head["ETag"].strip('"').endswith("-3")  # multipart ETag: md5-of-parts "-<count>"
    assert store.list_objects()[big.key].size == head["ContentLength"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("progress=100%" in m for m in messages)
    assert any(m.startswith("Uploaded archive key=") for m in messages)

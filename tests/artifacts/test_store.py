"""The archive store against moto's S3 server: idempotent sync, ownership, SSE-KMS."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import boto3
import pytest
from mme_operator.artifacts import (
    ArchiveConfigError,
    ArtifactConflictError,
    ArtifactStore,
    DesiredArchive,
    ModelSource,
    NotOwnedError,
    SourceChangedError,
    SourceContent,
    desired_archive,
    open_source,
)
from mme_operator.artifacts.packaging import SERVED_CONFIG_HEAD_BYTES
from mme_operator.artifacts.store import META_OWNER, StoredArchive
from mme_operator.local.s3_process import moto_s3_process
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


def test_an_archive_of_one_put_logs_one_line_without_progress(
    store: ArtifactStore, models: Models, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    small = models.desired("small", b"weights")
    with caplog.at_level(logging.INFO, logger="mme_operator.artifacts"):
        store.upload(small, models.source(small.source_uri), tmp_path / "work")
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("mme_operator")]
    assert [m.split(" ", 2)[:2] for m in messages] == [["Uploaded", "archive"]]
    assert list((tmp_path / "work").iterdir()) == []  # nothing left in the work dir


def test_a_multipart_upload_records_the_etag_s3_lists(
    s3: Any, bucket: str, store: ArtifactStore, models: Models, tmp_path: Path
) -> None:
    big = models.desired("big", os.urandom(12 * 1024**2))
    stored = store.upload(big, models.source(big.source_uri), tmp_path / "work")
    listed = store.list_archives()[big.key]
    assert stored.etag == listed.etag  # the next pass knows it as ours without a HEAD
    assert stored.size == listed.size


class GatedSource:
    """A real ``file://`` directory source whose last file waits for ``gate`` to open.

    What it stands for: a source still being read (a slow volume, a long download). When
    the last file is opened, ``before_last`` runs (after the gate, or after ``timeout``).
    """

    def __init__(
        self, inner: ModelSource, gate: threading.Event, before_last: Callable[[], None]
    ) -> None:
        self.inner = inner
        self.gate = gate
        self.before_last = before_last
        self.opened_by_gate: bool | None = None

    @property
    def uri(self) -> str:
        return self.inner.uri

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def size_bytes(self) -> int | None:
        return self.inner.size_bytes()

    @contextlib.contextmanager
    def open_content(self, workdir: Path) -> Iterator[SourceContent]:
        with self.inner.open_content(workdir) as content:
            *first, last = content.entries
            assert last.open is not None
            open_last = last.open

            def gated() -> contextlib.AbstractContextManager[BinaryIO]:
                self.opened_by_gate = self.gate.wait(timeout=30)
                self.before_last()
                return open_last()

            yield SourceContent(
                single_file=content.single_file,
                entries=[*first, dataclasses.replace(last, open=gated)],
            )


def parts_at_s3(s3: Any, bucket: str, key: str) -> int:
    """Parts S3 holds of the unfinished multipart uploads of ``key``."""
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
    return sum(
        len(s3.list_parts(Bucket=bucket, Key=key, UploadId=u["UploadId"]).get("Parts", []))
        for u in uploads
    )


def open_when_a_part_is_at_s3(s3: Any, bucket: str, key: str, gate: threading.Event) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not gate.is_set():
        if parts_at_s3(s3, bucket, key):
            gate.set()
        time.sleep(0.02)


def two_file_model(models: Models, name: str) -> tuple[DesiredArchive, Path]:
    """A directory source: 12 MiB of weights (two 5 MiB parts) and then a second file."""
    root = write_tree(
        models.root / name,
        {"1/a-weights.bin": os.urandom(12 * 1024**2), "1/b-last.bin": os.urandom(1024**2)},
    )
    uri = root.as_uri()
    desired = desired_archive(
        prefix=PREFIX,
        model_name=name,
        config_pbtxt=config(name),
        source_uri=uri,
        fingerprint=models.source(uri).fingerprint(),
        weights_filename="model.onnx",
    )
    return desired, root


def test_parts_go_up_while_the_source_is_still_being_read(
    s3: Any, bucket: str, store: ArtifactStore, models: Models, tmp_path: Path
) -> None:
    desired, root = two_file_model(models, "streamed")
    gate = threading.Event()
    source = GatedSource(models.source(desired.source_uri), gate, lambda: None)
    watcher = threading.Thread(
        target=open_when_a_part_is_at_s3, args=(s3, bucket, desired.key, gate)
    )
    watcher.start()
    stored = store.upload(desired, source, tmp_path / "work")
    watcher.join()
    # The last file was opened only once S3 held a part of the archive: the upload
    # did not wait for packaging to end.
    assert source.opened_by_gate is True
    body = s3.get_object(Bucket=bucket, Key=desired.key)["Body"].read()
    assert len(body) == stored.size
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        for rel in ("1/a-weights.bin", "1/b-last.bin"):
            member = tar.extractfile(f"streamed/{rel}")
            assert member is not None and member.read() == (root / rel).read_bytes()


def test_a_source_that_changes_mid_upload_leaves_no_part_and_no_object(
    s3: Any, bucket: str, store: ArtifactStore, models: Models, tmp_path: Path
) -> None:
    desired, root = two_file_model(models, "changing")
    gate = threading.Event()

    def rewrite_last() -> None:  # same size, other bytes: only its digest tells
        (root / "1" / "b-last.bin").write_bytes(os.urandom(1024**2))

    source = GatedSource(models.source(desired.source_uri), gate, rewrite_last)
    watcher = threading.Thread(
        target=open_when_a_part_is_at_s3, args=(s3, bucket, desired.key, gate)
    )
    watcher.start()
    with pytest.raises(SourceChangedError, match="changed while it was packaged"):
        store.upload(desired, source, tmp_path / "work")
    watcher.join()
    assert source.opened_by_gate is True  # parts were at S3 when it failed
    assert s3.list_multipart_uploads(Bucket=bucket, Prefix=desired.key).get("Uploads", []) == []
    assert desired.key not in snapshot(s3, bucket)
    assert list((tmp_path / "work").iterdir()) == []


UPLOAD_2GIB = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import boto3
    from mme_operator.artifacts import ArtifactStore, desired_archive, open_source
    from mme_operator.settings import Settings
    endpoint, bucket, src, work = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
    settings = Settings(file_roots=str(src.parent))  # the defaults: 64 MiB parts, 8 at once
    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    uri = src.as_uri()
    desired = desired_archive(
        prefix="big/", model_name="big", config_pbtxt="name: 'big'", source_uri=uri,
        fingerprint=open_source(uri, settings=settings).fingerprint(),
        weights_filename="model.onnx",
    )
    store = ArtifactStore(s3, bucket, "big/", "owner", settings=settings)
    stored = store.upload(desired, open_source(uri, settings=settings), work)
    status = Path("/proc/self/status").read_text()
    hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    print(desired.key, stored.size, int(hwm.split()[1]) * 1024)
    """
)


@pytest.fixture
def own_moto_server() -> Iterator[str]:
    """moto's S3 in a process of its own: 2 GiB of parts must not sit in the test's memory."""
    with moto_s3_process() as url:
        yield url


@pytest.mark.slow
def test_a_2gib_model_is_packaged_and_uploaded_in_under_100_mib(
    own_moto_server: str, tmp_path: Path
) -> None:
    src = tmp_path / "volume" / "model.bin"
    src.parent.mkdir()
    chunk = os.urandom(1024**2)  # repeats 1 MiB apart: far beyond deflate's 32 KiB window
    with open(src, "wb") as f:
        for _ in range(2048):
            f.write(chunk)
    s3 = boto3.client(
        "s3",
        endpoint_url=own_moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="big")
    result = subprocess.run(
        [sys.executable, "-c", UPLOAD_2GIB, own_moto_server, "big", str(src), str(tmp_path / "w")],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    key, size, peak_rss = result.stdout.split()
    assert int(size) > 2 * 1024**3  # stored, not deflated
    assert s3.head_object(Bucket="big", Key=key)["ContentLength"] == int(size)
    assert int(peak_rss) < 100 * 1024**2, f"peak RSS {int(peak_rss) / 1024**2:.0f} MiB"


def test_the_served_config_is_read_back_from_the_start_of_an_uploaded_archive(
    s3: Any, bucket: str, store: ArtifactStore, models: Models, tmp_path: Path
) -> None:
    weights = os.urandom(3 * SERVED_CONFIG_HEAD_BYTES)  # stored, not deflated: a big archive
    onnx = models.desired("onnx", weights, batch=4)
    store.sync([onnx], models.source, tmp_path / "work")
    assert s3.head_object(Bucket=bucket, Key=onnx.key)["ContentLength"] > SERVED_CONFIG_HEAD_BYTES
    assert store.served_config(onnx.key) == config("onnx", 4)


def test_an_object_that_is_not_an_archive_has_no_served_config(
    s3: Any, bucket: str, store: ArtifactStore
) -> None:
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}junk-0.tar.gz", Body=b"not gzip at all")
    with pytest.raises(ArchiveConfigError, match=r"cannot read config\.pbtxt from the first bytes"):
        store.served_config(f"{PREFIX}junk-0.tar.gz")


def test_a_narrowed_observation_lists_only_the_folders_named_and_keeps_the_recorded_rest(
    s3: Any, bucket: str, settings: Settings
) -> None:
    store = ArtifactStore(s3, bucket, PREFIX, OWNER, settings=settings, namespaces={"*"})
    changed, untouched = f"{PREFIX}team-a/new.tar.gz", f"{PREFIX}team-b/kept.tar.gz"
    for key in (changed, untouched):
        s3.put_object(Bucket=bucket, Key=key, Body=b"archive", Metadata={META_OWNER: OWNER})
    etag = s3.head_object(Bucket=bucket, Key=untouched)["ETag"]
    recorded = {untouched: StoredArchive(untouched, 0, None, OWNER, "team-b/kept", etag=etag)}
    # Gone from S3 behind the operator's back: only a listing of team-b's folder would tell.
    s3.delete_object(Bucket=bucket, Key=untouched)

    narrowed = store.observe(recorded, folders={"team-a"})
    assert sorted(narrowed) == [changed, untouched]
    assert narrowed[changed].owned_by(OWNER)
    assert narrowed[untouched].owned_by(OWNER)

    assert sorted(store.observe(recorded)) == [changed]  # the whole prefix, listed

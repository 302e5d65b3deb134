"""Sources: cheap fingerprints, S3 objects/prefixes/archives, https limits and timeouts."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from mme_operator.artifacts import (
    InvalidSourceError,
    SourceFetchError,
    SourceNotFoundError,
    SourceTooLargeError,
    open_source,
    package_model,
)
from mme_operator.settings import Settings
from mme_operator.triton import parse_model_config

from tests.artifacts.conftest import HttpServer, Route

CONFIG = 'name: "m"\n'


def s3_source(uri: str, s3: Any, settings: Settings, **kwargs: Any) -> Any:
    return open_source(uri, s3_client_factory=lambda bucket: s3, settings=settings, **kwargs)


def archive_files(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar
            if m.isfile()
        }


def test_s3_object_fingerprint_is_etag_and_size_and_follows_the_content(
    s3: Any, bucket: str, settings: Settings, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="bert/model.onnx", Body=b"v1")
    first = s3_source(f"s3://{bucket}/bert/model.onnx", s3, settings).fingerprint()
    assert "etag=" in first and "size=2" in first
    assert s3_source(f"s3://{bucket}/bert/model.onnx", s3, settings).fingerprint() == first
    s3.put_object(Bucket=bucket, Key="bert/model.onnx", Body=b"v2")
    assert s3_source(f"s3://{bucket}/bert/model.onnx", s3, settings).fingerprint() != first


def test_s3_object_with_versioning_carries_the_version_id(
    s3: Any, bucket: str, settings: Settings, tmp_path: Path
) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put = s3.put_object(Bucket=bucket, Key="m.onnx", Body=b"w")
    source = s3_source(f"s3://{bucket}/m.onnx", s3, settings)
    assert f"version={put['VersionId']}" in source.fingerprint()
    archive = package_model("m", CONFIG, source, "model.onnx", tmp_path / "a.tar.gz")
    assert archive_files(archive.path)["m/1/model.onnx"] == b"w"


def test_s3_prefix_with_version_dirs_is_packaged_as_a_model_tree(
    s3: Any, bucket: str, settings: Settings, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="echo/1/model.py", Body=b"code")
    s3.put_object(Bucket=bucket, Key="echo/config.pbtxt", Body=b'backend: "python"\n')
    s3.put_object(Bucket=bucket, Key="echo/", Body=b"")  # console "folder" marker
    source = s3_source(f"s3://{bucket}/echo", s3, settings)
    assert "objects=2" in source.fingerprint()
    archive = package_model("echo", CONFIG, source, "model.py", tmp_path / "a.tar.gz")
    files = archive_files(archive.path)
    # The source's config is the base, the spec's fields on top (was: replaced; issue 18).
    assert parse_model_config(files.pop("echo/config.pbtxt").decode()).backend == "python"
    assert files == {"echo/1/model.py": b"code"}
    assert list(tmp_path.iterdir()) == [tmp_path / "a.tar.gz"]  # downloads cleaned up


def test_s3_tar_gz_source_is_read_member_by_member(
    s3: Any, bucket: str, settings: Settings, tmp_path: Path
) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in [
            ("resnet/config.pbtxt", b'platform: "onnxruntime_onnx"\n'),
            ("resnet/1/model.onnx", b"w"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    s3.put_object(Bucket=bucket, Key="old/resnet.tar.gz", Body=buf.getvalue())
    source = s3_source(f"s3://{bucket}/old/resnet.tar.gz", s3, settings)
    archive = package_model("resnet", CONFIG, source, "model.onnx", tmp_path / "a.tar.gz")
    files = archive_files(archive.path)
    config = parse_model_config(files.pop("resnet/config.pbtxt").decode())
    assert (config.name, config.platform) == ("resnet", "onnxruntime_onnx")
    assert files == {"resnet/1/model.onnx": b"w"}


def test_s3_source_too_large_is_refused_before_download(
    s3: Any, bucket: str, settings: Settings
) -> None:
    s3.put_object(Bucket=bucket, Key="big.onnx", Body=b"x" * 1000)
    with pytest.raises(SourceTooLargeError, match="MME_MAX_SOURCE_BYTES"):
        s3_source(f"s3://{bucket}/big.onnx", s3, settings, max_bytes=999).fingerprint()


def test_missing_s3_source_says_so(s3: Any, bucket: str, settings: Settings) -> None:
    with pytest.raises(SourceNotFoundError, match="no objects under"):
        s3_source(f"s3://{bucket}/nothing/here", s3, settings).fingerprint()


def test_https_fingerprint_uses_etag_without_downloading(
    http_server: HttpServer, settings: Settings, tmp_path: Path
) -> None:
    http_server.routes["/m.onnx?sig=secret"] = Route(body=b"weights", headers={"ETag": '"abc"'})
    source = open_source(
        http_server.url("/m.onnx?sig=secret"), settings=settings, allow_insecure_localhost=True
    )
    fingerprint = source.fingerprint()
    assert 'etag="abc"' in fingerprint and "size=7" in fingerprint
    assert "secret" not in fingerprint  # presigned query strings stay out of names and metadata
    assert [method for method, _ in http_server.requests] == ["HEAD"]
    archive = package_model("m", CONFIG, source, "model.onnx", tmp_path / "a.tar.gz")
    assert archive_files(archive.path)["m/1/model.onnx"] == b"weights"


def test_https_without_validators_falls_back_to_a_content_hash(
    http_server: HttpServer, settings: Settings
) -> None:
    http_server.routes["/m.onnx"] = Route(body=b"weights")
    source = open_source(
        http_server.url("/m.onnx"), settings=settings, allow_insecure_localhost=True
    )
    assert "sha256=" in source.fingerprint()


def test_https_size_limit_from_content_length(http_server: HttpServer, settings: Settings) -> None:
    http_server.routes["/big"] = Route(body=b"x" * 5000, headers={"ETag": '"e"'})
    source = open_source(
        http_server.url("/big"), settings=settings, max_bytes=4096, allow_insecure_localhost=True
    )
    with pytest.raises(SourceTooLargeError):
        source.fingerprint()


def test_https_size_limit_while_streaming_without_content_length(
    http_server: HttpServer, settings: Settings, tmp_path: Path
) -> None:
    http_server.routes["/big"] = Route(body=b"x" * 3 * 1024**2, send_length=False)
    source = open_source(
        http_server.url("/big"), settings=settings, max_bytes=1024**2, allow_insecure_localhost=True
    )
    with pytest.raises(SourceTooLargeError):
        source.fingerprint()


def test_https_stalled_download_times_out(
    http_server: HttpServer, settings: Settings, tmp_path: Path
) -> None:
    http_server.routes["/slow"] = Route(body=b"x" * 100, headers={"ETag": '"e"'}, stall_seconds=2)
    settings = settings.model_copy(update={"https_timeout_seconds": 0.5})
    source = open_source(http_server.url("/slow"), settings=settings, allow_insecure_localhost=True)
    started = time.monotonic()
    with pytest.raises(SourceFetchError, match="timeout"):
        package_model("m", CONFIG, source, "model.onnx", tmp_path / "a.tar.gz")
    assert time.monotonic() - started < 1.8
    assert not (tmp_path / "a.tar.gz").exists()


def test_plain_http_is_refused_in_production(http_server: HttpServer, settings: Settings) -> None:
    with pytest.raises(InvalidSourceError, match="only https"):
        open_source(http_server.url("/m.onnx"), settings=settings)
    with pytest.raises(InvalidSourceError, match="only https"):
        open_source("http://example.com/m.onnx", settings=settings, allow_insecure_localhost=True)


def test_https_404_is_not_found(http_server: HttpServer, settings: Settings) -> None:
    source = open_source(http_server.url("/gone"), settings=settings, allow_insecure_localhost=True)
    with pytest.raises(SourceNotFoundError):
        source.fingerprint()

"""Throughput of model packaging + upload, against the limit and against the naive path.

Run: ``python benchmarks/artifacts.py [--size-mb 256]``. One run, one generated input of
incompressible bytes (like model weights), all paths timed on it:

* limit:  read the file + sha256 (the least any packaging must do);
* ours:   ``ArtifactStore.upload`` = package (ISA-L level 1, streaming, hashed while
          written) + multipart upload with parallel parts to moto's S3 server;
* ours-zlib: the same with zlib level 1 (the fallback), for the compression choice;
* naive:  ``tarfile`` w:gz (zlib level 9 default) into memory + one ``put_object``.

moto runs in this process on 127.0.0.1, so "upload" measures the client's work plus an
in-process server; real S3 throughput depends on the network.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import os
import resource
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from mme_operator.artifacts import ArtifactStore, desired_archive, open_source, package_model
from mme_operator.artifacts.packaging import COMPRESS_LEVEL, ISAL_AVAILABLE
from mme_operator.settings import Settings
from moto.server import ThreadedMotoServer

CONFIG = 'name: "bench"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n'


def generate(path: Path, size_mb: int) -> None:
    """Incompressible bytes, like trained weights (fp16 weights gain <10% from gzip)."""
    with open(path, "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1024 * 1024))


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def read_and_hash(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def naive(path: Path, s3: Any, bucket: str, key: str) -> int:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:  # compresslevel 9 by default
        tar.add(path, arcname="bench/1/model.onnx")
    data = buf.getvalue()
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    return len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=256, help="input size in MiB")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines

    settings = Settings(file_roots="/")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        src_dir = work / "src"
        src_dir.mkdir()
        weights = src_dir / "model.onnx"
        generate(weights, args.size_mb)
        mb = args.size_mb * 1024 * 1024 / 1e6

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        s3.create_bucket(Bucket="bench")
        uri = weights.as_uri()

        def source() -> Any:
            return open_source(uri, settings=settings, file_roots=[src_dir])

        fingerprint = source().fingerprint()
        results: dict[str, float] = {}
        t, _ = timed(lambda: read_and_hash(weights))
        results["limit: read + sha256"] = t

        for compressor in ("isal", "zlib"):
            if compressor == "isal" and not ISAL_AVAILABLE:
                continue
            t, packaged = timed(
                lambda c=compressor: package_model(
                    "bench", CONFIG, source(), "model.onnx", work / f"p-{c}.tar.gz", compressor=c
                )
            )
            results[f"package only ({compressor} level {COMPRESS_LEVEL})"] = t
            packaged.path.unlink()
            store = ArtifactStore(
                s3,
                "bench",
                f"{compressor}/",
                "bench-owner",
                settings=settings,
                compressor=compressor,
            )
            desired = desired_archive(
                prefix=f"{compressor}/",
                model_name="bench",
                config_pbtxt=CONFIG,
                source_uri=uri,
                fingerprint=fingerprint,
                weights_filename="model.onnx",
            )
            t, _ = timed(lambda s=store, d=desired: s.upload(d, source(), work / "scratch"))
            label = "ours: package + multipart upload" if compressor == "isal" else "ours-zlib"
            results[f"{label} ({compressor} level {COMPRESS_LEVEL})"] = t

        t, _ = timed(lambda: naive(weights, s3, "bench", "naive/bench.tar.gz"))
        results["naive: tarfile w:gz level 9 + put_object"] = t
        server.stop()

    limit = results["limit: read + sha256"]
    naive_t = results["naive: tarfile w:gz level 9 + put_object"]
    print(f"input: {args.size_mb} MiB of incompressible bytes, {os.cpu_count()} CPUs")
    print(f"{'path':<52} {'seconds':>8} {'MB/s':>8} {'of limit':>9} {'x naive':>8}")
    for name, seconds in results.items():
        print(
            f"{name:<52} {seconds:8.2f} {mb / seconds:8.1f} "
            f"{limit / seconds:8.0%} {naive_t / seconds:7.1f}x"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MiB (the naive path holds the archive in memory)")


if __name__ == "__main__":
    main()

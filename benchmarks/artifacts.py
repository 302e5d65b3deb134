"""Throughput of model packaging + upload, against the limit and against the naive path.

Run: ``python benchmarks/artifacts.py [--size-mb 256] [--json]``. Two generated inputs of
the same size, every path timed on each:

* ``incompressible``: random bytes, like trained weights (fp16 weights gain <10% from gzip);
* ``compressible``: tokenizer-like JSON lines, like configs and vocabularies.

Paths:

* limit:  read the file + sha256 (the least any packaging must do);
* package: ``package_model`` into a local file (ISA-L level 2 where a block's sample says
  deflating pays, stored blocks elsewhere; hashed while written);
* ours:   ``ArtifactStore.upload`` = the same packaging, each multipart part sent to S3 as
  soon as it is written (parallel parts), to moto's S3 server;
* ours-zlib: the same with zlib level 1 (the fallback) for the deflated blocks;
* naive:  ``tarfile`` w:gz (zlib level 9 default) into memory + one ``put_object``.

limit and package are the best of ``--repeat`` runs each (the page cache and the other
processes on the machine make single runs noisy); the others run once. moto runs in its
own process on 127.0.0.1, so "upload" measures the client's work plus a local server that
shares the cores; real S3 throughput depends on the network. ``peak_rss_mib`` is the peak
resident memory of this process while it packaged and uploaded that input (ours, not
naive: the naive path holds the whole archive in memory, reported as ``naive_peak_rss_mib``).

``--json`` prints one JSON object: ``{"incompressible": {...}, "compressible": {...}, ...}``
with ``limit_mb_s``, ``package_mb_s``, ``package_of_limit``, ``upload_mb_s``,
``peak_rss_mib``, ``archive_of_input`` and every path's seconds and MB/s.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import json
import logging
import os
import random
import string
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from mme_operator.artifacts import ArtifactStore, desired_archive, open_source, package_model
from mme_operator.artifacts.packaging import COMPRESS_LEVELS, ISAL_AVAILABLE
from mme_operator.local.s3_process import moto_s3_process
from mme_operator.settings import Settings

CONFIG = 'name: "bench"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n'
MIB = 1024 * 1024
INPUTS = ("incompressible", "compressible")


def text_like(size: int, seed: int = 0) -> bytes:
    """Tokenizer-like JSON lines (compress to about a quarter, as configs and vocabularies do)."""
    rng = random.Random(seed)
    words = [
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 10))) for _ in range(5000)
    ]
    lines, total, i = [], 0, 0
    while total < size:
        line = (
            f'{{"id": {i}, "token": "{rng.choice(words)}", "score": {rng.uniform(-20, 0):.4f}}}\n'
        )
        lines.append(line)
        total += len(line)
        i += 1
    return "".join(lines).encode()[:size]


def generate(path: Path, size_mb: int, kind: str) -> None:
    """``size_mb`` MiB of ``kind`` input (4 MiB of text repeated: far beyond deflate's window)."""
    chunk = text_like(4 * MIB) if kind == "compressible" else b""
    with open(path, "wb") as f:
        for i in range(size_mb):
            if kind == "compressible":
                f.write(chunk[(i % 4) * MIB : (i % 4 + 1) * MIB])
            else:
                f.write(os.urandom(MIB))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    runs = [timed(fn) for _ in range(repeat)]
    return min(runs, key=lambda run: run[0])


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


def reset_peak_rss() -> None:
    """Start the process's peak RSS (VmHWM) afresh from what it holds now (Linux)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


def empty_bucket(s3: Any, bucket: str) -> None:
    """Delete what the last path uploaded (moto keeps objects in memory)."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])


def measure(kind: str, size_mb: int, repeat: int, work: Path, s3: Any) -> dict[str, Any]:
    """Every path on one generated input; MB/s in decimal megabytes."""
    settings = Settings(file_roots="/")
    src_dir = work / kind
    src_dir.mkdir()
    weights = src_dir / "model.onnx"
    generate(weights, size_mb, kind)
    mb = size_mb * MIB / 1e6
    uri = weights.as_uri()

    def source() -> Any:
        return open_source(uri, settings=settings, file_roots=[src_dir])

    fingerprint = source().fingerprint()  # named once, as a reconcile names it first
    seconds: dict[str, float] = {}
    limit, _ = best_of(repeat, lambda: read_and_hash(weights))
    seconds["limit: read + sha256"] = limit
    reset_peak_rss()
    sizes = {}
    for compressor in ("isal", "zlib"):
        if compressor == "isal" and not ISAL_AVAILABLE:
            continue
        out = work / f"{kind}-{compressor}.tar.gz"

        def pack(c: Any = compressor, o: Path = out) -> Any:
            return package_model("bench", CONFIG, source(), "model.onnx", o, compressor=c)

        t, packaged = best_of(repeat if compressor == "isal" else 1, pack)
        sizes[compressor] = packaged.size
        seconds[f"package only ({compressor} level {COMPRESS_LEVELS[compressor]})"] = t
        packaged.path.unlink()
        prefix = f"{kind}-{compressor}/"
        store = ArtifactStore(
            s3, "bench", prefix, "bench-owner", settings=settings, compressor=compressor
        )
        desired = desired_archive(
            prefix=prefix,
            model_name="bench",
            config_pbtxt=CONFIG,
            source_uri=uri,
            fingerprint=fingerprint,
            weights_filename="model.onnx",
        )
        t, _ = timed(functools.partial(store.upload, desired, source(), work / "scratch"))
        label = "ours: package + multipart upload" if compressor == "isal" else "ours-zlib"
        seconds[f"{label} ({compressor} level {COMPRESS_LEVELS[compressor]})"] = t
        empty_bucket(s3, "bench")
        if compressor == "isal":
            ours_peak = peak_rss_mib()
    reset_peak_rss()
    t, _ = timed(lambda: naive(weights, s3, "bench", "naive/bench.tar.gz"))
    seconds["naive: tarfile w:gz level 9 + put_object"] = t
    naive_peak = peak_rss_mib()
    empty_bucket(s3, "bench")
    weights.unlink()

    package = seconds[f"package only (isal level {COMPRESS_LEVELS['isal']})"]
    upload = seconds[f"ours: package + multipart upload (isal level {COMPRESS_LEVELS['isal']})"]
    naive_t = seconds["naive: tarfile w:gz level 9 + put_object"]
    return {
        "limit_mb_s": round(mb / limit, 1),
        "package_mb_s": round(mb / package, 1),
        "package_of_limit": round(limit / package, 3),
        "upload_mb_s": round(mb / upload, 1),
        "peak_rss_mib": round(ours_peak, 1),
        "naive_peak_rss_mib": round(naive_peak, 1),
        "archive_of_input": round(sizes["isal"] / (size_mb * MIB), 4),
        "paths": {
            name: {
                "seconds": round(t, 3),
                "mb_s": round(mb / t, 1),
                "of_limit": round(limit / t, 3),
                "x_naive": round(naive_t / t, 2),
            }
            for name, t in seconds.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=256, help="input size in MiB")
    parser.add_argument("--repeat", type=int, default=3, help="runs of limit and package")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--only", choices=INPUTS, help=argparse.SUPPRESS)  # one input, here
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)  # the S3 server to use
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if args.only:
        s3 = s3_client(args.endpoint)
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            result = measure(args.only, args.size_mb, args.repeat, Path(tmp), s3)
        print(json.dumps(result))
        return

    report: dict[str, Any] = {
        "size_mb": args.size_mb,
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    with moto_s3_process() as endpoint:
        s3_client(endpoint).create_bucket(Bucket="bench")
        for kind in INPUTS:
            # Each input in a fresh process: its peak RSS is its own, not the last one's.
            child = [sys.executable, __file__, "--only", kind, "--endpoint", endpoint]
            child += ["--size-mb", str(args.size_mb), "--repeat", str(args.repeat)]
            if args.workdir:
                child += ["--workdir", str(args.workdir)]
            done = subprocess.run(child, check=True, capture_output=True, text=True)
            report[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    report["load_average_after"] = os.getloadavg()

    if args.json:
        print(json.dumps(report, indent=2))
        return
    for kind in INPUTS:
        result = report[kind]
        print(
            f"input: {args.size_mb} MiB of {kind} bytes, {report['cpus']} CPUs; "
            f"archive = {result['archive_of_input']:.1%} of the input"
        )
        print(f"{'path':<52} {'seconds':>8} {'MB/s':>8} {'of limit':>9} {'x naive':>8}")
        for name, path in result["paths"].items():
            print(
                f"{name:<52} {path['seconds']:8.2f} {path['mb_s']:8.1f} "
                f"{path['of_limit']:8.0%} {path['x_naive']:7.1f}x"
            )
        print(
            f"peak RSS packaging + uploading: {result['peak_rss_mib']:.0f} MiB "
            f"(naive path: {result['naive_peak_rss_mib']:.0f} MiB, it holds the archive)\n"
        )
    print(
        f"load average before {report['load_average_before']}, after {report['load_average_after']}"
    )


if __name__ == "__main__":
    main()

"""Emulators for the artifact tests: moto's S3 over HTTP, and a local HTTP file server."""

from __future__ import annotations

import http.server
import io
import random
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from mme_operator.settings import Settings
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto in server mode on 127.0.0.1: boto3 talks real HTTP to it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3(moto_endpoint: str) -> Any:
    """A boto3 S3 client pointed at the moto server, with dummy credentials."""
    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 2}),
    )


@pytest.fixture
def bucket(s3: Any) -> str:
    """A fresh bucket per test, so tests never see each other's objects."""
    name = f"t-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def settings() -> Settings:
    """Small multipart parts so multipart uploads happen with small test files."""
    return Settings(
        multipart_chunk_bytes=5 * 1024**2, upload_concurrency=4, https_timeout_seconds=2
    )


@dataclass
class Route:
    """What the local HTTP server answers for one path."""

    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    send_length: bool = True
    stall_seconds: float = 0.0  # sleep after the headers, before the body
    head_status: int | None = None


@dataclass
class HttpServer:
    """A local HTTP server (a stand-in for an https:// model host)."""

    base_url: str
    routes: dict[str, Route]
    requests: list[tuple[str, str]]

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    routes: dict[str, Route] = {}
    requests: list[tuple[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, with_body: bool) -> None:
            requests.append((self.command, self.path))
            route = routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            status = route.status
            if not with_body and route.head_status is not None:
                status = route.head_status
            self.send_response(status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            if route.send_length:
                self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            if with_body and status == 200:
                if route.stall_seconds:
                    self.wfile.write(route.body[:10])
                    self.wfile.flush()
                    time.sleep(route.stall_seconds)
                    self.wfile.write(route.body[10:])
                else:
                    self.wfile.write(route.body)

        def do_GET(self) -> None:
            self._answer(with_body=True)

        def do_HEAD(self) -> None:
            self._answer(with_body=False)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield HttpServer(f"http://{host}:{port}", routes, requests)
    server.shutdown()
    server.server_close()


def make_tar(path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    """A ``.tar.gz`` at ``path`` holding ``entries`` (headers as given, or name and bytes)."""
    with tarfile.open(path, "w:gz") as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                name, data = entry
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def tar_link(name: str, target: str, type_: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    """A link member (symbolic by default) with ``target`` stored as written."""
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = target
    return info


def tar_dir(name: str) -> tarfile.TarInfo:
    """A directory member."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


def tar_device(name: str) -> tarfile.TarInfo:
    """A character device member (/dev/null's numbers)."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    """Create ``files`` (relative path -> content) under ``root``."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


TreeWriter = Callable[[Path, dict[str, bytes]], Path]


def text_bytes(size: int, seed: int) -> bytes:
    """Deterministic text that deflates the way vocabularies and configs do (to ~30%)."""
    rng = random.Random(seed)
    vocab = [f"tok{rng.randrange(10**6)}" for _ in range(3000)]
    out = bytearray()
    while len(out) < size:
        out += f"{rng.choice(vocab)}\t{rng.randrange(50000)}\t{rng.random():.5f}\n".encode()
    return bytes(out[:size])


def mixed_model(root: Path) -> Path:
    """A model directory as exported models look: weights (random, zero padding, text-like
    tables) beside a vocabulary and a small config; the same bytes every time."""
    rng = random.Random(7)
    weights = rng.randbytes(2 * 1024**2) + bytes(2 * 1024**2) + text_bytes(2 * 1024**2, 1)
    return write_tree(
        root,
        {
            "1/model.onnx": weights,
            "1/vocab.txt": text_bytes(1024**2 + 12345, 2),
            "1/config.json": b'{"hidden": 768, "layers": 12}\n',
        },
    )

"""The synchronous API client's HTTP behaviour, against a small local HTTP server.

What the real API server seldom shows on demand (tests/kube/test_login.py covers the
rest there): a kept-alive connection the server closed while idle (plain, and reset under
TLS), no server at all, an answer that is not JSON, basic auth.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
import pytest
from mme_operator.kube import KubeApiError, KubeClient, SharedLogin


@dataclass
class Seen:
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    connections: set[int] = field(default_factory=set)


def serve(seen: Seen) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive unless said otherwise

        def do_GET(self) -> None:
            seen.requests.append(("GET", self.path, self.headers.get("Authorization")))
            seen.connections.add(self.client_address[1])
            if self.path == "/broken":
                body, status = b"<html>upstream gone</html>", 502
            else:
                body, status = b'{"kind": "Namespace"}', 200
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            # Closed after answering, without saying so: what an idle timeout looks like
            # to the client the next time it uses the connection.
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def server() -> Iterator[tuple[str, Seen]]:
    seen = Seen()
    running = serve(seen)
    try:
        yield f"http://127.0.0.1:{running.server_address[1]}", seen
    finally:
        running.shutdown()
        running.server_close()


def client(info: kopf.ConnectionInfo) -> KubeClient:
    return KubeClient(SharedLogin(lambda: info))


def test_a_connection_closed_while_idle_is_replaced_without_sending_twice(
    server: tuple[str, Seen],
) -> None:
    url, seen = server
    api = client(kopf.ConnectionInfo(server=url, username="admin", password="secret"))

    for _ in range(3):
        assert api.request("GET", "/api/v1/namespaces/default") == {"kind": "Namespace"}

    assert len(seen.requests) == 3
    assert len(seen.connections) == 3
    assert {auth for _, _, auth in seen.requests} == {"Basic YWRtaW46c2VjcmV0"}


def test_an_answer_that_is_not_json_is_an_error_with_its_start(server: tuple[str, Seen]) -> None:
    url, _ = server

    with pytest.raises(KubeApiError) as refused:
        client(kopf.ConnectionInfo(server=url, token="t")).request("GET", "/broken")

    assert refused.value.status == 502
    assert str(refused.value) == "GET /broken: 502 Bad Gateway: <html>upstream gone</html>"


def test_no_server_is_an_error_without_a_status() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    api = client(kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}", token="t"))

    with pytest.raises(KubeApiError) as failed:
        api.request("GET", "/api/v1/namespaces/default")

    assert failed.value.status is None
    assert str(failed.value).startswith(
        f"GET /api/v1/namespaces/default: no answer: http://127.0.0.1:{port}: "
    )
    assert "Connection refused" in str(failed.value)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1, the certificate its own CA: made with openssl, as
    scripts/envtest.sh makes the API server's."""
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key_path), "-out", str(cert_path)),
        ],
        check=True,
        capture_output=True,
    )
    return cert_path, key_path


def serve_tls(seen: Seen, cert: Path, key: Path) -> http.server.ThreadingHTTPServer:
    """Answers a PATCH, then resets the connection: no TLS close_notify, no FIN (what an
    idle timeout of a load balancer in front of the API server can look like)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_PATCH(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.requests.append(("PATCH", self.path, self.headers.get("Authorization")))
            seen.connections.add(self.client_address[1])
            body = b'{"kind": "Namespace"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            time.sleep(0.05)  # the answer is read before the reset (which would drop it)

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        def shutdown_request(self, request: Any) -> None:
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            request.close()

    server = Server(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_tls_connection_reset_while_idle_is_replaced_without_sending_twice(
    tmp_path: Path,
) -> None:
    # The next call on the reset connection fails with "EOF occurred in violation of
    # protocol" (ssl.SSLEOFError) before any answer: it is sent again on a new one.
    cert, key = self_signed(tmp_path)
    seen = Seen()
    running = serve_tls(seen, cert, key)
    url = f"https://127.0.0.1:{running.server_address[1]}"
    try:
        api = client(kopf.ConnectionInfo(server=url, ca_path=str(cert), token="t"))
        for i in range(3):
            if i:
                time.sleep(0.2)  # the reset has arrived before the next call
            answer = api.request("PATCH", "/api/v1/namespaces/default", {"metadata": {}})
            assert answer == {"kind": "Namespace"}
    finally:
        running.shutdown()
        running.server_close()

    assert [path for _, path, _ in seen.requests] == ["/api/v1/namespaces/default"] * 3
    assert len(seen.connections) == 3

"""The synchronous API client's HTTP behaviour, against a small local HTTP server.

What the real API server seldom shows on demand (tests/kube/test_login.py covers the
rest there): a kept-alive connection the server closed while idle, no server at all, an
answer that is not JSON, basic auth.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

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

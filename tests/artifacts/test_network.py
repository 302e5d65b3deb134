"""https:// sources reach only public addresses unless allowlisted, on every redirect, connect
to the address they checked, and say the same thing however a connection fails."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from mme_operator.artifacts.errors import InvalidSourceError, SourceFetchError
from mme_operator.artifacts.sources import open_source
from mme_operator.artifacts.sources.https import HttpsSource
from mme_operator.artifacts.sources.network import AddressPolicy
from mme_operator.local.tarpit import Tarpit
from mme_operator.settings import Settings

from tests.artifacts.conftest import HttpServer, Route


@pytest.fixture
def tarpit() -> Iterator[Tarpit]:
    listener = Tarpit()
    yield listener
    listener.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def source(url: str, allowed: str = "", timeout: float = 1.0) -> HttpsSource:
    return HttpsSource(
        url, max_bytes=1 << 20, timeout=timeout, policy=AddressPolicy.from_setting(allowed)
    )


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "169.254.169.254",
        "[fd00:ec2::254]",
        "10.0.0.1",
        "192.168.1.1",
        "172.16.0.1",
        "[::1]",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "[::ffff:127.0.0.1]",
    ],
)
def test_internal_addresses_are_refused_before_any_connection(host: str, tarpit: Tarpit) -> None:
    with pytest.raises(InvalidSourceError, match="may not reach") as refused:
        source(f"https://{host}:{tarpit.port}/m.onnx").fingerprint()
    assert "MME_HTTPS_ALLOWED_NETWORKS" in str(refused.value)
    assert tarpit.accepted == 0


def test_open_or_closed_a_blocked_port_reads_the_same(tarpit: Tarpit) -> None:
    messages = []
    for port in (tarpit.port, closed_port()):
        with pytest.raises(InvalidSourceError) as refused:
            source(f"https://127.0.0.1:{port}/m").fingerprint()
        messages.append(str(refused.value).replace(str(port), "PORT"))
    assert messages[0] == messages[1]
    assert tarpit.accepted == 0


def test_an_allowlisted_address_is_reached_with_deadlines(tarpit: Tarpit) -> None:
    # The tarpit accepts and never answers: the read deadline ends it, with no OS detail.
    with pytest.raises(SourceFetchError) as hung:
        source(f"https://127.0.0.1:{tarpit.port}/m", "127.0.0.1/32", timeout=0.5).fingerprint()
    assert tarpit.accepted >= 1
    assert "no usable answer within 0.5s" in str(hung.value)
    with pytest.raises(SourceFetchError) as refused:
        source(f"https://127.0.0.1:{closed_port()}/m", "127.0.0.1/32").fingerprint()
    assert "could not connect to 127.0.0.1:" in str(refused.value)
    assert "refused" not in str(refused.value).lower()


def test_a_redirect_to_a_blocked_address_is_refused(http_server: HttpServer) -> None:
    port = http_server.base_url.rsplit(":", 1)[1]
    http_server.routes["/m.onnx"] = Route(
        status=302, headers={"Location": f"http://127.0.0.2:{port}/inner"}
    )
    http_server.routes["/inner"] = Route(body=b"internal", headers={"ETag": '"i"'})
    allowed = HttpsSource(
        http_server.url("/m.onnx"),
        max_bytes=1 << 20,
        timeout=2,
        policy=AddressPolicy.from_setting("127.0.0.1/32"),
        allow_insecure_localhost=True,
    )
    with pytest.raises(InvalidSourceError, match="may not reach"):
        allowed.fingerprint()
    assert ("GET", "/inner") not in http_server.requests
    assert ("HEAD", "/inner") not in http_server.requests


def test_the_connection_goes_to_the_address_that_was_checked(
    http_server: HttpServer, monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path
) -> None:
    # The resolver is asked once per connection and the socket opened to what it said, so a
    # second, different DNS answer (rebinding) is never used. (No DNS server can be pointed
    # at from here: the system resolver is wrapped to count and to change its answer.)
    real = socket.getaddrinfo
    asked: list[str] = []

    def resolver(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(host)
        if host == "localhost":
            return real("127.0.0.1" if len(asked) == 1 else "127.0.0.2", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    port = http_server.base_url.rsplit(":", 1)[1]
    http_server.routes["/m.onnx"] = Route(body=b"weights", headers={"ETag": '"w"'})
    pinned = HttpsSource(
        f"http://localhost:{port}/m.onnx",
        max_bytes=1 << 20,
        timeout=2,
        policy=AddressPolicy.from_setting("127.0.0.1/32"),
        allow_insecure_localhost=True,
    )
    assert pinned.fingerprint().endswith("size=7")
    assert asked.count("localhost") == 1
    # The second connection resolves again and meets 127.0.0.2, which is not allowlisted.
    with (
        pytest.raises(InvalidSourceError, match="may not reach"),
        pinned.open_content(tmp_path),
    ):
        pass


@pytest.mark.parametrize(
    "url", ["https://user:SECRET@host/m", "https://h:99999/x", "https://h:0/x"]
)
def test_user_info_and_bad_ports_are_refused_without_the_secret(
    url: str, settings: Settings
) -> None:
    with pytest.raises(InvalidSourceError) as refused:
        open_source(url, settings=settings)
    assert "SECRET" not in str(refused.value)
    assert "\n" not in str(refused.value)

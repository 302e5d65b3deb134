"""Which addresses an ``https://`` source may reach, and connections pinned to the one checked.

A tenant's source URL is fetched by the operator, from inside the cluster, with the
operator's network position: loopback, the pod network, the node's metadata service
(169.254.169.254, fd00:ec2::254) and every private range are out of reach unless the
platform allowlists them (``MME_HTTPS_ALLOWED_NETWORKS``). The host name is resolved once,
every address it resolves to is checked, and the connection goes to the very address that
was checked (TLS still verifies the name, sent as SNI and Host): a DNS answer that changes
between the check and the connect (DNS rebinding) cannot move the connection. Redirects go
through the same connection classes, so every hop is checked.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedAddressError(OSError):
    """The host resolves to an address the operator does not fetch from (never connected)."""


class ConnectFailedError(OSError):
    """No connection: one message whatever the cause (refused, timed out, unreachable)."""


def _category(ip: Address) -> str | None:
    """Why ``ip`` is not a public unicast address; None when it is."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _category(ip.ipv4_mapped)
    for name, test in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if test:
            return name
    return None if ip.is_global else "not globally routable"


@dataclass(frozen=True)
class AddressPolicy:
    """Public unicast addresses only, plus the allowlisted networks and host names."""

    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_setting(cls, text: str, *, allow_loopback: bool = False) -> AddressPolicy:
        """From ``MME_HTTPS_ALLOWED_NETWORKS``: CIDRs and host names, comma-separated."""
        networks: list[Network] = []
        hosts: set[str] = set()
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        if allow_loopback:
            networks += [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
        return cls(tuple(networks), frozenset(hosts))

    def refusal(self, ip: Address) -> str | None:
        """Why the operator may not connect to ``ip``; None when it may."""
        plain = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        candidates = [ip] if plain is None else [ip, plain]
        if any(c in net for c in candidates for net in self.networks if c.version == net.version):
            return None
        return _category(ip)

    def resolve(self, host: str, port: int) -> str:
        """The address to connect to for ``host``: every address it resolves to must pass.

        Raises :class:`BlockedAddressError` (nothing is connected) or
        :class:`ConnectFailedError` when the name does not resolve.
        """
        name = host.lower().rstrip(".")
        try:
            literal: Address | None = ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            addresses: list[Address] = [literal]
        else:
            try:
                infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                raise ConnectFailedError(f"cannot resolve {host}") from None
            addresses = _unique(
                ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos
            )
        if not addresses:
            raise ConnectFailedError(f"cannot resolve {host}")
        if name in self.hosts:
            return str(addresses[0])
        for ip in addresses:
            why = self.refusal(ip)
            if why is not None:
                raise BlockedAddressError(
                    f"{host} resolves to a {why} address, which sources may not reach "
                    "(the platform can allow it with MME_HTTPS_ALLOWED_NETWORKS)"
                )
        return str(addresses[0])


def _unique(addresses: Iterable[Address]) -> list[Address]:
    seen: list[Address] = []
    for ip in addresses:
        if ip not in seen:
            seen.append(ip)
    return seen


def _connect(policy: AddressPolicy, host: str, port: int, connect_timeout: float) -> socket.socket:
    address = policy.resolve(host, port)
    try:
        return socket.create_connection((address, port), timeout=connect_timeout)
    except OSError:
        # Refused, timed out and unreachable read the same: the status is no port scanner.
        raise ConnectFailedError(f"could not connect to {host}:{port}") from None


class _PinnedConnection:
    """Where a connection may go and how long its connect may take (mixed into http.client's)."""

    def __init__(
        self, host: str, *, policy: AddressPolicy, connect_timeout: float, **kwargs: Any
    ) -> None:
        super().__init__(host, **kwargs)  # type: ignore[call-arg]
        self._policy = policy
        self._connect_timeout = connect_timeout

    def _pinned_socket(self) -> socket.socket:
        conn: Any = self
        sock = _connect(self._policy, conn.host, conn.port, self._connect_timeout)
        sock.settimeout(conn.timeout)  # every read after the connect: the read deadline
        return sock


class _PinnedHTTPSConnection(_PinnedConnection, http.client.HTTPSConnection):
    def connect(self) -> None:
        sock = self._pinned_socket()
        try:
            self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
                sock, server_hostname=self.host
            )
        except BaseException:
            sock.close()
            raise


class _PinnedHTTPConnection(_PinnedConnection, http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = self._pinned_socket()


class PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    """urllib's https handler, connecting only where ``policy`` allows, to the checked address."""

    def __init__(self, policy: AddressPolicy, connect_timeout: float) -> None:
        super().__init__()
        self._connection = functools.partial(
            _PinnedHTTPSConnection, policy=policy, connect_timeout=connect_timeout
        )

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(self._connection, req)


class PinnedHTTPHandler(urllib.request.HTTPHandler):
    """Plain http (tests, to loopback only), through the same checks."""

    def __init__(self, policy: AddressPolicy, connect_timeout: float) -> None:
        super().__init__()
        self._connection = functools.partial(
            _PinnedHTTPConnection, policy=policy, connect_timeout=connect_timeout
        )

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(self._connection, req)

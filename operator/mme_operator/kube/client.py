"""A small synchronous client of the Kubernetes API, for calls made from handler threads.

kopf's own client is asynchronous and lives in the operator's event loop; the handlers
run in threads. :class:`KubeClient` sends JSON over ``http.client`` with the connection
kopf logged in with (:class:`SharedLogin`: the login handler hands every new one over), so
a rotated token or a renewed ``exec`` credential serves both. An expired login is renewed
before a call, a 401 renews it once and the call is sent again. A refusal is
:class:`KubeApiError` with the status code and the API server's own message.
"""

from __future__ import annotations

import datetime
import http.client
import json
import ssl
import threading
import urllib.parse
from base64 import b64encode
from collections.abc import Callable
from typing import Any

import kopf

TIMEOUT_SECONDS = 30.0


class KubeApiError(Exception):
    """A call failed: ``status`` is the HTTP code and ``message`` the API server's own words;
    ``status`` None: no answer came (the message says why: refused, TLS, timeout)."""

    def __init__(
        self, method: str, path: str, status: int | None, reason: str, message: str
    ) -> None:
        answer = f"{status} {reason}" if status is not None else reason
        super().__init__(f"{method} {path}: {answer}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class SharedLogin:
    """The connection the operator uses now: set by kopf's login handler, renewed on demand.

    ``relogin`` logs in again (the same function kopf's login handler calls). Thread-safe:
    of several callers that saw the same credential fail, one logs in and the rest use it.
    """

    def __init__(self, relogin: Callable[[], kopf.ConnectionInfo]) -> None:
        self._relogin = relogin
        self._info: kopf.ConnectionInfo | None = None
        self._lock = threading.Lock()

    def set(self, info: kopf.ConnectionInfo) -> None:
        with self._lock:
            self._info = info

    def current(self) -> kopf.ConnectionInfo:
        """The connection to use: logged in first when there is none or it has expired."""
        with self._lock:
            if self._info is None or _expired(self._info):
                self._info = self._relogin()
            return self._info

    def renew(self, failed: kopf.ConnectionInfo) -> kopf.ConnectionInfo:
        """Log in again after ``failed`` was refused, unless another caller already did."""
        with self._lock:
            if self._info is failed or self._info is None:
                self._info = self._relogin()
            return self._info


def _expired(info: kopf.ConnectionInfo) -> bool:
    if info.expiration is None:
        return False
    expiration = info.expiration
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=datetime.UTC)
    return datetime.datetime.now(datetime.UTC) >= expiration


class KubeClient:
    """JSON calls to the API server over kept-alive connections, safe from many threads."""

    def __init__(self, login: SharedLogin, timeout: float = TIMEOUT_SECONDS) -> None:
        self.login = login
        self.timeout = timeout
        self._lock = threading.Lock()
        self._for: kopf.ConnectionInfo | None = None
        self._ssl: ssl.SSLContext | None = None
        self._idle: list[http.client.HTTPConnection] = []

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """Send one call; the answer's JSON. Raises :class:`KubeApiError` on a refusal.

        A 401 logs in again once (a rotated token, an expired plugin credential).
        """
        payload = None if body is None else json.dumps(body).encode()
        info = self.login.current()
        try:
            status, reason, data = self._send(info, method, path, payload, content_type)
            if status == 401:
                info = self.login.renew(info)
                status, reason, data = self._send(info, method, path, payload, content_type)
        except (OSError, http.client.HTTPException) as exc:  # ssl.SSLError is an OSError
            said = " ".join(str(exc).split()) or type(exc).__name__
            raise KubeApiError(method, path, None, "no answer", f"{info.server}: {said}") from None
        if status >= 400:
            raise KubeApiError(method, path, status, reason, _message(data, reason))
        answer: dict[str, Any] = json.loads(data) if data else {}
        return answer

    def close(self) -> None:
        with self._lock:
            for connection in self._idle:
                connection.close()
            self._idle.clear()

    def _send(
        self,
        info: kopf.ConnectionInfo,
        method: str,
        path: str,
        payload: bytes | None,
        content_type: str,
    ) -> tuple[int, str, bytes]:
        headers = {"Accept": "application/json", **info.as_http_headers()}
        if payload is not None:
            headers["Content-Type"] = content_type
        target = urllib.parse.urlsplit(info.server)
        url = target.path.rstrip("/") + path
        connection, reused = self._connection(info)
        try:
            try:
                connection.request(method, url, body=payload, headers=headers)
                response = connection.getresponse()
            except (
                http.client.RemoteDisconnected,
                BrokenPipeError,
                ConnectionResetError,
                ssl.SSLEOFError,
            ):
                # The server closed a kept-alive connection while it was idle (over TLS:
                # "EOF occurred in violation of protocol"): the call never reached it, so
                # sending it on a new connection is safe.
                if not reused:
                    raise
                connection.close()
                connection.request(method, url, body=payload, headers=headers)
                response = connection.getresponse()
            data = response.read()
        except BaseException:
            connection.close()
            raise
        self._release(info, connection)
        return response.status, response.reason, data

    def _connection(self, info: kopf.ConnectionInfo) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._for is not info:
                # A new login: its certificates may differ; drop connections of the old one.
                for old in self._idle:
                    old.close()
                self._idle.clear()
                self._for = info
                is_https = info.server.startswith("https")
                self._ssl = info.as_ssl_context() if is_https else None
            if self._idle:
                return self._idle.pop(), True
            context = self._ssl
        return _new_connection(info, context, self.timeout), False

    def _release(self, info: kopf.ConnectionInfo, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if self._for is info and connection.sock is not None:
                self._idle.append(connection)
                return
        connection.close()


def _new_connection(
    info: kopf.ConnectionInfo, context: ssl.SSLContext | None, timeout: float
) -> http.client.HTTPConnection:
    """A connection to the server, through ``info.proxy_url`` (HTTP CONNECT) when set."""
    target = urllib.parse.urlsplit(info.server)
    https = target.scheme == "https"
    port = target.port or (443 if https else 80)
    host = target.hostname or ""
    if not info.proxy_url:
        if https:
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
        return http.client.HTTPConnection(host, port, timeout=timeout)
    proxy = urllib.parse.urlsplit(info.proxy_url)
    proxy_host, proxy_port = proxy.hostname or "", proxy.port or 80
    connection: http.client.HTTPConnection
    if https:
        connection = http.client.HTTPSConnection(
            proxy_host, proxy_port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(proxy_host, proxy_port, timeout=timeout)
    headers = {}
    if proxy.username:
        credentials = f"{urllib.parse.unquote(proxy.username)}:"
        credentials += urllib.parse.unquote(proxy.password or "")
        headers["Proxy-Authorization"] = "Basic " + b64encode(credentials.encode()).decode()
    connection.set_tunnel(host, port, headers=headers)
    return connection


def _message(data: bytes, reason: str) -> str:
    """The ``message`` of the API server's Status answer, else the start of the body."""
    try:
        status = json.loads(data)
    except ValueError:
        status = None
    if isinstance(status, dict) and status.get("message"):
        return str(status["message"])
    return " ".join(data[:200].decode(errors="replace").split()) or reason

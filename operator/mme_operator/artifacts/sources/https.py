"""``https://host/path``: one file (or a ``.tar.gz``) from a web server.

Only ``https://`` is accepted (plain ``http://`` only to loopback, for tests), redirects
may not downgrade, every socket operation has a timeout, and the body is counted against
the size limit as it streams. The fingerprint is the ETag or Last-Modified from a HEAD;
servers that answer neither (presigned URLs refuse HEAD) are fingerprinted by content.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import posixpath
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mme_operator.artifacts.archive_safety import archive_limits
from mme_operator.artifacts.errors import (
    ArtifactError,
    InvalidSourceError,
    SourceAccessError,
    SourceChangedError,
    SourceFetchError,
    SourceNotFoundError,
)
from mme_operator.artifacts.sources.archive import archive_content
from mme_operator.artifacts.sources.base import (
    COPY_CHUNK,
    SourceContent,
    SourceEntry,
    check_size,
    is_archive_name,
    open_local,
    temp_path,
)
from mme_operator.artifacts.sources.network import (
    AddressPolicy,
    BlockedAddressError,
    ConnectFailedError,
    PinnedHTTPHandler,
    PinnedHTTPSHandler,
)

_LOCAL_HOSTS = ("localhost",)


def check_url_allowed(url: str, allow_insecure_localhost: bool) -> None:
    """Refuse what is not ``https://host[:port]/...`` (one line, never the URL's secrets).

    Where the host may be reached is checked at connect time (see ``network.py``).
    """
    try:
        parsed = urllib.parse.urlsplit(url)
        port = parsed.port
    except ValueError:
        raise InvalidSourceError("source URL is malformed (e.g. its port is not 1-65535)") from None
    if parsed.username is not None or parsed.password is not None or "@" in parsed.netloc:
        raise InvalidSourceError("source URL holds user info (user:password@): refused")
    if port == 0:
        raise InvalidSourceError("source URL has port 0: refused")
    scheme = parsed.scheme.lower()
    if scheme == "https" and parsed.hostname:
        return
    if scheme == "http" and allow_insecure_localhost and parsed.hostname:
        host = parsed.hostname
        try:
            local = ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = host in _LOCAL_HOSTS
        if local:
            return
    raise InvalidSourceError(f"source {_display_url(url)}: only https:// URLs are allowed")


def _display_url(url: str) -> str:
    """The URL without query, fragment and credentials: presigned URLs change on every
    signing and carry secrets, neither of which belongs in a fingerprint or a log line."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    try:
        port = p.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path, "", ""))


class _SchemeCheckingRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, allow_insecure_localhost: bool) -> None:
        self.allow_insecure_localhost = allow_insecure_localhost

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        # A redirect must not downgrade to plain http (or leave loopback in tests).
        check_url_allowed(newurl, self.allow_insecure_localhost)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class HttpsSource:
    """One file served over ``https://`` (a ``.tar.gz`` URL is read as an archive).

    ``timeout`` bounds every read, ``connect_timeout`` the connect and ``deadline`` the
    whole download, so a stalled server fails the download instead of hanging the
    reconcile. Connections go only where ``policy`` allows, to the address it checked
    (see ``network.py``); no proxy from the environment is used (it would connect on the
    source's behalf, past the check).
    """

    def __init__(
        self,
        uri: str,
        *,
        max_bytes: int,
        max_expansion_ratio: float | None = None,
        timeout: float,
        connect_timeout: float | None = None,
        deadline: float | None = None,
        policy: AddressPolicy | None = None,
        allow_insecure_localhost: bool = False,
    ) -> None:
        check_url_allowed(uri, allow_insecure_localhost)
        self._uri = uri
        self.max_bytes = max_bytes
        self.limits = archive_limits(max_bytes, max_expansion_ratio)
        self.timeout = timeout
        self.deadline = deadline
        if policy is None:
            # Tests' plain http to loopback reaches loopback; otherwise public addresses only.
            policy = AddressPolicy.from_setting("", allow_loopback=allow_insecure_localhost)
        connect = connect_timeout if connect_timeout is not None else timeout
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            PinnedHTTPSHandler(policy, connect),
            PinnedHTTPHandler(policy, connect),
            _SchemeCheckingRedirects(allow_insecure_localhost),
        )
        self._display = _display_url(uri)
        self._fingerprint: str | None = None
        self._etag: str | None = None
        self._content_sha256: str | None = None

    @property
    def uri(self) -> str:
        return self._uri

    def _request(self, method: str) -> Any:
        request = urllib.request.Request(self._uri, method=method)
        try:
            return self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise self._http_error(exc.code) from exc
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, BlockedAddressError):
                raise InvalidSourceError(f"source {self._display}: {reason}") from None
            if isinstance(reason, ConnectFailedError):
                raise SourceFetchError(f"fetching {self._display} failed: {reason}") from None
            if isinstance(reason, InvalidSourceError):  # a redirect refused
                raise reason from None
            raise SourceFetchError(self._no_answer()) from None
        except (TimeoutError, ConnectionError, OSError):
            raise SourceFetchError(self._no_answer()) from None

    def _no_answer(self) -> str:
        # One message for a TLS handshake or an answer that did not come (or broke off).
        return f"fetching {self._display} failed: no usable answer within {self.timeout:g}s"

    def _http_error(self, code: int) -> ArtifactError:
        if code in (404, 410):
            return SourceNotFoundError(f"source {self._display} does not exist (HTTP {code})")
        if code in (401, 403):
            return SourceAccessError(f"access to {self._display} denied (HTTP {code})")
        return SourceFetchError(f"fetching {self._display} failed (HTTP {code})")

    def _check_length(self, headers: Any) -> int | None:
        length = headers.get("Content-Length")
        if length is None:
            return None
        size = int(length)
        check_size(self._display, size, self.max_bytes)
        return size

    def _stream(self, response: Any, sink: Callable[[bytes], object]) -> str:
        """Copy the body to ``sink`` with the size limit and timeout; return its sha256."""
        digest = hashlib.sha256()
        total = 0
        ends = time.monotonic() + self.deadline if self.deadline else None
        try:
            while chunk := response.read(COPY_CHUNK):
                if ends is not None and time.monotonic() > ends:
                    raise SourceFetchError(
                        f"downloading {self._display} took longer than its deadline "
                        f"({self.deadline:g}s, MME_HTTPS_DEADLINE_SECONDS)"
                    )
                total += len(chunk)
                check_size(self._display, total, self.max_bytes)
                digest.update(chunk)
                sink(chunk)
        except (TimeoutError, ConnectionError, OSError):
            raise SourceFetchError(
                f"downloading {self._display} failed after {total} bytes "
                f"(read timeout {self.timeout:g}s passed, or the connection broke)"
            ) from None
        return digest.hexdigest()

    def size_bytes(self) -> int | None:
        """Content-Length from a HEAD; None when the server does not say (or refuses HEAD)."""
        try:
            with self._request("HEAD") as response:
                return self._check_length(response.headers)
        except (SourceAccessError, SourceFetchError):
            return None

    def fingerprint(self) -> str:
        """URL with ETag or Last-Modified and length from a HEAD; else a content hash."""
        if self._fingerprint is not None:
            return self._fingerprint
        try:
            with self._request("HEAD") as response:
                headers = response.headers
        except (SourceAccessError, SourceFetchError):
            # Presigned URLs are signed for GET only and some servers refuse HEAD: the
            # content hash below is slower but always works.
            headers = None
        etag = headers.get("ETag") if headers is not None else None
        modified = headers.get("Last-Modified") if headers is not None else None
        if headers is not None and (etag or modified):
            size = self._check_length(headers)
            self._etag = etag
            validator = f"etag={etag}" if etag else f"last-modified={modified}"
            self._fingerprint = f"{self._display} {validator} size={size}"
        else:
            with self._request("GET") as response:
                self._check_length(response.headers)
                self._content_sha256 = self._stream(response, lambda _chunk: None)
            self._fingerprint = f"{self._display} sha256={self._content_sha256}"
        return self._fingerprint

    def _download(self, dest: Path) -> None:
        with self._request("GET") as response, open(dest, "wb") as out:
            self._check_length(response.headers)
            etag = response.headers.get("ETag")
            content_sha256 = self._stream(response, out.write)
        if (self._etag and etag and etag != self._etag) or (
            self._content_sha256 and content_sha256 != self._content_sha256
        ):
            raise SourceChangedError(f"source {self._display} changed while it was read; retrying")

    @contextlib.contextmanager
    def open_content(self, workdir: Path) -> Iterator[SourceContent]:
        """Download the file to ``workdir`` (streamed to disk), then read it from there."""
        self.fingerprint()
        name = posixpath.basename(urllib.parse.urlsplit(self._uri).path) or "download"
        path = temp_path(workdir, suffix=".tar.gz" if is_archive_name(name) else "")
        try:
            self._download(path)
            if is_archive_name(name):
                with archive_content(path, self._display, self.limits) as content:
                    yield content
            else:
                size = path.stat().st_size
                entry = SourceEntry(path=name, size=size, open=lambda: open_local(path))
                yield SourceContent(single_file=True, entries=[entry])
        finally:
            path.unlink(missing_ok=True)

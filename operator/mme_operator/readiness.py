"""Readiness: whether the operator can talk to the Kubernetes API server right now.

kopf's liveness endpoint answers 200 while the event loop runs, even when every API call
fails (a wrong kubeconfig, a network policy, an expired token): Kubernetes should not restart
such a pod, but it should not call it ready either. :class:`ApiReadiness` asks the API server
for one ModelEndpoint (``limit=1``) every ``interval`` seconds, which proves the address, the
certificates, the credentials, the RBAC and the CRD at once, and serves the answer on
``/readyz`` (200 or 503 with the reason in one line). Probes are not logged; only a change
(reachable <-> unreachable) is.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
import time
from dataclasses import dataclass, field

import aiohttp
import aiohttp.web
import kopf

from mme_operator.api import GROUP, PLURAL, VERSION

log = logging.getLogger("mme_operator.readiness")


class KubeConfigError(Exception):
    """No Kubernetes configuration can be loaded (one line says which were tried)."""


def check_kube_config() -> None:
    """Raise :class:`KubeConfigError` unless in-cluster or kubeconfig configuration loads.

    The same order as kopf's ``login_via_client``: the pod's service account, else the
    kubeconfig (``KUBECONFIG`` or ``~/.kube/config``).
    """
    import kubernetes.config

    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        return
    except kubernetes.config.ConfigException as exc:
        in_cluster = _one_line(exc)
    try:
        kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
    except Exception as exc:  # the kubernetes client raises many kinds for a bad file
        raise KubeConfigError(
            f"no Kubernetes configuration: not in a cluster ({in_cluster}) and no usable "
            f"kubeconfig ({_one_line(exc)}); set KUBECONFIG or run in a pod with a service "
            "account"
        ) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    """The TLS settings of a kopf connection, for aiohttp (True: system defaults)."""
    if not info.server.startswith("https"):
        return True
    cadata = None
    if info.ca_data:
        raw = info.ca_data if isinstance(info.ca_data, bytes) else info.ca_data.encode()
        # kubeconfig carries base64 of PEM; kopf may hand either.
        cadata = (
            raw.decode() if raw.lstrip().startswith(b"-----") else base64.b64decode(raw).decode()
        )
    context = ssl.create_default_context(cafile=info.ca_path, cadata=cadata)
    if info.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if info.certificate_path and info.private_key_path:
        context.load_cert_chain(info.certificate_path, info.private_key_path)
    return context


@dataclass
class ApiReadiness:
    """Ready when the last check of the API server, at most ``3 * interval`` ago, succeeded."""

    interval: float = 10.0
    namespaces: list[str] = field(default_factory=list)
    login: kopf.ConnectionInfo | None = None
    """The connection kopf logged in with (set by the login handler)."""
    ready: bool | None = None
    """The last answer; None before the first check (so that the first one is logged)."""
    reason: str = "the API server has not been checked yet"
    checked_at: float = 0.0

    @property
    def path(self) -> str:
        base = f"/apis/{GROUP}/{VERSION}"
        if len(self.namespaces) == 1:
            return f"{base}/namespaces/{self.namespaces[0]}/{PLURAL}?limit=1"
        return f"{base}/{PLURAL}?limit=1"

    def is_ready(self) -> tuple[bool, str]:
        """Ready now, and why not when not."""
        if self.ready and time.monotonic() - self.checked_at > 3 * self.interval:
            return False, f"no successful check of the API server for {3 * self.interval:g}s"
        return bool(self.ready), self.reason

    async def check(self) -> None:
        """Ask the API server once; record the answer and log a change."""
        ready, reason = await self._ask()
        if ready != self.ready:
            if ready:
                log.info("API server reachable: %s", reason)
            else:
                log.warning("API server unreachable; not ready: %s", reason)
        self.ready, self.reason, self.checked_at = ready, reason, time.monotonic()

    async def _ask(self) -> tuple[bool, str]:
        info = self.login
        if info is None:
            return False, "not logged in to the API server yet"
        headers = {}
        if info.token:
            headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
        auth = aiohttp.BasicAuth(info.username, info.password or "") if info.username else None
        url = info.server.rstrip("/") + self.path
        timeout = aiohttp.ClientTimeout(total=max(1.0, min(self.interval, 10.0)))
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url, headers=headers, auth=auth, ssl=ssl_context(info)) as response,
            ):
                if response.status == 200:
                    return True, f"GET {self.path} answered 200"
                body = " ".join((await response.text())[:200].split())
                return False, f"GET {self.path} answered {response.status}: {body}"
        except (aiohttp.ClientError, OSError, TimeoutError, ssl.SSLError) as exc:
            return False, f"GET {info.server}: {type(exc).__name__}: {_one_line(exc)}"

    async def serve(self, host: str, port: int) -> None:
        """Serve ``/readyz`` on ``host:port`` and check every ``interval`` until cancelled."""
        app = aiohttp.web.Application()
        app.router.add_get("/readyz", self._readyz)
        # No access log: a probe every few seconds is not news.
        runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            await aiohttp.web.TCPSite(runner, host, port).start()
            while True:
                await self.check()
                # Not ready yet (e.g. before kopf's first login): look again soon.
                await asyncio.sleep(self.interval if self.ready else min(self.interval, 1.0))
        finally:
            with contextlib.suppress(Exception):
                await runner.cleanup()

    async def _readyz(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        ready, reason = self.is_ready()
        return aiohttp.web.Response(status=200 if ready else 503, text=f"{reason}\n")

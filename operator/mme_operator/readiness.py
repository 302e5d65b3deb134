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
import contextlib
import logging
import ssl
import time
from dataclasses import dataclass, field

import aiohttp
import aiohttp.web
import kopf

from mme_operator.api import GROUP, PLURAL, VERSION
from mme_operator.kube import KubeLoginError, SharedLogin, login

log = logging.getLogger("mme_operator.readiness")


class KubeConfigError(Exception):
    """No Kubernetes configuration can be loaded (one line says which were tried)."""


def check_kube_config() -> kopf.ConnectionInfo:
    """The login the operator will use; :class:`KubeConfigError` when there is none.

    The same login as the operator's (:func:`mme_operator.kube.login`): the pod's service
    account, else the kubeconfig, its exec plugin run and its certificates loaded.
    """
    try:
        return login()
    except KubeLoginError as exc:
        raise KubeConfigError(str(exc)) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    """The TLS settings of a kopf connection, for aiohttp (True: system defaults)."""
    if not info.server.startswith("https"):
        return True
    # kopf's own: CA and client certificate as paths or data (through private temp files).
    return info.as_ssl_context()


@dataclass
class ApiReadiness:
    """Ready when the last check of the API server, at most ``3 * interval`` ago, succeeded."""

    interval: float = 10.0
    namespaces: list[str] = field(default_factory=list)
    login: kopf.ConnectionInfo | None = None
    """The connection kopf logged in with (set by the login handler)."""
    shared: SharedLogin | None = None
    """The operator's shared login (see :mod:`mme_operator.kube.client`); None: ``login``
    alone, never renewed here."""
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
        if self.shared is None:
            return (await self._get(info))[:2]
        # The operator's shared login: renewed here when it has expired or is refused, as
        # kopf renews it only on its own next request (a watch may run for half an hour).
        try:
            info = await asyncio.to_thread(self.shared.current)
            ready, reason, status = await self._get(info)
            if status == 401:
                info = await asyncio.to_thread(self.shared.renew, info)
                ready, reason, status = await self._get(info)
        except KubeLoginError as exc:
            return False, f"logging in again failed: {exc}"
        return ready, reason

    async def _get(self, info: kopf.ConnectionInfo) -> tuple[bool, str, int | None]:
        url = info.server.rstrip("/") + self.path
        timeout = aiohttp.ClientTimeout(total=max(1.0, min(self.interval, 10.0)))
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(
                    url,
                    headers=info.as_http_headers(),
                    ssl=ssl_context(info),
                    proxy=info.proxy_url,
                ) as response,
            ):
                if response.status == 200:
                    return True, f"GET {self.path} answered 200", 200
                body = " ".join((await response.text())[:200].split())
                answer = f"GET {self.path} answered {response.status}: {body}"
                return False, answer, response.status
        except (aiohttp.ClientError, OSError, TimeoutError, ssl.SSLError) as exc:
            return False, f"GET {info.server}: {type(exc).__name__}: {_one_line(exc)}", None

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

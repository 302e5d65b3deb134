"""Running the operator: kopf with our handlers, metrics and logging, in-cluster or local."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import kopf

from mme_operator.attachments import ModelAttachments
from mme_operator.configmaps import ConfigMapWriter
from mme_operator.handlers import OperatorContext, register
from mme_operator.kube import KubeClient, KubeLoginError, SharedLogin
from mme_operator.kube import login as kube_login
from mme_operator.readiness import ApiReadiness
from mme_operator.sagemaker.clients import AwsClients, make_clients
from mme_operator.sagemaker.stopping import stop_aws_calls
from mme_operator.settings import Settings

log = logging.getLogger("mme_operator.runner")


@dataclass
class OperatorOptions:
    """How to run: which namespaces, which API server, which liveness endpoint."""

    namespaces: Collection[str] = ()
    login: kopf.ConnectionInfo | None = None
    """Talk to this API server; None: the pod's service account, else the kubeconfig
    (:func:`mme_operator.kube.login`)."""
    first_login: kopf.ConnectionInfo | None = None
    """A login made just before (``run``'s check that one is possible): kopf's first login
    takes it while it has not expired, so an exec plugin runs once at start; later logins
    (expiry, 401) are made afresh."""
    liveness: str | None = None
    peering: str | None = None
    """kopf peering object name; None runs standalone (one replica, Recreate strategy)."""
    readiness: str | None = None
    """``host:port`` to serve ``/readyz`` on (API server reachable); None: not served."""
    make_clients: Callable[[str, Settings], AwsClients] = make_clients
    stop_flag: asyncio.Event | threading.Event | None = None
    ready_flag: asyncio.Event | threading.Event | None = None
    stop_aws_calls_on_exit: bool = False
    """When kopf has stopped, refuse every further AWS call and retry of this process (its
    handler threads then end at their next call; see :mod:`mme_operator.sagemaker.stopping`).
    For a process that runs one operator (``mme-operator run``)."""


def build_registry(
    settings: Settings, options: OperatorOptions, readiness: ApiReadiness | None = None
) -> kopf.OperatorRegistry:
    """A registry with the ModelEndpoint handlers and the right login.

    The connection kopf logs in with is handed to ``readiness`` and to the ConfigMap writer
    too (every re-login: tokens of service accounts rotate, exec credentials expire), so
    that they ask the API server as kopf does.
    """
    registry = kopf.OperatorRegistry()

    def login_now(trust_env: bool = False) -> kopf.ConnectionInfo:
        return options.login or kube_login(trust_env=trust_env)

    shared = SharedLogin(login_now)
    if readiness is not None:
        readiness.shared = shared

    first_pending = options.first_login is not None
    if options.first_login is not None:
        shared.set(options.first_login)

    @kopf.on.login(registry=registry, id="login")
    def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
        nonlocal first_pending
        try:
            if first_pending:
                first_pending = False
                info = shared.current()  # the checked login while it is valid, else a new one
            else:
                info = login_now(settings.networking.trust_env)
        except KubeLoginError as exc:
            # One line in the log, no traceback; kopf tries again after the delay.
            raise kopf.TemporaryError(str(exc), delay=10) from None
        shared.set(info)
        if readiness is not None:
            readiness.login = info
        return info

    kube = KubeClient(shared)
    context = OperatorContext(
        settings,
        make=options.make_clients,
        configmaps=ConfigMapWriter(kube),
        models=ModelAttachments(kube),
    )
    register(registry, context)
    return registry


async def run_operator(settings: Settings, options: OperatorOptions) -> None:
    """Run the operator until ``options.stop_flag`` is set (or forever)."""
    namespaces = list(options.namespaces)
    readiness = ApiReadiness(namespaces=namespaces) if options.readiness else None
    registry = build_registry(settings, options, readiness)
    serving = None
    if readiness is not None and options.readiness:
        host, _, port = options.readiness.rpartition(":")
        # An IPv6 address comes in brackets ([::]:8082); aiohttp binds the bare address.
        serving = asyncio.create_task(readiness.serve(host.strip("[]") or "0.0.0.0", int(port)))
    stop_flag, ready_flag, takeover = options.stop_flag, options.ready_flag, None
    if options.stop_aws_calls_on_exit:
        stop_flag, ready_flag = asyncio.Event(), asyncio.Event()
        takeover = asyncio.create_task(_stop_aws_calls_on_signal(stop_flag, ready_flag))
    try:
        await kopf.operator(
            registry=registry,
            standalone=options.peering is None,
            peering_name=options.peering,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=options.liveness,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        if takeover is not None:
            takeover.cancel()
        if serving is not None:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving


async def _stop_aws_calls_on_signal(stop_flag: asyncio.Event, ready_flag: asyncio.Event) -> None:
    """On SIGTERM / SIGINT: no further AWS call or retry, then kopf stops (via its stop flag).

    kopf installs its own signal handlers before it reports ready, and stops by them; but it
    then waits for every handler thread, and one backing off against an AWS that does not
    answer would hold the process past the pod's grace period. Ours replace kopf's once it is
    ready, and make those threads end at their next AWS call
    (:mod:`mme_operator.sagemaker.stopping`).
    """
    await ready_flag.wait()
    loop = asyncio.get_running_loop()

    def stop(sig: signal.Signals) -> None:
        log.info("Signal %s received: stopping; no further AWS call or retry", sig.name)
        stop_aws_calls()
        stop_flag.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)


def operator_thread(
    settings: Settings, options: OperatorOptions
) -> tuple[threading.Thread, threading.Event]:
    """Start the operator in a thread with its own event loop; set the event to stop it."""
    stop = threading.Event()
    options.stop_flag = stop

    def main() -> None:
        try:
            asyncio.run(run_operator(settings, options))
        except Exception:  # pragma: no cover - logged for whoever runs it
            logging.getLogger("mme_operator").exception("The operator stopped with an error")

    thread = threading.Thread(target=main, name="mme-operator", daemon=True)
    thread.start()
    return thread, stop

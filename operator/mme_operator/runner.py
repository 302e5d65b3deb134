"""Running the operator: kopf with our handlers, metrics and logging, in-cluster or local."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import kopf

from mme_operator.configmaps import ConfigMapWriter, api_client_for
from mme_operator.handlers import OperatorContext, register
from mme_operator.readiness import ApiReadiness
from mme_operator.sagemaker.clients import AwsClients, make_clients
from mme_operator.settings import Settings


@dataclass
class OperatorOptions:
    """How to run: which namespaces, which API server, which liveness endpoint."""

    namespaces: Collection[str] = ()
    login: kopf.ConnectionInfo | None = None
    """Talk to this API server; None uses kubeconfig or the in-cluster service account."""
    liveness: str | None = None
    peering: str | None = None
    """kopf peering object name; None runs standalone (one replica, Recreate strategy)."""
    readiness: str | None = None
    """``host:port`` to serve ``/readyz`` on (API server reachable); None: not served."""
    make_clients: Callable[[str, Settings], AwsClients] = make_clients
    stop_flag: asyncio.Event | threading.Event | None = None
    ready_flag: asyncio.Event | threading.Event | None = None


def build_registry(
    settings: Settings, options: OperatorOptions, readiness: ApiReadiness | None = None
) -> kopf.OperatorRegistry:
    """A registry with the ModelEndpoint handlers and the right login.

    The connection kopf logs in with is handed to ``readiness`` too (every re-login: tokens
    of service accounts rotate), so that readiness asks the API server as kopf does.
    """
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # Else the kubernetes client's own logic: in-cluster service account, else kubeconfig.
        info = options.login or kopf.login_via_client(**kwargs)
        if readiness is not None:
            readiness.login = info
        return info

    configmaps = ConfigMapWriter(api_client_for(options.login))
    register(registry, OperatorContext(settings, make=options.make_clients, configmaps=configmaps))
    return registry


async def run_operator(settings: Settings, options: OperatorOptions) -> None:
    """Run the operator until ``options.stop_flag`` is set (or forever)."""
    namespaces = list(options.namespaces)
    readiness = ApiReadiness(namespaces=namespaces) if options.readiness else None
    registry = build_registry(settings, options, readiness)
    serving = None
    if readiness is not None and options.readiness:
        host, _, port = options.readiness.rpartition(":")
        serving = asyncio.create_task(readiness.serve(host or "0.0.0.0", int(port)))
    try:
        await kopf.operator(
            registry=registry,
            standalone=options.peering is None,
            peering_name=options.peering,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=options.liveness,
            stop_flag=options.stop_flag,
            ready_flag=options.ready_flag,
        )
    finally:
        if serving is not None:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving


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

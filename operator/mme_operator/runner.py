"""Running the operator: kopf with our handlers, metrics and logging, in-cluster or local."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import kopf

from mme_operator.handlers import OperatorContext, register
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
    make_clients: Callable[[str, Settings], AwsClients] = make_clients
    stop_flag: asyncio.Event | threading.Event | None = None
    ready_flag: asyncio.Event | threading.Event | None = None


def build_registry(settings: Settings, options: OperatorOptions) -> kopf.OperatorRegistry:
    """A registry with the ModelEndpoint handlers and the right login."""
    registry = kopf.OperatorRegistry()
    if options.login is None:
        # The kubernetes client's own logic: in-cluster service account, else kubeconfig.
        kopf.on.login(registry=registry)(kopf.login_via_client)
    else:
        info = options.login

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return info

    register(registry, OperatorContext(settings, make=options.make_clients))
    return registry


async def run_operator(settings: Settings, options: OperatorOptions) -> None:
    """Run the operator until ``options.stop_flag`` is set (or forever)."""
    registry = build_registry(settings, options)
    namespaces = list(options.namespaces)
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

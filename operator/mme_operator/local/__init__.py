"""Local stand-ins for AWS and Kubernetes: tests, the demo, and ``mme-operator local-aws``.

``LocalAWS`` is one HTTP endpoint that boto3 can use for SageMaker (implemented here,
with the real endpoint lifecycle and Triton MME data plane), S3, application-autoscaling
and CloudWatch (moto), with fault injection and call counting for tests.

Nothing in production imports this package. Its dependencies come with the ``local``
extra; importing the package itself is cheap (the names below load on first use), so the
command line can offer ``demo`` and ``local-aws`` and say what to install when they lack it.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from mme_operator.extras import install_command

if TYPE_CHECKING:
    from mme_operator.local.faults import CallCounter, FaultController
    from mme_operator.local.server import (
        DUMMY_ACCESS_KEY,
        DUMMY_SECRET_KEY,
        LocalAWS,
        serve_forever,
    )
    from mme_operator.local.triton import TritonServer, find_triton

# The distributions of the ``local`` extra, by the module each provides.
LOCAL_EXTRA_MODULES = {"moto": "moto[server]", "flask": "moto[server]", "kmock": "kmock"}

_EXPORTS = {
    "CallCounter": "faults",
    "FaultController": "faults",
    "DUMMY_ACCESS_KEY": "server",
    "DUMMY_SECRET_KEY": "server",
    "LocalAWS": "server",
    "serve_forever": "server",
    "TritonServer": "triton",
    "find_triton": "triton",
}

__all__ = [
    "DUMMY_ACCESS_KEY",
    "DUMMY_SECRET_KEY",
    "CallCounter",
    "FaultController",
    "LocalAWS",
    "TritonServer",
    "find_triton",
    "missing_local_extra",
    "serve_forever",
]


def missing_local_extra(command: str) -> str | None:
    """One line saying what to install for ``command``, or None when the ``local`` extra is here."""
    missing = sorted(
        {
            dist
            for module, dist in LOCAL_EXTRA_MODULES.items()
            if not importlib.util.find_spec(module)
        }
    )
    if not missing:
        return None
    return (
        f"`mme-operator {command}` needs the local stand-ins ({', '.join(missing)} missing): "
        f"{install_command('local,triton')}"
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)

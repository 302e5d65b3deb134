"""Fault injection for the local SageMaker: throttling, server errors, latency, failures.

Rules apply to SageMaker control-plane operations (``CreateEndpoint``, ...) and to
``InvokeEndpoint``, never to the S3 / autoscaling / CloudWatch calls moto answers, so a
test can make SageMaker misbehave while the artifacts still upload.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from mme_operator.local.errors import SERVER_ERRORS, AwsError, throttling


@dataclass
class ErrorRule:
    """Answer ``percent`` % of matching calls with an error instead of serving them."""

    code: str
    status: int
    message: str
    percent: float = 100.0
    operations: frozenset[str] | None = None
    """Operation names it applies to; None: every SageMaker operation."""
    remaining: int | None = None
    """How many more calls it may fail; None: no limit."""

    def matches(self, operation: str) -> bool:
        """Whether this rule concerns ``operation`` and still has failures left."""
        if self.remaining is not None and self.remaining <= 0:
            return False
        return self.operations is None or operation in self.operations


@dataclass
class LatencyRule:
    """Delay matching calls by ``seconds`` before they are served."""

    seconds: float
    operations: frozenset[str] | None = None


@dataclass
class _State:
    errors: list[ErrorRule] = field(default_factory=list)
    latencies: list[LatencyRule] = field(default_factory=list)
    fail_next_create: list[str] = field(default_factory=list)
    fail_next_update: list[str] = field(default_factory=list)
    fail_endpoints: dict[str, str] = field(default_factory=dict)


def _operations(operations: Iterable[str] | str | None) -> frozenset[str] | None:
    if operations is None:
        return None
    if isinstance(operations, str):
        return frozenset({operations})
    return frozenset(operations)


class FaultController:
    """Faults to inject, set per test from Python or over ``POST /_local/faults``.

    Thread-safe: the server's request threads read it while a test changes it.
    """

    def __init__(self, seed: int | None = 0) -> None:
        self._lock = threading.Lock()
        self._state = _State()
        # Seeded so that "throttle 50%" fails the same calls on every run of a test.
        self._random = random.Random(seed)

    def throttle(
        self,
        percent: float = 100.0,
        operations: Iterable[str] | str | None = None,
        count: int | None = None,
        message: str = "Rate exceeded",
    ) -> None:
        """Answer ``percent`` % of calls (to ``operations``) with ``ThrottlingException``.

        ``count`` limits how many calls it fails in all; None: until ``reset()``.
        """
        self.error("ThrottlingException", message, 400, percent, operations, count)

    def server_error(
        self,
        code: str = "InternalFailure",
        percent: float = 100.0,
        operations: Iterable[str] | str | None = None,
        count: int | None = None,
        message: str = "An internal error occurred.",
    ) -> None:
        """Answer calls with a 5xx error: ``InternalFailure`` (500) or ``ServiceUnavailable`` (503)."""
        if code not in SERVER_ERRORS:
            raise ValueError(f"unknown server error {code!r}; one of {sorted(SERVER_ERRORS)}")
        self.error(code, message, SERVER_ERRORS[code], percent, operations, count)

    def error(
        self,
        code: str,
        message: str,
        status: int = 400,
        percent: float = 100.0,
        operations: Iterable[str] | str | None = None,
        count: int | None = None,
    ) -> None:
        """Answer calls with any AWS error, e.g. ``ResourceLimitExceeded``."""
        rule = ErrorRule(code, status, message, float(percent), _operations(operations), count)
        with self._lock:
            self._state.errors.append(rule)

    def latency(self, seconds: float, operations: Iterable[str] | str | None = None) -> None:
        """Delay calls (to ``operations``) by ``seconds``."""
        with self._lock:
            self._state.latencies.append(LatencyRule(float(seconds), _operations(operations)))

    def fail_next_create(self, reason: str = "Injected failure: CreateEndpoint failed.") -> None:
        """Make the next ``CreateEndpoint`` end ``Failed`` with ``reason``."""
        with self._lock:
            self._state.fail_next_create.append(reason)

    def fail_next_update(self, reason: str = "Injected failure: UpdateEndpoint failed.") -> None:
        """Make the next ``UpdateEndpoint`` fail and roll back with ``reason``."""
        with self._lock:
            self._state.fail_next_update.append(reason)

    def fail_endpoint(
        self, endpoint_name: str, reason: str = "Injected failure: the endpoint failed."
    ) -> None:
        """Make ``endpoint_name`` go ``Failed`` as soon as it is (or next is) ``InService``."""
        with self._lock:
            self._state.fail_endpoints[endpoint_name.lower()] = reason

    def reset(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._state = _State()

    def snapshot(self) -> dict[str, Any]:
        """The faults now set, as JSON-ready data (``GET /_local/faults``)."""
        with self._lock:
            data = asdict(self._state)
        for rule in data["errors"] + data["latencies"]:
            if rule["operations"] is not None:
                rule["operations"] = sorted(rule["operations"])
        return data

    def apply(self, data: dict[str, Any]) -> None:
        """Set a fault from JSON: ``{"action": "throttle", "percent": 100, ...}``.

        ``action`` names one of this class's methods (``throttle``, ``server_error``,
        ``error``, ``latency``, ``fail_next_create``, ``fail_next_update``,
        ``fail_endpoint``, ``reset``); the other keys are its keyword arguments.
        """
        data = dict(data)
        action = data.pop("action", None)
        if action not in _ACTIONS:
            raise ValueError(f"unknown fault action {action!r}; one of {sorted(_ACTIONS)}")
        getattr(self, action)(**data)

    # The server's side.

    def delay_for(self, operation: str) -> float:
        """Seconds to wait before serving ``operation``."""
        with self._lock:
            return sum(
                rule.seconds
                for rule in self._state.latencies
                if rule.operations is None or operation in rule.operations
            )

    def error_for(self, operation: str) -> AwsError | None:
        """The error to answer ``operation`` with, if a rule fires for this call."""
        with self._lock:
            for rule in self._state.errors:
                if rule.matches(operation) and self._random.uniform(0, 100) < rule.percent:
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    if rule.code == "ThrottlingException":
                        return throttling(rule.message)
                    return AwsError(rule.code, rule.message, rule.status)
        return None

    def take_create_failure(self) -> str | None:
        """The reason the CreateEndpoint being served must fail, consuming it."""
        with self._lock:
            return self._state.fail_next_create.pop(0) if self._state.fail_next_create else None

    def take_update_failure(self) -> str | None:
        """The reason the UpdateEndpoint being served must fail, consuming it."""
        with self._lock:
            return self._state.fail_next_update.pop(0) if self._state.fail_next_update else None

    def take_endpoint_failure(self, endpoint_name: str) -> str | None:
        """The reason an InService ``endpoint_name`` must now go Failed, consuming it."""
        with self._lock:
            return self._state.fail_endpoints.pop(endpoint_name.lower(), None)


_ACTIONS = frozenset(
    {
        "throttle",
        "server_error",
        "error",
        "latency",
        "fail_next_create",
        "fail_next_update",
        "fail_endpoint",
        "reset",
    }
)


class CallCounter:
    """Calls received per operation, retries included (each HTTP attempt counts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def record(self, operation: str) -> None:
        """Count one call of ``operation``."""
        with self._lock:
            self._counts[operation] += 1

    def snapshot(self) -> Counter[str]:
        """A copy of the counts."""
        with self._lock:
            return Counter(self._counts)

    def reset(self) -> None:
        """Forget every call."""
        with self._lock:
            self._counts.clear()

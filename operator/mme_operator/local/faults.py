"""Fault injection for the local SageMaker and S3: throttling, server errors, latency, failures.

Rules apply to SageMaker control-plane operations (``CreateEndpoint``, ...) and to
``InvokeEndpoint`` by default; a rule with ``service="s3"`` applies to S3 operations
(``PutObject``, ``DeleteObject``, ...) instead, and one with
``service="application-autoscaling"`` to Application Auto Scaling's
(``RegisterScalableTarget``, ...), so a test can make one service misbehave while the
others work. CloudWatch is never faulted.

A rule fails a call *before* it runs (nothing happened, the caller is told so), or with
``after=True`` *after* it took effect: the model was created, the object stored, and still
the answer is a 5xx, or no answer in time (``delay_seconds`` longer than the client's read
timeout). That is what a lost response looks like on the wire, and what a retry must
survive without duplicating or losing anything.
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
    after: bool = False
    """Fail after the call took effect (the answer is lost, not the effect)."""
    service: str = "sagemaker"
    """``sagemaker`` (control plane and InvokeEndpoint), ``s3`` or ``application-autoscaling``."""
    delay_seconds: float = 0.0
    """Hold the error answer this long (longer than the client's timeout: no answer at all)."""

    def matches(self, service: str, operation: str, after: bool) -> bool:
        """Whether this rule concerns this call at this moment and still has failures left."""
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.service != service or self.after != after:
            return False
        if self.operations is None:
            # A rule without operations means every SageMaker call; S3 ones are named.
            return service == "sagemaker"
        return operation in self.operations


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


SERVICES = frozenset({"sagemaker", "s3", "application-autoscaling"})
AUTOSCALING = "application-autoscaling"


@dataclass(frozen=True)
class Injected:
    """A fault that fired: the error to answer and how long to hold the answer."""

    error: AwsError
    delay_seconds: float = 0.0


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
        self._injected: Counter[str] = Counter()
        # Seeded so that "throttle 50%" fails the same calls on every run of a test.
        self._random = random.Random(seed)

    def throttle(
        self,
        percent: float = 100.0,
        operations: Iterable[str] | str | None = None,
        count: int | None = None,
        message: str = "Rate exceeded",
        service: str = "sagemaker",
    ) -> None:
        """Answer ``percent`` % of calls (to ``operations``) with ``ThrottlingException``.

        ``count`` limits how many calls it fails in all; None: until ``reset()``. For S3 the
        answer is S3's own throttling error, ``SlowDown`` (503).
        """
        if service == "s3":
            self.error(
                "SlowDown",
                "Please reduce your request rate.",
                503,
                percent,
                operations,
                count,
                service=service,
            )
            return
        self.error("ThrottlingException", message, 400, percent, operations, count, service=service)

    def server_error(
        self,
        code: str = "InternalFailure",
        percent: float = 100.0,
        operations: Iterable[str] | str | None = None,
        count: int | None = None,
        message: str = "An internal error occurred.",
        *,
        after: bool = False,
        service: str = "sagemaker",
        delay_seconds: float = 0.0,
    ) -> None:
        """Answer calls with a 5xx error: ``InternalFailure`` (500) or ``ServiceUnavailable`` (503).

        ``after=True``: the call is served first, then answered with the error (held for
        ``delay_seconds``); for S3 the codes are S3's (``InternalError``, ``ServiceUnavailable``).
        """
        if code not in SERVER_ERRORS:
            raise ValueError(f"unknown server error {code!r}; one of {sorted(SERVER_ERRORS)}")
        status = SERVER_ERRORS[code]
        if service == "s3":
            code = "ServiceUnavailable" if status == 503 else "InternalError"
        self.error(
            code,
            message,
            status,
            percent,
            operations,
            count,
            after=after,
            service=service,
            delay_seconds=delay_seconds,
        )

    def timeout_after(
        self,
        seconds: float,
        operations: Iterable[str] | str,
        percent: float = 100.0,
        count: int | None = None,
        service: str = "sagemaker",
    ) -> None:
        """Serve matching calls, then hold the answer ``seconds`` (past the client's timeout).

        The caller sees a read timeout although the call took effect.
        """
        self.server_error(
            "InternalFailure",
            percent,
            operations,
            count,
            "The answer was held past the client's timeout.",
            after=True,
            service=service,
            delay_seconds=seconds,
        )

    def error(
        self,
        code: str,
        message: str,
        status: int = 400,
        percent: float = 100.0,
        operations: Iterable[str] | str | None = None,
        count: int | None = None,
        *,
        after: bool = False,
        service: str = "sagemaker",
        delay_seconds: float = 0.0,
    ) -> None:
        """Answer calls with any AWS error, e.g. ``ResourceLimitExceeded``.

        An ``application-autoscaling`` fault fails the call before it runs (``after`` is
        refused): the stand-in serves that service through moto and answers for it only then.
        """
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}; one of {sorted(SERVICES)}")
        if service != "sagemaker" and operations is None:
            raise ValueError(
                f"a {service} fault names its operations (PutObject, RegisterScalableTarget, ...)"
            )
        if service == AUTOSCALING and after:
            raise ValueError("an application-autoscaling fault fails the call before it runs")
        rule = ErrorRule(
            code,
            status,
            message,
            float(percent),
            _operations(operations),
            count,
            after,
            service,
            float(delay_seconds),
        )
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
        """Remove every fault; the count of faults already injected stays."""
        with self._lock:
            self._state = _State()

    def snapshot(self) -> dict[str, Any]:
        """The faults now set, as JSON-ready data (``GET /_local/faults``)."""
        with self._lock:
            data = asdict(self._state)
            data["injected"] = dict(self._injected)
        for rule in data["errors"] + data["latencies"]:
            if rule["operations"] is not None:
                rule["operations"] = sorted(rule["operations"])
        return data

    def injected(self) -> Counter[str]:
        """Faults fired so far, per ``<service>:<operation>:<before|after>`` (kept by reset)."""
        with self._lock:
            return Counter(self._injected)

    def apply(self, data: dict[str, Any]) -> None:
        """Set a fault from JSON: ``{"action": "throttle", "percent": 100, ...}``.

        ``action`` names one of this class's methods (``throttle``, ``server_error``,
        ``error``, ``latency``, ``timeout_after``, ``fail_next_create``, ``fail_next_update``,
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

    def error_for(self, operation: str, service: str = "sagemaker") -> AwsError | None:
        """The error to answer ``operation`` with instead of serving it, if a rule fires."""
        fired = self._fire(service, operation, after=False)
        return fired.error if fired is not None else None

    def fault_after(self, operation: str, service: str = "sagemaker") -> Injected | None:
        """The error to answer a served ``operation`` with (its effect stays), if a rule fires."""
        return self._fire(service, operation, after=True)

    def has_after(self, service: str, operation: str) -> bool:
        """Whether an after-the-effect rule may fire for this call (consumes nothing)."""
        with self._lock:
            return any(rule.matches(service, operation, True) for rule in self._state.errors)

    def _fire(self, service: str, operation: str, after: bool) -> Injected | None:
        with self._lock:
            for rule in self._state.errors:
                if (
                    rule.matches(service, operation, after)
                    and self._random.uniform(0, 100) < rule.percent
                ):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    when = "after" if after else "before"
                    self._injected[f"{service}:{operation}:{when}"] += 1
                    if rule.code == "ThrottlingException":
                        return Injected(throttling(rule.message), rule.delay_seconds)
                    error = AwsError(rule.code, rule.message, rule.status)
                    return Injected(error, rule.delay_seconds)
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
        "timeout_after",
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
        self._subjects: Counter[tuple[str, str]] = Counter()

    def record(self, operation: str, subject: str = "") -> None:
        """Count one call of ``operation`` about ``subject`` (an endpoint, a bucket path)."""
        with self._lock:
            self._counts[operation] += 1
            self._subjects[operation, subject] += 1

    def snapshot(self) -> Counter[str]:
        """A copy of the counts."""
        with self._lock:
            return Counter(self._counts)

    def about(self, text: str) -> Counter[str]:
        """The counts of the calls whose subject contains ``text`` (case-insensitive)."""
        needle = text.lower()
        with self._lock:
            found: Counter[str] = Counter()
            for (operation, subject), n in self._subjects.items():
                if needle in subject.lower():
                    found[operation] += n
            return found

    def reset(self) -> None:
        """Forget every call."""
        with self._lock:
            self._counts.clear()
            self._subjects.clear()

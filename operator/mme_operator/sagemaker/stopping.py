"""Stopping the operator's AWS calls when the operator stops.

On SIGTERM kopf stops its watches in about two seconds, but a reconcile pass runs in a
handler thread that nobody can interrupt: one that is backing off against an AWS that
does not answer (botocore's 10 attempts, up to 20 s apart) kept the process alive for 93 s,
past the chart's 60 s grace period, so the pod was killed instead. Passes are safe to cut
anywhere (the fault suite kills them at every step), so once the operator stops, each
client's next call or retry raises :class:`OperatorStopping` instead: the pass ends at its
next AWS call and the process exits. A call already on the wire finishes (at most its read
timeout); aborting a multipart upload stays allowed, so no part is left billed in S3.
"""

from __future__ import annotations

import threading
from typing import Any

_stopping = threading.Event()

# Cleanup calls that must still go out while a pass is cut short.
ALLOWED_WHILE_STOPPING = frozenset({"AbortMultipartUpload"})


class OperatorStopping(Exception):
    """The operator is stopping: no further AWS call or retry is made."""


def stop_aws_calls() -> None:
    """From now on, every client's next call or retry raises :class:`OperatorStopping`."""
    _stopping.set()


def _refuse(model: Any = None, **_: Any) -> None:
    if _stopping.is_set() and getattr(model, "name", None) not in ALLOWED_WHILE_STOPPING:
        raise OperatorStopping("the operator is stopping; the pass resumes after the restart")


def _no_retry(
    operation: Any = None, response: Any = None, caught_exception: Any = None, **_: Any
) -> None:
    # Asked after every attempt: an answered call (below 400) is kept, a failed one that
    # botocore would try again is not.
    if not _stopping.is_set() or getattr(operation, "name", None) in ALLOWED_WHILE_STOPPING:
        return
    failed = caught_exception is not None or (
        response is not None and response[0].status_code >= 400
    )
    if failed:
        raise OperatorStopping("the operator is stopping; not retrying")


def stop_with_operator(client: Any) -> Any:
    """Make ``client`` refuse new calls and retries once :func:`stop_aws_calls` ran."""
    events = client.meta.events
    events.register_first("before-call", _refuse, unique_id="mme-stop-before-call")
    events.register_first("needs-retry", _no_retry, unique_id="mme-stop-needs-retry")
    return client

"""SIGTERM while a pass backs off against a failing AWS: the operator exits at once.

kopf waits for its handler threads when it stops; a pass in botocore's retries (10
attempts, up to 20 s apart) held the process for 93 s, past the chart's 60 s grace period.
Once stopping, the operator makes no further AWS call or retry, the pass ends at its next
one, and the restarted operator takes it up within a second.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.faults.harness import World, wait_until

pytestmark = [pytest.mark.faults]


def test_sigterm_during_aws_retries_exits_within_seconds_and_resumes(world: World) -> None:
    name = "stop-retrying"
    # Every SageMaker call answers 503 (retryable): the pass backs off inside botocore.
    model = world.python_model("m")
    before = sum(world.aws.injected().values())
    world.aws.fault(action="server_error", code="ServiceUnavailable", percent=100)
    world.cluster.create(world.manifest(name, [model]))
    wait_until(
        lambda: sum(world.aws.injected().values()) >= before + 3,
        "the operator retrying against 503s",
        timeout=60,
    )
    process = world.operator.process
    assert process is not None

    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    returncode = process.wait(30)
    stopped_in = time.monotonic() - started

    assert stopped_in < 10, f"stopped after {stopped_in:.1f} s"
    assert returncode == 0
    log = world.operator.log.read_text()
    assert "no further AWS call or retry" in log
    assert world.operator.tracebacks() == []

    world.aws.clear_faults()
    world.operator.start()
    world.wait_converged([name], timeout=90)

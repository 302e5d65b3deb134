"""``mme-operator run`` logged in through a kubeconfig ``exec`` plugin whose tokens expire.

What an EKS user has (``aws eks get-token``: a token valid 15 minutes), made short: the
plugin's credential lasts 3 seconds, so kopf (its watches, status patches) and the
operator's own client (the ``<name>-models`` ConfigMap) must run it again and carry on.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import kopf
import pytest

from tests.cluster import ControlPlane
from tests.faults.harness import (
    Cluster,
    LocalAwsProcess,
    OperatorProcess,
    World,
    unique,
    wait_until,
)
from tests.kubeconfigs import Plugin, write_kubeconfig, write_plugin

pytestmark = [pytest.mark.faults, pytest.mark.envtest]

TTL_SECONDS = 3.0


@pytest.fixture
def exec_world(
    control_plane: ControlPlane,
    operator_login: kopf.ConnectionInfo,
    local_aws: LocalAwsProcess,
    tmp_path: Path,
) -> Iterator[tuple[World, Plugin]]:
    """The operator running with the chart's ServiceAccount, its tokens from a plugin."""
    account = "mme-operator", "mme-system"  # what operator_login set up: the chart's RBAC
    plugin = write_plugin(tmp_path / "kube", *(control_plane.token(*account) for _ in range(2)))
    kubeconfig = write_kubeconfig(
        tmp_path / "kube" / "config",
        {"server": control_plane.server, "certificate-authority": str(control_plane.ca)},
        {"exec": plugin.exec_stanza()},
    )
    plugin.set_ttl(TTL_SECONDS)
    local_aws.clear_faults()
    operator = OperatorProcess(kubeconfig, local_aws.url, tmp_path)
    world = World(
        Cluster(control_plane, unique("login")), local_aws, operator, unique("art"), unique("src")
    )
    operator.start()
    try:
        yield world, plugin
        # Gone while the operator runs: a later test's operator (other AWS) finds nothing.
        names = [obj["metadata"]["name"] for obj in world.cluster.list()]
        for name in names:
            world.cluster.delete(name)
        world.wait_gone(names, timeout=60)
    finally:
        operator.stop()


def test_expiring_exec_credentials_are_renewed_and_the_operator_carries_on(
    exec_world: tuple[World, Plugin],
) -> None:
    world, plugin = exec_world
    world.cluster.create(world.manifest("eks", [world.python_model("a")]))
    world.wait_converged(["eks"], timeout=60)
    first = world.cluster.call(
        "GET", f"/api/v1/namespaces/{world.cluster.namespace}/configmaps/eks-models"
    )
    assert first is not None and set(first["data"]) >= {"a", "endpoint.name"}
    runs = len(plugin.run_infos())  # `run` checks the login first, then kopf logs in

    time.sleep(TTL_SECONDS + 0.5)  # whatever the operator holds has expired now
    world.cluster.patch_spec("eks", {"models": [world.python_model("a"), world.python_model("b")]})
    world.wait_converged(["eks"], timeout=60)

    second = world.cluster.call(
        "GET", f"/api/v1/namespaces/{world.cluster.namespace}/configmaps/eks-models"
    )
    assert second is not None and {"a", "b"} <= set(second["data"])
    assert len(plugin.run_infos()) > runs
    log = world.operator.log.read_text()
    assert "Re-authentication has finished" in log
    assert "Traceback" not in log
    assert "Unauthorized" not in log


def readyz(world: World) -> tuple[int, str]:
    url = f"http://127.0.0.1:{world.operator.readiness_port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def test_a_plugin_that_starts_failing_is_one_line_and_the_operator_recovers(
    exec_world: tuple[World, Plugin],
) -> None:
    world, plugin = exec_world
    wait_until(lambda: readyz(world)[0] == 200, "ready", timeout=30)
    plugin.set_failure("Error: the SSO session has expired; run aws sso login")
    time.sleep(TTL_SECONDS + 0.5)

    # The next API call of kopf's (the new object's status) needs a new login, which fails.
    world.cluster.create(world.manifest("sso", [world.python_model("a")]))
    failure = "failed with exit 255: Error: the SSO session has expired; run aws sso login"
    wait_until(lambda: failure in world.operator.log.read_text(), "the failure logged", 30)
    _status, reason = wait_until(
        lambda: (found := readyz(world))[0] == 503 and found, "not ready", timeout=30
    )
    assert failure in reason and len(reason.strip().splitlines()) == 1

    plugin.set_failure(None)
    world.wait_converged(["sso"], timeout=60)
    wait_until(lambda: readyz(world)[0] == 200, "ready again", timeout=30)
    log = world.operator.log.read_text()
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if failure in line]
    assert lines and all(str(plugin.command) in line for line in lines)


def test_run_starts_with_one_run_of_the_plugin(
    control_plane: ControlPlane,
    operator_login: kopf.ConnectionInfo,
    local_aws: LocalAwsProcess,
    tmp_path: Path,
) -> None:
    # `run` checks that it can log in, and kopf's first login takes that credential: an
    # `aws eks get-token` (about a second) runs once, not twice.
    account = "mme-operator", "mme-system"
    plugin = write_plugin(tmp_path / "kube", control_plane.token(*account))
    kubeconfig = write_kubeconfig(
        tmp_path / "kube" / "config",
        {"server": control_plane.server, "certificate-authority": str(control_plane.ca)},
        {"exec": plugin.exec_stanza()},
    )
    operator = OperatorProcess(kubeconfig, local_aws.url, tmp_path)
    operator.start()
    try:
        wait_until(
            lambda: "Initial authentication has finished" in operator.log.read_text(),
            "kopf logged in",
            timeout=30,
        )
        world = World(
            Cluster(control_plane, unique("once")),
            local_aws,
            operator,
            unique("art"),
            unique("src"),
        )
        wait_until(lambda: readyz(world)[0] == 200, "ready", timeout=30)
        assert len(plugin.run_infos()) == 1
    finally:
        operator.stop()

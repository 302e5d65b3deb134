"""Fixtures of the fault suite: the real API server, local AWS and the operator, each a process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import ControlPlane
from tests.faults.harness import Cluster, LocalAwsProcess, OperatorProcess, World, unique


@pytest.fixture(scope="module")
def local_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAwsProcess]:
    aws = LocalAwsProcess(tmp_path_factory.mktemp("local-aws"), endpoint_delay=0.5)
    try:
        yield aws
    finally:
        aws.stop()


@pytest.fixture
def world(
    control_plane: ControlPlane, local_aws: LocalAwsProcess, tmp_path: Path
) -> Iterator[World]:
    """A namespace and buckets of its own, no faults, and a running operator process."""
    local_aws.clear_faults()
    operator = OperatorProcess(control_plane.kubeconfig, local_aws.url, tmp_path)
    world = World(
        Cluster(control_plane, unique("faults")),
        local_aws,
        operator,
        unique("art"),
        unique("src"),
    )
    operator.start()
    try:
        yield world
    finally:
        local_aws.clear_faults()
        operator.stop()

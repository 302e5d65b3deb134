"""Session-wide fixtures: the real Kubernetes API server (envtest) for tests marked ``envtest``.

The server (etcd + kube-apiserver from scripts/envtest.sh) starts once per session, on the
first test that asks for it. Its binaries are built before the first test runs (outside
the per-test timeout) when a selected test needs them and they are not cached yet. Tests
skip only where no Go toolchain exists to build them; in CI (``CI`` set) that fails instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import ControlPlane, build_envtest, envtest_binaries, why_no_envtest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = any(item.get_closest_marker("envtest") for item in items)
    if wanted and envtest_binaries() is None and why_no_envtest() is None:
        build_envtest()


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A running kube-apiserver (RBAC on) with the ModelEndpoint CRD installed."""
    reason = why_no_envtest()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    plane = ControlPlane.start(tmp_path_factory.mktemp("envtest"))
    try:
        plane.install_crds()
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> Path:
    """The admin kubeconfig of the session's real API server."""
    return control_plane.kubeconfig

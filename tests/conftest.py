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

import kopf
import pytest

from tests.cluster import (
    ControlPlane,
    build_envtest,
    envtest_binaries,
    find_helm,
    rbac_documents,
    render_chart,
    why_no_envtest,
)

# Tests not about tenancy use arbitrary prefixes, roles and images: the tenancy policy is
# open for them (a single-team install). Tests of the policy set tenancy_open=False.
os.environ.setdefault("MME_TENANCY_OPEN", "true")

# Where the chart's ServiceAccount lives for the session's operator.
OPERATOR_NAMESPACE = "mme-system"


# Fixtures that stand on the real API server: their tests are marked ``envtest``.
ENVTEST_FIXTURES = {"control_plane", "kubeconfig", "operator_login", "world"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("emulator"):
            continue
        if ENVTEST_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.envtest)
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


@pytest.fixture(scope="session")
def helm_binary() -> str:
    """A real helm (scripts/install-helm.sh); missing: skip here, fail in CI."""
    path = find_helm()
    if path is None:
        message = "helm not found: run scripts/install-helm.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def operator_login(control_plane: ControlPlane, helm_binary: str) -> kopf.ConnectionInfo:
    """The operator's login with exactly the chart's RBAC (all-namespaces mode).

    The chart is rendered with ``helm template``; its ServiceAccount, ClusterRole and
    binding are applied, and the token comes from the TokenRequest API: the operator is
    never an administrator, so any permission the chart lacks fails as a 403.
    """
    docs = render_chart(helm_binary, "mme-operator", OPERATOR_NAMESPACE)
    control_plane.ensure_namespace(OPERATOR_NAMESPACE)
    rbac = rbac_documents(docs)
    control_plane.apply(rbac)
    account = next(doc for doc in rbac if doc["kind"] == "ServiceAccount")
    token = control_plane.token(account["metadata"]["name"], OPERATOR_NAMESPACE)
    return kopf.ConnectionInfo(
        server=control_plane.server, ca_path=str(control_plane.ca), token=token, scheme="Bearer"
    )

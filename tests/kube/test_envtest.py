"""The real API server itself: the pinned release, RBAC on, the CRD served."""

from __future__ import annotations

import pytest

from tests.cluster import ControlPlane

pytestmark = pytest.mark.envtest

K8S_VERSION = "v1.33.13"


def test_server_and_kubectl_are_the_pinned_release(control_plane: ControlPlane) -> None:
    version = control_plane.kubectl("version", "-o", "yaml").stdout
    assert f"gitVersion: {K8S_VERSION}" in version.split("serverVersion:")[0]
    assert f"gitVersion: {K8S_VERSION}" in version.split("serverVersion:")[1]


def test_an_unbound_service_account_is_refused(control_plane: ControlPlane) -> None:
    control_plane.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "nobody", "namespace": "default"},
            }
        ]
    )
    token = control_plane.token("nobody", "default", hours=1)
    denied = control_plane.kubectl("get", "modelendpoints", "-A", token=token, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr


def test_crd_is_established(control_plane: ControlPlane) -> None:
    crd = control_plane.get("crd", "modelendpoints.mme-operator.io")
    established = [c for c in crd["status"]["conditions"] if c["type"] == "Established"]
    assert established[0]["status"] == "True"

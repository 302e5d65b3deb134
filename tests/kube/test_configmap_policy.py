"""The chart's identity cannot write arbitrary ConfigMaps: its ValidatingAdmissionPolicy.

The operator needs get/create/patch on ConfigMaps in every namespace it serves (the
``<name>-models`` ConfigMaps), which RBAC cannot narrow by name or label. The chart's
admission policy lets its ServiceAccount write only ConfigMaps named ``<name>-models``,
labelled ``app.kubernetes.io/managed-by=mme-operator`` and controlled by a ModelEndpoint,
before and after the change. Here on the real kube-apiserver, acting as the
ServiceAccount with a TokenRequest token: ``helm install`` (the server's own capabilities
decide that the policy is rendered), then the attacks of issue 19 and the writes the
operator makes.
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
from typing import Any

import pytest
import yaml

from tests.cluster import CHART, IMAGE, ControlPlane, rbac_documents, render_chart
from tests.unit.api.documents import MINIMAL

pytestmark = pytest.mark.envtest

POLICY_SAYS = "mme-operator may only"
LABEL = {"app.kubernetes.io/managed-by": "mme-operator"}


def configmap(name: str, namespace: str, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "data": {"key": "value"},
    }


def owner(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    """A real ModelEndpoint (no operator serves it here) as a controller reference."""
    plane.install_crds()
    doc = copy.deepcopy(MINIMAL)
    doc["metadata"] = {"name": name, "namespace": namespace}
    plane.apply([doc])
    found = plane.get("modelendpoint", name, "-n", namespace)
    return {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "ModelEndpoint",
        "name": name,
        "uid": found["metadata"]["uid"],
        "controller": True,
    }


class Identity:
    """kubectl as one ServiceAccount (a token from the TokenRequest API), nothing more."""

    def __init__(self, plane: ControlPlane, account: str, namespace: str) -> None:
        self.plane = plane
        self.token = plane.token(account, namespace)

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.plane.kubectl(*args, stdin=stdin, check=False, token=self.token)

    def create(self, doc: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.run("create", "-f", "-", stdin=yaml.safe_dump(doc))

    def patch(
        self, name: str, namespace: str, patch: dict[str, Any], *extra: str
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "patch", "configmap", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch),
            *extra,
        )  # fmt: skip


def refused_by_policy(done: subprocess.CompletedProcess[str]) -> bool:
    return done.returncode != 0 and "Forbidden" in done.stderr and POLICY_SAYS in done.stderr


def wait_enforced(identity: Identity, name: str, namespace: str) -> None:
    """The API server loads a new policy within about a second: until then writes pass.

    The probe is a server-side dry run (admission runs, nothing is stored).
    """
    deadline = time.monotonic() + 30
    while True:
        done = identity.patch(name, namespace, {"data": {"probe": "x"}}, "--dry-run=server")
        if refused_by_policy(done):
            return
        assert time.monotonic() < deadline, f"the policy never refused: {done.stderr}"
        time.sleep(0.3)


def unchanged(plane: ControlPlane, name: str, namespace: str, data: dict[str, str]) -> bool:
    found = plane.get("configmap", name, "-n", namespace)
    return bool(found["data"] == data and not found["metadata"].get("ownerReferences"))


def test_the_installed_chart_lets_its_identity_write_only_its_own_configmaps(
    control_plane: ControlPlane, helm_binary: str
) -> None:
    plane = control_plane
    release, namespace, team = "cmpolicy", "cmpolicy-ops", "cmpolicy-team"
    for each in (namespace, team):
        plane.ensure_namespace(each)
    # kube-system/aws-auth maps IAM roles to Kubernetes groups on EKS (system:masters).
    aws_auth = {"mapRoles": "- rolearn: arn:aws:iam::123456789012:role/admin\n"}
    plane.apply([{**configmap("aws-auth", "kube-system"), "data": aws_auth}])
    plane.apply([configmap("app-config", team)])
    # A tenant's own ConfigMap that happens to have the operator's name pattern.
    plane.apply([configmap("app-models", team)])

    installed = subprocess.run(
        [
            helm_binary,
            "install",
            release,
            str(CHART),
            "-n",
            namespace,
            "--set",
            f"image.repository={IMAGE}",
            "--kubeconfig",
            str(plane.kubeconfig),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    try:
        # helm asked the server: it serves ValidatingAdmissionPolicy, so the policy is there.
        policy = plane.get("validatingadmissionpolicy", f"{release}-mme-operator-configmaps")
        assert policy["spec"]["failurePolicy"] == "Fail"
        sa = Identity(plane, f"{release}-mme-operator", namespace)
        # The RBAC alone would allow this (get/create/patch on ConfigMaps everywhere).
        assert sa.run("auth", "can-i", "patch", "configmaps", "-n", "kube-system").stdout == "yes\n"

        wait_enforced(sa, "aws-auth", "kube-system")
        take_over = {"metadata": {"labels": LABEL}, "data": {"mapRoles": "- groups: [x]\n"}}
        assert refused_by_policy(sa.patch("aws-auth", "kube-system", take_over))
        assert refused_by_policy(sa.patch("app-config", team, {"data": {"key": "mine"}}))
        assert refused_by_policy(sa.patch("app-models", team, {"data": {"key": "mine"}}))
        # Adding the label and a controller reference to another's ConfigMap is a change
        # of a ConfigMap that did not carry them before: refused too.
        ref = owner(plane, team, "app")
        label_it = {"metadata": {"labels": LABEL, "ownerReferences": [ref]}}
        assert refused_by_policy(sa.patch("app-models", team, label_it))
        assert plane.get("configmap", "aws-auth", "-n", "kube-system")["data"] == aws_auth
        assert unchanged(plane, "app-config", team, {"key": "value"})
        assert unchanged(plane, "app-models", team, {"key": "value"})

        # Creating: only <name>-models, with the label and a ModelEndpoint controller.
        assert refused_by_policy(sa.create(configmap("other-models", "kube-system")))
        no_owner = configmap("loose-models", team, labels=LABEL)
        assert refused_by_policy(sa.create(no_owner))
        wrong_name = configmap("app-settings", team, labels=LABEL, ownerReferences=[ref])
        assert refused_by_policy(sa.create(wrong_name))

        # What the operator writes goes through: create, then merge-patch its data.
        mine = configmap("app-mapped-models", team, labels=LABEL, ownerReferences=[ref])
        made = sa.create(mine)
        assert made.returncode == 0, made.stderr
        patched = sa.patch("app-mapped-models", team, {"data": {"resnet": "resnet-1.tar.gz"}})
        assert patched.returncode == 0, patched.stderr
        # ...but it cannot strip its own marks to make a ConfigMap look like someone else's.
        unlabel = {"metadata": {"labels": {"app.kubernetes.io/managed-by": None}}}
        assert refused_by_policy(sa.patch("app-mapped-models", team, unlabel))

        # Nobody else's writes are looked at: the admin still edits aws-auth.
        plane.kubectl(
            "patch", "configmap", "aws-auth", "-n", "kube-system", "--type=merge",
            "-p", json.dumps({"data": {"mapUsers": "[]"}}),
        )  # fmt: skip
    finally:
        subprocess.run(
            [helm_binary, "uninstall", release, "-n", namespace, "--kubeconfig",
             str(plane.kubeconfig)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


def test_one_namespace_mode_refuses_tenant_configmaps_inside_and_everything_outside(
    control_plane: ControlPlane, helm_binary: str
) -> None:
    plane = control_plane
    release, namespace, watched = "cmpolicy-ns", "cmpolicy-ns-ops", "cmpolicy-ns-team"
    for each in (namespace, watched, "cmpolicy-ns-other"):
        plane.ensure_namespace(each)
    plane.apply([configmap("app-config", watched), configmap("app-config", "cmpolicy-ns-other")])
    docs = rbac_documents(
        render_chart(helm_binary, release, namespace, f"watchNamespace={watched}")
    )
    assert {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} <= {
        doc["kind"] for doc in docs
    }
    plane.apply(docs)
    try:
        sa = Identity(plane, f"{release}-mme-operator", namespace)
        # Inside the watched namespace the Role grants ConfigMaps; the policy narrows it.
        wait_enforced(sa, "app-config", watched)
        assert unchanged(plane, "app-config", watched, {"key": "value"})
        # Outside it the RBAC grants nothing at all.
        outside = sa.patch("app-config", "cmpolicy-ns-other", {"data": {"key": "mine"}})
        assert outside.returncode != 0 and "Forbidden" in outside.stderr
        assert unchanged(plane, "app-config", "cmpolicy-ns-other", {"key": "value"})
        ref = owner(plane, watched, "app")
        made = sa.create(configmap("app-models", watched, labels=LABEL, ownerReferences=[ref]))
        assert made.returncode == 0, made.stderr
    finally:
        for doc in docs:
            if doc["kind"].startswith(("Cluster", "Validating")):
                plane.kubectl("delete", doc["kind"], doc["metadata"]["name"], check=False)

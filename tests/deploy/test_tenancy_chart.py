"""The chart's ``tenancy`` values become the policy file the operator reads at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mme_operator.tenancy import load_policy

from tests.deploy.test_helm_chart import by_kind, render, the

ROLE = "arn:aws:iam::123456789012:role/sagemaker-mme"


@pytest.fixture(scope="session")
def helm(helm_binary: str) -> str:
    return helm_binary


def policy_of(tmp_path: Path, docs: list[dict[str, Any]]) -> Any:
    (configmap,) = [
        d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-tenancy")
    ]
    deployment = the(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "tenancy-policy")
    volume = next(v for v in pod["volumes"] if v["name"] == "tenancy-policy")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert env["MME_TENANCY_POLICY_FILE"] == f"{mount['mountPath']}/policy.yaml"
    path = tmp_path / "policy.yaml"
    path.write_text(configmap["data"]["policy.yaml"])
    return load_policy(str(path), env.get("MME_TENANCY_OPEN") == "true"), env


def test_the_default_install_is_restricted_and_names_no_role(helm: str, tmp_path: Path) -> None:
    policy, env = policy_of(tmp_path, render(helm))
    assert not policy.open and "MME_TENANCY_OPEN" not in env
    assert policy.defaults.archive_prefixes == ["{namespace}/{name}/"]
    assert policy.defaults.execution_role_arns == [] and policy.rules == []


def test_roles_and_rules_reach_the_policy(helm: str, tmp_path: Path) -> None:
    docs = render(
        helm,
        f"tenancy.executionRoleArns[0]={ROLE}",
        "tenancy.rules[0].namespaces[0]=team-a",
        "tenancy.rules[0].archivePrefixes[0]=team-a/",
        "tenancy.rules[0].allowAdoption=true",
    )
    policy, _ = policy_of(tmp_path, docs)
    assert policy.defaults.execution_role_arns == [ROLE]
    rule = policy.rule_for("team-a")
    assert rule.archive_prefixes == ["team-a/"] and rule.allow_adoption is True
    assert rule.execution_role_arns == [ROLE]
    assert policy.rule_for("team-b") is policy.defaults


@pytest.mark.parametrize("mode", ["open"])
def test_open_mode_is_one_value(helm: str, tmp_path: Path, mode: str) -> None:
    policy, env = policy_of(tmp_path, render(helm, f"tenancy.mode={mode}"))
    assert policy.open and env["MME_TENANCY_OPEN"] == "true"


def test_a_policy_change_rolls_the_pod(helm: str) -> None:
    def annotation(*args: str) -> str:
        pod = the(render(helm, *args), "Deployment")["spec"]["template"]["metadata"]
        return str(pod["annotations"]["mme-operator.io/tenancy-policy"])

    assert annotation() != annotation(f"tenancy.executionRoleArns[0]={ROLE}")

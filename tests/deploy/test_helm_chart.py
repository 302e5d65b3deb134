"""The Helm chart, rendered and linted by a real helm binary, checked against Kubernetes' schemas.

helm comes from scripts/install-helm.sh (pinned, checksummed). Without it these tests skip
on a workstation and fail in CI, where a silently skipped chart test would hide a break.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from mme_operator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "mme-operator"
K8S_VERSION = "1.30"
RELEASE, NAMESPACE = "mme-operator", "mme-operator"
# No image is published: every install names one (the chart refuses to go without).
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mme-operator"
# Kinds that kubernetes-validate has no schema for (custom resources).
CUSTOM_KINDS = {"ServiceMonitor"}


def find_helm() -> str | None:
    candidates = [
        os.environ.get("HELM"),
        str(Path(sys.prefix) / "bin" / "helm"),
        shutil.which("helm"),
    ]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


@pytest.fixture(scope="session")
def helm(helm_binary: str) -> str:
    """The session's helm (tests/conftest.py), under the short name these tests use."""
    return helm_binary


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm, *args], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )


def render(
    helm: str, *set_args: str, include_crds: bool = False, api_versions: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """``helm template`` with ``--set`` SET_ARGS, as for a cluster serving API_VERSIONS too."""
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    if include_crds:
        args.append("--include-crds")
    for api_version in api_versions:
        args += ["--api-versions", api_version]
    for item in (f"image.repository={IMAGE}", *set_args):
        args += ["--set", item]
    result = run_helm(helm, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def the(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = by_kind(docs, kind)
    return doc


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = the(docs, "Deployment")["spec"]["template"]["spec"][
        "containers"
    ]
    (container,) = containers
    return container


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container.get("env", [])}


def rbac_rules(docs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """Every (apiGroup, resource, verb) granted by the chart's Roles and ClusterRoles."""
    granted = set()
    for doc in docs:
        if doc["kind"] in ("Role", "ClusterRole"):
            for rule in doc["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            granted.add((group, resource, verb))
    return granted


# Exactly what kopf uses (tests/kube/test_rbac.py runs the operator with these alone).
RESOURCE_RULES = {
    *(("mme-operator.io", "modelendpoints", v) for v in ("get", "list", "watch", "patch")),
    ("mme-operator.io", "modelendpoints/status", "patch"),
    ("", "events", "create"),
    *(("", "configmaps", v) for v in ("get", "create", "patch")),
    *(("mme-operator.io", "models", v) for v in ("get", "list", "watch")),
    ("mme-operator.io", "models/status", "patch"),
}
CRD_READ = {
    ("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("get", "list", "watch")
}
NAMESPACE_READ = {("", "namespaces", v) for v in ("get", "list", "watch")}


@pytest.mark.parametrize(
    "set_args",
    [[], ["watchNamespace=ml"], ["metrics.serviceMonitor.enabled=true", "peering.enabled=true"]],
    ids=["defaults", "namespaced", "servicemonitor-peering"],
)
def test_chart_lints(helm: str, set_args: list[str]) -> None:
    args = ["lint", "--strict", str(CHART)]
    for item in (f"image.repository={IMAGE}", *set_args):
        args += ["--set", item]
    result = run_helm(helm, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    "set_args",
    [
        [],
        ["watchNamespace=ml"],
        [
            "watchNamespace=ml",
            "peering.enabled=true",
            "metrics.serviceMonitor.enabled=true",
            "serviceAccount.roleArn=arn:aws:iam::123456789012:role/mme-operator",
            "aws.region=eu-west-1",
            "workDir.medium=Memory",
            "resources.limits.memory=24Gi",
            "imagePullSecrets[0].name=regcred",
            "nodeSelector.pool=system",
            "config.fileRoots=/models",
            "extraVolumes[0].name=models",
            "extraVolumes[0].persistentVolumeClaim.claimName=models",
            "extraVolumeMounts[0].name=models",
            "extraVolumeMounts[0].mountPath=/models",
            "extraVolumeMounts[0].readOnly=true",
        ],
        ["metrics.enabled=false", "rbac.clusterDiscovery=false"],
    ],
    ids=["defaults", "namespaced", "everything-on", "minimal"],
)
def test_every_rendered_manifest_matches_the_kubernetes_schema(
    helm: str, set_args: list[str]
) -> None:
    docs = render(helm, *set_args, include_crds=True)
    assert docs
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_default_install_runs_one_hardened_kopf_process_for_all_namespaces(helm: str) -> None:
    docs = render(helm)
    assert sorted(doc["kind"] for doc in docs) == sorted(
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
            "Service",
            "Deployment",
            "ConfigMap",
        ]
    )
    deployment = the(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}

    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}

    container = operator_container(docs)
    assert container["args"] == [
        "--all-namespaces",
        "--standalone",
    ]
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ready"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MME_HEALTH_PORT"] == "8081" and env["MME_READINESS_PORT"] == "8082"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"metrics": 8080, "health": 8081, "ready": 8082}
    assert container["resources"]["requests"] and container["resources"]["limits"]

    env = env_of(container)
    assert env["MME_WORK_DIR"] == "/tmp"
    assert env["MME_METRICS_PORT"] == "8080"
    assert "MME_NAMESPACE" not in env
    # The scratch volume, and the tenancy policy read-only (tests/deploy/test_tenancy_chart.py).
    mount, policy_mount = container["volumeMounts"]
    volume, policy_volume = pod["volumes"]
    assert mount == {"name": volume["name"], "mountPath": "/tmp"}
    assert policy_mount["readOnly"] is True and "configMap" in policy_volume
    assert volume["emptyDir"]["sizeLimit"] == "20Gi"

    service = the(docs, "Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_default_rbac_is_the_least_kopf_needs_cluster_wide(helm: str) -> None:
    docs = render(helm)
    # Namespace labels: which namespaces' Models a Selector endpoint admits.
    assert rbac_rules(docs) == RESOURCE_RULES | CRD_READ | NAMESPACE_READ
    binding = the(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == the(docs, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": the(docs, "ServiceAccount")["metadata"]["name"],
            "namespace": NAMESPACE,
        }
    ]


VAP_API = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"


def policy_kinds(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(doc["kind"] for doc in docs if doc["kind"].startswith("ValidatingAdmission"))


def template_for(helm: str, kube_version: str, *extra: str) -> list[dict[str, Any]]:
    args = ["template", RELEASE, str(CHART), "-n", NAMESPACE, "--kube-version", kube_version]
    result = run_helm(helm, *args, "--set", f"image.repository={IMAGE}", *extra)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_the_configmap_policy_binds_the_operators_service_account_only(helm: str) -> None:
    both = ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    for set_args in ((), ("watchNamespace=ml",), ("rbac.create=false",)):
        docs = render(helm, *set_args)
        assert policy_kinds(docs) == both, set_args
        policy, binding = the(docs, both[0]), the(docs, both[1])
        account = the(docs, "ServiceAccount")["metadata"]["name"]
        [match] = policy["spec"]["matchConditions"]
        assert match["expression"] == (
            f'request.userInfo.username == "system:serviceaccount:{NAMESPACE}:{account}"'
        )
        assert policy["spec"]["failurePolicy"] == "Fail"
        [rule] = policy["spec"]["matchConstraints"]["resourceRules"]
        assert rule["resources"] == ["configmaps"]
        assert rule["operations"] == ["CREATE", "UPDATE", "DELETE"]
        assert {v["reason"] for v in policy["spec"]["validations"]} == {"Forbidden"}
        assert binding["spec"] == {
            "policyName": policy["metadata"]["name"],
            "validationActions": ["Deny"],
        }
    assert policy_kinds(render(helm, "rbac.configMapPolicy=false")) == []


def test_the_configmap_policy_needs_a_server_that_serves_it(helm: str) -> None:
    # ValidatingAdmissionPolicy is GA (admissionregistration.k8s.io/v1) from 1.30: a 1.28 or
    # 1.29 cluster gets the RBAC alone, unless it says it serves the v1 kind.
    assert policy_kinds(template_for(helm, "1.29.9")) == []
    assert len(policy_kinds(template_for(helm, "1.29.9", "--api-versions", VAP_API))) == 2
    assert len(policy_kinds(template_for(helm, "1.30.0"))) == 2
    assert len(policy_kinds(template_for(helm, "v1.30.4-eks-a737599"))) == 2


def test_watch_namespace_confines_write_access_to_that_namespace(helm: str) -> None:
    docs = render(helm, "watchNamespace=ml")
    container = operator_container(docs)
    assert "--namespace=ml" in container["args"]
    assert "--all-namespaces" not in container["args"]
    assert env_of(container)["MME_NAMESPACE"] == "ml"

    role, binding = the(docs, "Role"), the(docs, "RoleBinding")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "ml"
    assert rbac_rules([role]) == RESOURCE_RULES
    # What stays cluster-wide is read-only discovery.
    cluster_role = the(docs, "ClusterRole")
    assert rbac_rules([cluster_role]) == CRD_READ | NAMESPACE_READ

    without_discovery = render(helm, "watchNamespace=ml", "rbac.clusterDiscovery=false")
    assert not by_kind(without_discovery, "ClusterRole")
    assert not by_kind(without_discovery, "ClusterRoleBinding")


def test_peering_is_optional_and_adds_only_peering_rights(helm: str) -> None:
    cluster = render(helm, "peering.enabled=true", "peering.name=team-a")
    assert "--peering=team-a" in operator_container(cluster)["args"]
    assert "--standalone" not in operator_container(cluster)["args"]
    assert rbac_rules(cluster) - (RESOURCE_RULES | CRD_READ | NAMESPACE_READ) == {
        ("kopf.dev", "clusterkopfpeerings", v) for v in ("get", "list", "watch", "patch")
    }
    namespaced = render(helm, "peering.enabled=true", "watchNamespace=ml")
    assert rbac_rules([the(namespaced, "Role")]) - RESOURCE_RULES == {
        ("kopf.dev", "kopfpeerings", v) for v in ("get", "list", "watch", "patch")
    }


def test_role_arn_becomes_the_irsa_annotation(helm: str) -> None:
    arn = "arn:aws:iam::123456789012:role/mme-operator"
    docs = render(helm, f"serviceAccount.roleArn={arn}", "aws.region=us-east-1")
    account = the(docs, "ServiceAccount")
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": arn}
    assert env_of(operator_container(docs))["AWS_REGION"] == "us-east-1"
    assert "annotations" not in the(render(helm), "ServiceAccount")["metadata"]


SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"


def test_service_monitor_scrapes_the_metrics_service(helm: str) -> None:
    assert not by_kind(render(helm, api_versions=(SERVICE_MONITOR_API,)), "ServiceMonitor")
    # Asked for, on a cluster without the Prometheus Operator: skipped, not a failed install.
    assert not by_kind(render(helm, "metrics.serviceMonitor.enabled=true"), "ServiceMonitor")
    docs = render(
        helm,
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.labels.release=kps",
        api_versions=(SERVICE_MONITOR_API,),
    )
    monitor, service = the(docs, "ServiceMonitor"), the(docs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]


def test_config_values_become_settings_the_operator_accepts(
    helm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(
        helm,
        "config.logFormat=text",
        "config.awsEndpointUrl=http://local-aws:5000",
        "config.pollIntervalSeconds=10",
        "config.driftCheckIntervalSeconds=600",
        "config.metricsIntervalSeconds=0",
        "config.retryDelaySeconds=5",
        "config.loadCheck=false",
        "config.loadCheckConcurrency=4",
        "config.uploadWorkers=6",
        "config.maxSourceBytes=107374182400",
        "config.maxExpansionRatio=20",
        "config.httpsTimeoutSeconds=120",
        "config.uploadConcurrency=4",
        "config.maxConcurrentReconciles=12",
        "config.multipartChunkBytes=16777216",
        "config.fileRoots=/models:/data",
        "config.instanceCatalogueFile=/etc/mme/catalogue.yaml",
        "config.priceFactor=0.8",
        "metrics.port=9090",
        "watchNamespace=ml",
    )
    env = {k: v for k, v in env_of(operator_container(docs)).items() if k.startswith("MME_")}
    fields = set(Settings.model_fields)
    assert {name.removeprefix("MME_").lower() for name in env} <= fields
    for name in list(os.environ):
        if name.startswith("MME_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.max_source_bytes == 107374182400
    assert settings.load_check is False
    assert settings.metrics_interval_seconds == 0  # the cache signals' reads turned off
    assert settings.load_check_concurrency == 4
    assert settings.upload_workers == 6
    assert settings.max_expansion_ratio == 20
    assert settings.multipart_chunk_bytes == 16 * 1024**2
    assert settings.max_concurrent_reconciles == 12
    assert settings.metrics_port == 9090
    assert settings.log_format == "text"
    assert settings.namespace == "ml"
    assert settings.work_dir == "/tmp"
    assert settings.file_roots == "/models:/data"
    assert settings.instance_catalogue_file == "/etc/mme/catalogue.yaml"
    assert settings.price_factor == 0.8
    # Unset config keys leave the operator's own defaults in force.
    defaults = env_of(operator_container(render(helm)))
    assert "MME_POLL_INTERVAL_SECONDS" not in defaults


def test_the_largest_accepted_source_fits_the_default_work_volume(helm: str) -> None:
    # Packaging holds the source and its archive in the work dir at once, beside the
    # archives of file:// weights packaged while named (at most half a largest source).
    docs = render(helm)
    volumes = the(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    (work,) = [v for v in volumes if "emptyDir" in v and "sizeLimit" in v["emptyDir"]]
    size_limit = work["emptyDir"]["sizeLimit"]
    assert size_limit.endswith("Gi")
    assert "MME_MAX_SOURCE_BYTES" not in env_of(operator_container(docs))
    default = Settings.model_fields["max_source_bytes"].default
    assert 2 * default + default // 2 <= int(size_limit[:-2]) * 1024**3


@pytest.mark.parametrize(
    ("set_arg", "complaint"),
    [
        ("replicaCount=2", "replicaCount is not allowed"),
        ("image.tag=a:b", "image.tag: Does not match pattern"),
        ("image.repository=Registry/Op", "image.repository: Does not match pattern"),
        ("health.listenAddress=all", "health.listenAddress: Does not match pattern"),
        ("workDir.sizeLimit=1.5Gi", "workDir.sizeLimit"),
        ("networkPolicy.httpsCidrs[0]=anywhere", "networkPolicy.httpsCidrs.0: Does not match"),
        ("resources=big", "resources: Invalid type"),
        ("watchNamespace=1", "watchNamespace: Invalid type"),
        ("serviceAccount.roleArn=my-role", "serviceAccount.roleArn: Does not match pattern"),
        ("metrics.port=http", "metrics.port: Invalid type"),
        ("config.logFormat=xml", "config.logFormat"),
    ],
)
def test_wrong_values_are_rejected_by_the_schema(helm: str, set_arg: str, complaint: str) -> None:
    result = run_helm(helm, "template", RELEASE, str(CHART), "--set", set_arg)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert complaint in result.stderr


def test_values_file_is_valid_against_its_own_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(yaml.safe_load((CHART / "values.yaml").read_text()))


@pytest.mark.parametrize("name", ["modelendpoints.yaml", "models.yaml"])
def test_chart_crd_is_a_copy_of_the_generated_crd(name: str) -> None:
    generated = ROOT / "crds" / name
    copy = CHART / "crds" / name
    assert generated.is_file(), f"crds/{name} missing: run `make crd`"
    assert copy.is_file(), f"copy {generated} to {copy}"
    assert copy.read_text() == generated.read_text(), f"{copy} is stale: copy {generated} again"


def template_error(helm: str, *set_args: str) -> str:
    """What ``helm template`` says when it refuses SET_ARGS (no image added)."""
    args = ["template", RELEASE, str(CHART)]
    for item in set_args:
        args += ["--set", item]
    result = run_helm(helm, *args)
    assert result.returncode != 0, result.stdout
    return result.stderr


def test_no_install_without_a_chosen_image(helm: str) -> None:
    error = template_error(helm)
    assert "image.repository is required: no mme-operator image is published" in error
    assert "Dockerfile" in error and "docker push REGISTRY/mme-operator:0.1.0" in error
    assert "image.digest=sha256:" in error
    digest = "sha256:" + "ab" * 32
    pinned = render(helm, f"image.digest={digest}")
    assert operator_container(pinned)["image"] == f"{IMAGE}@{digest}"
    assert operator_container(render(helm))["image"] == f"{IMAGE}:0.1.0"


def test_numbers_given_with_set_become_strings(helm: str) -> None:
    # `--set` turns 1 into a number; no --set-string needed for tags, labels, annotations.
    docs = render(
        helm,
        "image.tag=1",
        "podLabels.tier=1",
        "podAnnotations.sidecar\\.istio\\.io/inject=false",
        "nodeSelector.generation=5",
        "serviceAccount.annotations.cost-center=42",
    )
    assert operator_container(docs)["image"] == f"{IMAGE}:1"
    pod = the(docs, "Deployment")["spec"]["template"]
    assert pod["metadata"]["labels"]["tier"] == "1"
    annotations = dict(pod["metadata"]["annotations"])
    assert annotations.pop("mme-operator.io/tenancy-policy")  # the policy's checksum
    assert annotations == {"sidecar.istio.io/inject": "false"}
    assert pod["spec"]["nodeSelector"] == {"generation": "5"}
    assert the(docs, "ServiceAccount")["metadata"]["annotations"] == {"cost-center": "42"}
    kubernetes_validate.validate(the(docs, "Deployment"), K8S_VERSION, strict=True)


def test_listen_addresses_become_settings(helm: str, monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = env_of(operator_container(render(helm)))
    assert {k: defaults[k] for k in ("MME_METRICS_ADDRESS", "MME_HEALTH_ADDRESS")} == {
        "MME_METRICS_ADDRESS": "0.0.0.0",
        "MME_HEALTH_ADDRESS": "0.0.0.0",
    }
    # The chart's default is the operator's own.
    assert Settings.model_fields["metrics_address"].default == "0.0.0.0"
    env = env_of(
        operator_container(render(helm, "metrics.listenAddress=::", "health.listenAddress=::"))
    )
    for name in list(os.environ):
        if name.startswith("MME_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("MME_"):
            monkeypatch.setenv(name, value)
    settings = Settings()
    assert (settings.metrics_address, settings.health_address, settings.readiness_address) == (
        "::",
        "::",
        "::",
    )
    assert settings.listen_url(settings.health_address, settings.health_port) == "[::]:8081"


def test_a_loopback_probe_address_is_refused(helm: str) -> None:
    error = template_error(helm, f"image.repository={IMAGE}", "health.listenAddress=127.0.0.1")
    assert (
        "health.listenAddress 127.0.0.1 is a loopback address: kubelet probes the pod's IP" in error
    )


def storage_of(docs: list[dict[str, Any]]) -> tuple[str, str, str]:
    """(emptyDir sizeLimit, ephemeral-storage request, ephemeral-storage limit)."""
    pod = the(docs, "Deployment")["spec"]["template"]["spec"]
    (work,) = [v for v in pod["volumes"] if v["name"] == "scratch"]
    resources = operator_container(docs)["resources"]
    return (
        work["emptyDir"]["sizeLimit"],
        resources["requests"]["ephemeral-storage"],
        resources["limits"]["ephemeral-storage"],
    )


@pytest.mark.parametrize(
    ("set_args", "expected"),
    [
        ([], ("20Gi", "21Gi", "21Gi")),  # 2.5 x 8 GiB, plus 1Gi of logs
        (["config.maxSourceBytes=107374182400"], ("250Gi", "251Gi", "251Gi")),
        (["config.maxSourceBytes=1000000000"], ("3Gi", "4Gi", "4Gi")),  # 2.5 GB -> whole GiB
        (["workDir.sizeLimit=64Gi"], ("64Gi", "65Gi", "65Gi")),
        (
            ["resources.requests.ephemeral-storage=2Gi", "resources.limits.ephemeral-storage=30Gi"],
            ("20Gi", "2Gi", "30Gi"),
        ),
        (["workDir.medium=Memory", "resources.limits.memory=24Gi"], ("20Gi", "1Gi", "1Gi")),
    ],
    ids=["default", "100GiB-sources", "1GB-sources", "explicit", "overridden", "tmpfs"],
)
def test_work_dir_and_ephemeral_storage_follow_the_largest_source(
    helm: str, set_args: list[str], expected: tuple[str, str, str]
) -> None:
    assert storage_of(render(helm, *set_args)) == expected


def test_the_chart_default_largest_source_is_the_operators(helm: str) -> None:
    # Unset, the chart sizes the work dir for the operator's own default; set, for the value.
    default = Settings.model_fields["max_source_bytes"].default
    assert storage_of(render(helm)) == storage_of(render(helm, f"config.maxSourceBytes={default}"))
    assert storage_of(render(helm)) != storage_of(
        render(helm, f"config.maxSourceBytes={default * 2}")
    )


@pytest.mark.parametrize(
    ("set_args", "complaint"),
    [
        (
            ["workDir.sizeLimit=10Gi"],
            "workDir.sizeLimit 10Gi is below 2.5 x config.maxSourceBytes (20Gi)",
        ),
        (
            ["config.maxSourceBytes=10737418240", "workDir.sizeLimit=20Gi"],
            "workDir.sizeLimit 20Gi is below 2.5 x config.maxSourceBytes (25Gi)",
        ),
        (
            ["workDir.medium=Memory"],
            "workDir.medium=Memory: the work dir (20Gi) is tmpfs and counts against "
            "resources.limits.memory (2Gi)",
        ),
    ],
)
def test_a_work_dir_too_small_for_the_largest_source_is_refused(
    helm: str, set_args: list[str], complaint: str
) -> None:
    assert complaint in template_error(helm, f"image.repository={IMAGE}", *set_args)


def test_network_policy_is_optional_and_lets_through_only_what_the_operator_needs(
    helm: str,
) -> None:
    assert not by_kind(render(helm), "NetworkPolicy")
    docs = render(
        helm,
        "networkPolicy.enabled=true",
        "networkPolicy.apiServer.cidrs[0]=10.0.0.10/32",
        "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name=monitoring",
    )
    policy = the(docs, "NetworkPolicy")
    kubernetes_validate.validate(policy, K8S_VERSION, strict=True)
    spec = policy["spec"]
    assert (
        spec["podSelector"]["matchLabels"]
        == the(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    )
    assert spec["policyTypes"] == ["Ingress", "Egress"]

    def ports(rule: dict[str, Any]) -> set[tuple[str, int]]:
        return {(p["protocol"], p["port"]) for p in rule["ports"]}

    probes, scrape = spec["ingress"]
    assert ports(probes) == {("TCP", 8081), ("TCP", 8082)} and "from" not in probes
    assert ports(scrape) == {("TCP", 8080)}
    assert scrape["from"] == [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]

    dns, https, api_server = spec["egress"]
    assert ports(dns) == {("UDP", 53), ("TCP", 53)}
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert ports(https) == {("TCP", 443)}
    assert [peer["ipBlock"]["cidr"] for peer in https["to"]] == ["0.0.0.0/0", "::/0"]
    assert ports(api_server) == {("TCP", 443), ("TCP", 6443)}
    assert api_server["to"] == [{"ipBlock": {"cidr": "10.0.0.10/32"}}]
    # Without API server addresses (EKS, GKE, AKS answer on 443): no rule for them.
    assert (
        len(the(render(helm, "networkPolicy.enabled=true"), "NetworkPolicy")["spec"]["egress"]) == 2
    )


def test_full_values_lint(helm: str) -> None:
    full = CHART / "ci" / "full-values.yaml"
    result = run_helm(helm, "lint", "--strict", str(CHART), "-f", str(full))
    assert result.returncode == 0, result.stdout + result.stderr

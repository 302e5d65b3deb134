"""The ecosystem's checkers over the chart, the CRDs and examples/: kubeconform and kube-score.

Both are built from the Go module proxy by scripts/install-checkers.sh (``make checkers``,
cached); without them these tests skip on a workstation and fail in CI. kubeconform runs
strict and offline: Kubernetes' schemas are kubernetes-validate's strict ones for the
release of the API server the tests run (tests/envtest/go.mod), the ModelEndpoint's is
schemas/, the ServiceMonitor's is converted from the Prometheus Operator's own CRD. Every
kube-score finding must be explained in helm/mme-operator/CHECKS.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from mme_operator.api.json_schema import crd_schemas

from tests.cluster import CHART, IMAGE, ROOT
from tests.unit.api.documents import GOOD

SCRIPT = ROOT / "scripts" / "install-checkers.sh"
FULL_VALUES = CHART / "ci" / "full-values.yaml"
SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"
SEVERITY = {1: "CRITICAL", 5: "WARNING", 7: "WARNING"}  # kube-score's grades below OK (10)


def kubernetes_version() -> str:
    """The release of the tests' kube-apiserver, as kubeconform spells it (1.33.0)."""
    go_mod = (ROOT / "tests" / "envtest" / "go.mod").read_text()
    found = re.search(r"^require k8s\.io/kubernetes v(\d+)\.(\d+)\.\d+", go_mod, re.MULTILINE)
    assert found, "tests/envtest/go.mod pins no k8s.io/kubernetes"
    return f"{found[1]}.{found[2]}.0"


def installed(name: str) -> Path:
    """A file scripts/install-checkers.sh installed; missing: skip here, fail in CI."""
    done = subprocess.run(
        ["bash", str(SCRIPT), "path", name], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        message = f"{name} not installed: run `make checkers` (scripts/install-checkers.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(done.stdout.strip())


@pytest.fixture(scope="session")
def schema_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Kubernetes' strict schemas with their ``$ref``s made local, and the ServiceMonitor's.

    kubernetes-validate's files point at https://kubernetes.io/api/_definitions.json; the
    same file ships beside them, so each reference is rewritten to it (no network).
    """
    version = kubernetes_version()
    source = (
        Path(kubernetes_validate.__file__).parent
        / "kubernetes-json-schema"
        / f"v{version}-local-strict"
    )
    assert source.is_dir(), f"kubernetes-validate has no schemas for Kubernetes {version}"
    root = tmp_path_factory.mktemp("kubeconform-schemas")
    target = root / f"v{version}-local-strict"
    target.mkdir()
    for path in source.glob("*.json"):
        schema = json.loads(
            path.read_text().replace('"/api/_definitions.json#', '"_definitions.json#')
        )
        schema.pop("$id", None)
        (target / path.name).write_text(json.dumps(schema))
    monitors = yaml.safe_load(installed("servicemonitor-crd").read_text())
    (root / "crds").mkdir()
    for name, schema in crd_schemas([monitors]).items():
        (root / "crds" / name).write_text(json.dumps(schema))
    return root


def kubeconform(schema_dir: Path, *inputs: Path) -> list[dict[str, Any]]:
    """kubeconform -strict over INPUTS, offline; one result per resource."""
    custom = "{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"
    done = subprocess.run(
        [
            str(installed("kubeconform")),
            "-strict",
            "-output",
            "json",
            "-verbose",
            "-kubernetes-version",
            kubernetes_version(),
            "-schema-location",
            f"{schema_dir}/{{{{ .NormalizedKubernetesVersion }}}}-local{{{{ .StrictSuffix }}}}"
            "/{{ .ResourceKind }}{{ .KindSuffix }}.json",
            "-schema-location",
            f"{ROOT / 'schemas'}/{custom}",
            "-schema-location",
            f"{schema_dir / 'crds'}/{custom}",
            *map(str, inputs),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(done.stdout)
    resources: list[dict[str, Any]] = report["resources"]
    assert resources, done.stderr
    return resources


def problems(results: Iterable[dict[str, Any]]) -> list[str]:
    return [
        f"{r['filename']}: {r['kind']} {r['name']}: {r['status']}: {r.get('msg', '')}"
        for r in results
        if r["status"] != "statusValid"
    ]


def helm_template(helm: str, tmp_path: Path, *args: str) -> Path:
    """``helm template`` of the chart (CRDs included) into a file."""
    done = subprocess.run(
        [
            helm,
            "template",
            "mme-operator",
            str(CHART),
            "-n",
            "mme-operator",
            "--include-crds",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = tmp_path / "rendered.yaml"
    out.write_text(done.stdout)
    return out


RENDERS = {
    "default": ["--set", f"image.repository={IMAGE}"],
    "full": ["-f", str(FULL_VALUES), "--api-versions", SERVICE_MONITOR_API],
}


@pytest.mark.parametrize("values", sorted(RENDERS))
def test_the_rendered_chart_passes_kubeconform(
    helm_binary: str, schema_dir: Path, tmp_path: Path, values: str
) -> None:
    results = kubeconform(schema_dir, helm_template(helm_binary, tmp_path, *RENDERS[values]))
    assert problems(results) == []
    kinds = {r["kind"] for r in results}
    assert {"CustomResourceDefinition", "Deployment", "ServiceAccount", "Service"} <= kinds
    if values == "full":
        # Every optional part is there, so every template is checked.
        assert {"NetworkPolicy", "ServiceMonitor", "Role", "RoleBinding"} <= kinds
        assert {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} <= kinds


def test_the_full_values_switch_every_optional_part_on() -> None:
    full = yaml.safe_load(FULL_VALUES.read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())

    def switches(node: Any, path: str = "") -> Iterable[tuple[str, Any]]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from switches(value, f"{path}.{key}" if path else key)
        else:
            yield path, node

    wanted = dict(switches(full))
    # A choice between two forms, not a part to switch on (tmpfs: tests/deploy/test_helm_chart.py).
    choices = {"workDir.medium"}
    for path, default in switches(defaults):
        if path in choices:
            continue
        if isinstance(default, bool):
            assert wanted.get(path) is True, f"ci/full-values.yaml leaves {path} off"
        elif default in ("", [], {}, None):
            assert wanted.get(path) not in ("", [], {}, None), (
                f"ci/full-values.yaml leaves {path} unset"
            )


def test_crds_and_examples_pass_kubeconform(schema_dir: Path) -> None:
    results = kubeconform(schema_dir, ROOT / "crds", ROOT / "examples")
    assert problems(results) == []
    kinds = [
        doc.get("kind")
        for path in sorted((ROOT / "examples").glob("**/*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict)
    ]
    for kind in ("ModelEndpoint", "Model"):
        checked = [r for r in results if r["kind"] == kind]
        assert len(checked) == kinds.count(kind) and kinds.count(kind) >= 2, kind
    assert [r["kind"] for r in results if r["filename"].startswith(str(ROOT / "crds"))] == [
        "CustomResourceDefinition",
        "CustomResourceDefinition",
    ]


def test_kubeconform_refuses_a_misspelt_modelendpoint_field(
    schema_dir: Path, tmp_path: Path
) -> None:
    doc = json.loads(json.dumps(GOOD))
    doc["spec"]["models"][0]["sequenceBatchin"] = {"maxSequenceIdleMicroseconds": 1000}
    path = tmp_path / "endpoint.yaml"
    path.write_text(yaml.safe_dump(doc))
    (result,) = kubeconform(schema_dir, path)
    assert result["status"] == "statusInvalid"
    assert "additional properties 'sequenceBatchin' not allowed" in result["msg"]


def test_kubeconform_refuses_a_misspelt_field_in_chart_values(
    helm_binary: str, schema_dir: Path, tmp_path: Path
) -> None:
    # The values schema lets extraVolumeMounts through as objects; Kubernetes' does not.
    rendered = helm_template(
        helm_binary,
        tmp_path,
        *RENDERS["default"],
        "--set",
        "extraVolumes[0].name=m,extraVolumes[0].emptyDir.medium=",
        "--set",
        "extraVolumeMounts[0].name=m,extraVolumeMounts[0].mountPath=/m,extraVolumeMounts[0].readonly=true",
    )
    (found,) = problems(kubeconform(schema_dir, rendered))
    assert "Deployment" in found and "'readonly' not allowed" in found


def documented_findings() -> set[tuple[str, str, str, str]]:
    """(values, kind, check, grade) of each finding CHECKS.md explains."""
    rows = re.findall(
        r"^\| (\w+) \| (\w+) \| ([\w-]+) \| (CRITICAL|WARNING) \| (.+) \|$",
        (CHART / "CHECKS.md").read_text(),
        re.MULTILINE,
    )
    assert all(len(why) > 20 for *_, why in rows)
    return {(values, kind, check, grade) for values, kind, check, grade, _ in rows}


def kube_score(rendered: Path) -> set[tuple[str, str, str]]:
    """(kind, check id, grade) of every kube-score finding (grade below OK, not skipped)."""
    done = subprocess.run(
        [
            str(installed("kube-score")),
            "score",
            "--kubernetes-version",
            "v" + kubernetes_version().rsplit(".", 1)[0],
            "--output-format",
            "json",
            str(rendered),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout, done.stderr
    findings = set()
    for scored in json.loads(done.stdout):
        for check in scored["checks"]:
            if not check["skipped"] and check["grade"] < 10:
                kind = scored["type_meta"]["kind"]
                findings.add((kind, check["check"]["id"], SEVERITY[check["grade"]]))
    return findings


@pytest.mark.parametrize("values", sorted(RENDERS))
def test_every_kube_score_finding_is_explained(
    helm_binary: str, tmp_path: Path, values: str
) -> None:
    found = kube_score(helm_template(helm_binary, tmp_path, *RENDERS[values]))
    explained = {row[1:] for row in documented_findings() if row[0] == values}
    assert found - explained == set(), "explain these in helm/mme-operator/CHECKS.md"
    assert explained - found == set(), "CHECKS.md explains findings kube-score no longer makes"
    if values == "full":
        assert not [f for f in found if f[2] == "CRITICAL"]

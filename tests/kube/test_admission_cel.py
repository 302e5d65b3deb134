"""The real API server refuses what a GPU multi-model endpoint cannot run, with the CRD's words.

`kubectl apply --dry-run=server` against the envtest kube-apiserver: the CRD (with its CEL
rules, within the server's cost budget) is installed, and each bad spec is refused naming
its field, as `mme-operator validate` does (tests/unit/api/test_admission.py).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.cluster import ControlPlane
from tests.unit.api.documents import GOOD, changed

pytestmark = pytest.mark.envtest

BASE = changed(GOOD, "metadata", {"name": "admission", "namespace": "default"})


def server_dry_run(control_plane: ControlPlane, doc: dict[str, Any]) -> tuple[int, str]:
    done = control_plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(doc), check=False
    )
    return done.returncode, done.stdout + done.stderr


def test_the_good_document_is_admitted(control_plane: ControlPlane) -> None:
    code, output = server_dry_run(control_plane, BASE)
    assert code == 0, output


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "spec.models.0.instanceGroups.0.gpus",
            [1],
            'spec.models[0].instanceGroups[0].gpus: Invalid value: "object": GPU multi-model '
            "endpoints run on single-GPU instances only",
        ),
        (
            "spec.models.1.backend",
            "vllm",
            'spec.models[1].backend: Invalid value: "object": backends vllm and tensorrtllm',
        ),
        ("spec.tags", {"aws:team": "ml"}, "tag keys starting with aws: are reserved by AWS"),
        (
            "spec.tags",
            {f"t{i}": "v" for i in range(48)},
            "spec.tags: Too many: 48: must have at most 47",
        ),
        (
            "spec.tags",
            {"team": "a;b"},
            'spec.tags.team: Invalid value: "a;b": spec.tags.team in body should match',
        ),
        ("spec.tags", {"k" * 129: "v"}, "tag keys must be 1-128 characters"),
        (
            "spec.models.1.parameters",
            {f"p{i}": "v" for i in range(65)},
            "must have at most 64 items",
        ),
        (
            "spec.environment",
            {"V": "v" * 1025},
            "spec.environment.V: Too long: may not be more than 1024",
        ),
        ("spec.models.0.inputs.0.dims", [2**63], "spec.models[0].inputs[0].dims[0]"),
    ],
)
def test_bad_specs_are_refused_by_the_api_server(
    control_plane: ControlPlane, path: str, value: Any, expected: str
) -> None:
    code, output = server_dry_run(control_plane, changed(BASE, path, value))
    assert code != 0
    assert expected in " ".join(output.split()), output

"""A production install: the bare wheel, no extras, in a fresh venv from PyPI.

What the image and a plain ``pip install mme-operator`` get: the operator's own
dependencies and nothing of the local stand-ins, with ``run``, ``validate`` and ``render``
working, and ``demo`` saying in one line what to install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

# Distributions that only the local stand-ins (extra ``local``) or the demo bring.
STAND_IN_DISTRIBUTIONS = {
    "moto",
    "kmock",
    "flask",
    "werkzeug",
    "cfn-lint",
    "sympy",
    "networkx",
    "docker",
    "nvidia-pytriton",
    "grpcio",
}


def run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # Without PYTHONPATH: a checkout on it would count as "already installed" to pip.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the project's wheel and what PyPI resolves for it, no extras."""
    root = tmp_path_factory.mktemp("bare")
    wheels = root / "wheels"
    built = run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", ROOT, "-w", wheels)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("mme_operator-*.whl")
    venv = root / "venv"
    created = run(sys.executable, "-m", "venv", venv)
    assert created.returncode == 0, created.stderr
    installed = run(
        venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel
    )
    assert installed.returncode == 0, installed.stderr
    return venv


def test_bare_install_has_no_stand_in_package(bare_venv: Path) -> None:
    listed = run(bare_venv / "bin" / "python", "-m", "pip", "list", "--format=json")
    assert listed.returncode == 0, listed.stderr
    names = {entry["name"].lower() for entry in json.loads(listed.stdout)}
    assert "mme-operator" in names
    assert names & STAND_IN_DISTRIBUTIONS == set()


def test_bare_install_ships_the_trimmed_sagemaker_model(bare_venv: Path) -> None:
    # Package data: without the .json.gz in the wheel, botocore's full model would load.
    probe = (
        "from mme_operator.sagemaker.clients import make_clients;"
        "from mme_operator.settings import Settings;"
        "c = make_clients('us-east-1', Settings());"
        "print(c.sagemaker.meta.service_model.metadata['x-mme-trimmed-from'])"
    )
    env_probe = run(bare_venv / "bin" / "python", "-c", probe)
    assert env_probe.returncode == 0, env_probe.stderr
    assert env_probe.stdout.startswith("botocore ")


def test_bare_install_runs_validates_and_renders(bare_venv: Path, tmp_path: Path) -> None:
    script = bare_venv / "bin" / "mme-operator"
    example = ROOT / "examples" / "small-multi-model.yaml"

    helped = run(script, "run", "--help", cwd=tmp_path)
    validated = run(script, "validate", "-f", example, cwd=tmp_path)
    rendered = run(script, "render", "-f", example, "-o", tmp_path / "out", cwd=tmp_path)

    assert helped.returncode == 0, helped.stderr
    assert "--liveness" in helped.stdout
    assert validated.returncode == 0, validated.stderr
    assert rendered.returncode == 0, rendered.stderr
    configs = list((tmp_path / "out").rglob("config.pbtxt"))
    assert configs, rendered.stdout
    assert all("max_batch_size" in path.read_text() for path in configs)


def test_bare_install_says_what_the_demo_needs(bare_venv: Path, tmp_path: Path) -> None:
    for command in ("demo", "local-aws"):
        result = run(bare_venv / "bin" / "mme-operator", command, cwd=tmp_path)

        assert result.returncode == 3, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        # No index has mme-operator: the hint installs the extras from what pip installed.
        (wheel,) = (bare_venv.parent / "wheels").glob("mme_operator-*.whl")
        assert f"pip install '{wheel}[local,triton]'" in lines[0]


def test_bare_install_runs_without_the_kubernetes_client(bare_venv: Path, tmp_path: Path) -> None:
    # kopf imports the official client whenever it is installed (about 10 MiB more): the
    # operator logs in and writes ConfigMaps with its own code (mme_operator.kube).
    listed = run(bare_venv / "bin" / "python", "-m", "pip", "list", "--format=json")
    names = {entry["name"].lower() for entry in json.loads(listed.stdout)}
    assert "kubernetes" not in names

    imported = run(
        bare_venv / "bin" / "python",
        "-c",
        "import mme_operator.runner, mme_operator.handlers, mme_operator.cli; import sys; "
        "assert 'kubernetes' not in sys.modules, 'kubernetes imported'",
        cwd=tmp_path,
    )
    assert imported.returncode == 0, imported.stderr

"""The container image, checked without a Docker engine: the Dockerfile's shape, the build
context .dockerignore leaves, the wheel the builder stage makes from it, and the CLI that
the image's entrypoint and the chart's arguments rely on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "mme_operator"
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    joined = DOCKERFILE.replace("\\\n", " ")
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_dockerfile_builds_a_wheel_then_runs_it_as_a_non_root_user() -> None:
    steps = instructions()
    froms = [args for keyword, args in steps if keyword == "FROM"]
    assert froms == ["python:3.11-slim AS builder", "python:3.11-slim"]
    runtime = steps[[i for i, (k, _) in enumerate(steps) if k == "FROM"][1] :]
    runs = " ".join(args for keyword, args in runtime if keyword == "RUN")
    assert "pip install /wheels/*.whl" in runs
    assert "--uid 10001" in runs
    assert ("USER", "10001:10001") in runtime
    assert ("ENTRYPOINT", '["mme-operator", "run"]') in runtime
    builder_runs = [
        args for keyword, args in steps[: len(steps) - len(runtime)] if keyword == "RUN"
    ]
    assert any("pip wheel --no-deps" in args for args in builder_runs)
    # The user is switched after everything that needs root, and stays switched.
    last_user = max(i for i, (k, _) in enumerate(runtime) if k == "USER")
    assert all(k != "RUN" for k, _ in runtime[last_user:])


def context_includes() -> list[str]:
    """What .dockerignore lets into the build context (it ignores everything else)."""
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", ".dockerignore starts by ignoring everything"
    return [rule[1:].rstrip("/") for rule in rules if rule.startswith("!")]


def test_build_context_holds_what_the_dockerfile_copies() -> None:
    included = set(context_includes())
    copied = {
        source.rstrip("/").rstrip("*")
        for keyword, args in instructions()
        if keyword == "COPY" and "--from" not in args
        for source in args.split()[:-1]
    }
    assert copied <= included, f"COPY needs {copied - included} but .dockerignore drops it"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel the builder stage makes, built from the same context in a temp dir."""
    context = tmp_path_factory.mktemp("context")
    for name in context_includes():
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        elif source.exists():
            shutil.copy2(source, context / name)
    out = tmp_path_factory.mktemp("wheels")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(context), "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("mme_operator-*.whl")
    return built


def test_wheel_carries_every_file_of_the_package_and_the_console_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_text = archive.read(entry_points).decode()
    expected = {
        path.relative_to(PACKAGE.parent).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix in {".py", ".j2", ".json", ".yaml", ".typed"}
    }
    assert expected - names == set()
    assert "mme_operator/py.typed" in names
    assert any(n.endswith(".j2") for n in names)
    assert "mme_operator/sagemaker/images.json" in names
    assert any(n.startswith("mme_operator/demo_models/") for n in names)
    assert "mme-operator = mme_operator.cli:main" in entry_text


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.prefix) / "bin" / "mme-operator"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "mme_operator.cli"]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_console_script_runs() -> None:
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert "0.1.0" in result.stdout


def test_run_accepts_every_option_the_chart_and_image_pass() -> None:
    result = run_cli("run", "--help")
    assert result.returncode == 0, result.stdout + result.stderr
    for option in ("--liveness", "--all-namespaces", "--namespace", "--standalone", "--peering"):
        assert option in result.stdout, f"`mme-operator run` lacks {option}"

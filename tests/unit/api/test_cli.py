"""`mme-operator crd | validate | render`, as a user runs them."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from mme_operator.api import ModelEndpoint
from mme_operator.api.crd import crd_yaml
from mme_operator.cli import main

from tests.unit.api.documents import GOOD, MINIMAL, changed

CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}


def write(tmp_path: Path, *docs: Any, name: str = "in.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return str(path)


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The command as a separate process: what a user (or CI) sees, tracebacks included."""
    return subprocess.run(
        [sys.executable, "-m", "mme_operator.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_crd_prints_the_checked_in_definition() -> None:
    result = run_cli("crd")
    assert result.returncode == 0, result.stderr
    assert result.stdout == crd_yaml()
    assert yaml.safe_load(result.stdout)["kind"] == "CustomResourceDefinition"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == "mme-operator 0.1.0"


def test_validate_good_resources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = write(tmp_path, GOOD, MINIMAL)
    assert main(["validate", "-f", file]) == 0
    assert capsys.readouterr().out.splitlines() == ["ok: ml/small-llms", "ok: default/tiny"]


def test_validate_reports_each_problem_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = changed(GOOD, "spec.models.0.dynamicBatching.preferredBatchSize", [8, 64])
    bad = changed(bad, "spec.region", "Mars")
    file = write(tmp_path, bad, MINIMAL)
    assert main(["validate", "-f", file]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{file}: ml/small-llms: spec.region: 'Mars' does not match ^[a-z]{{2}}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$"
    ]
    bad = changed(GOOD, "spec.models.0.dynamicBatching.preferredBatchSize", [8, 64, 128])
    file = write(tmp_path, bad)
    assert main(["validate", "-f", file]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{file}: ml/small-llms: spec.models[0].dynamicBatching.preferredBatchSize: 64 exceeds maxBatchSize 32",
        f"{file}: ml/small-llms: spec.models[0].dynamicBatching.preferredBatchSize: 128 exceeds maxBatchSize 32",
    ]


def test_validate_from_stdin_skips_other_kinds() -> None:
    stdin = yaml.safe_dump_all([CONFIG_MAP, GOOD, None])
    result = run_cli("validate", "-f", "-", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok: ml/small-llms\n"
    assert result.stderr == "note: <stdin>: document 1 (ConfigMap) skipped: not a ModelEndpoint\n"


def test_validate_names_a_document_without_a_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nameless = copy.deepcopy(MINIMAL)
    del nameless["metadata"]
    assert main(["validate", "-f", write(tmp_path, CONFIG_MAP, nameless)]) == 2
    assert "document 2: metadata.name: required field is missing" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("spec: [unclosed\n", "in.yaml: invalid YAML at line 2, column 1: expected ',' or ']'"),
        ("a: b\n  c: d\n", "in.yaml: invalid YAML at line 2, column 4: mapping values"),
        ("- just\n- a list\n", "document 1: expected a Kubernetes object (a mapping), got list"),
        (yaml.safe_dump(CONFIG_MAP), "in.yaml: no ModelEndpoint (mme-operator.io/v1alpha1) found"),
        ("\xff\xfe", "in.yaml: cannot read"),
    ],
    ids=["unclosed", "bad-indent", "not-a-mapping", "no-endpoint", "not-utf8"],
)
def test_unusable_input_is_one_line_and_exit_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "in.yaml"
    path.write_bytes(content.encode("latin-1"))
    result = run_cli("validate", "-f", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if not line.startswith("note:")]
    assert message in line


def test_missing_file(tmp_path: Path) -> None:
    result = run_cli("validate", "-f", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert result.stderr == f"error: {tmp_path / 'absent.yaml'}: no such file\n"


def test_render_refuses_invalid_input_and_writes_nothing(tmp_path: Path) -> None:
    bad = changed(GOOD, "spec.models.1.platform", "tensorrt_plan")
    out = tmp_path / "out"
    result = run_cli("render", "-f", write(tmp_path, bad), "-o", str(out))
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"{tmp_path / 'in.yaml'}: ml/small-llms: spec.models[1]: set at most one of platform"
    )
    assert not out.exists()


def triton_renderer() -> Any:
    triton = pytest.importorskip("mme_operator.triton")
    if not hasattr(triton, "render_model_config"):
        pytest.skip("mme_operator.triton.render_model_config is not there yet")
    return triton.render_model_config


def test_render_writes_one_config_per_model(tmp_path: Path) -> None:
    render_model_config = triton_renderer()
    out = tmp_path / "out"
    result = run_cli("render", "-f", write(tmp_path, CONFIG_MAP, GOOD, MINIMAL), "-o", str(out))
    assert result.returncode == 0, result.stderr
    written = [out / name / "config.pbtxt" for name in ("bert", "echo", "resnet")]
    assert result.stdout.splitlines() == [f"wrote {path}" for path in written]
    for resource in (ModelEndpoint.model_validate(GOOD), ModelEndpoint.model_validate(MINIMAL)):
        for model in resource.spec.models:
            assert (out / model.name / "config.pbtxt").read_text() == render_model_config(model)
    assert sorted(p.name for p in out.iterdir()) == ["bert", "echo", "resnet"]


def test_render_refuses_the_same_model_name_twice(tmp_path: Path) -> None:
    triton_renderer()
    other = changed(
        changed(GOOD, "metadata.name", "other"), "spec.models", GOOD["spec"]["models"][1:]
    )
    out = tmp_path / "out"
    file = write(tmp_path, GOOD, other)
    result = run_cli("render", "-f", file, "-o", str(out))
    assert result.returncode == 2
    assert result.stderr == (
        f"{file}: ml/other: spec.models[0].name: model 'echo' is also defined by "
        f"{file}: ml/small-llms; render writes one directory per model name\n"
    )
    assert not out.exists()


def test_a_subcommand_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "crd" in capsys.readouterr().err

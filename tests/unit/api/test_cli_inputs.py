"""`validate`, `render`, `plan` and `size` take their input as `kubectl apply -f` does.

Several `-f`, directories (recursively: *.yaml, *.yml, *.json) and `-` for stdin; each
problem line starts with its file; the exit code is the worst over all files; the exit
codes are in `--help`; `render -o -` prints the configs; `size` recommends nothing from a
size it could not read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from mme_operator.api import ModelEndpoint
from mme_operator.cli import EXIT_CODES, build_parser, main
from mme_operator.extras import install_command
from mme_operator.triton import render_model_config

from tests.unit.api.documents import GOOD, MINIMAL, REPO, changed
from tests.unit.api.test_cli import CONFIG_MAP, run_cli, write

BAD = changed(MINIMAL, "spec.region", "Mars")


def test_every_file_is_checked_and_a_bad_one_fails_whatever_its_place(tmp_path: Path) -> None:
    bad = write(tmp_path, BAD, name="bad.yaml")
    good = write(tmp_path, GOOD, name="good.yaml")

    result = run_cli("validate", "-f", bad, "-f", good)

    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{bad}: default/tiny: spec.region: 'Mars' does not match")
    assert run_cli("validate", "-f", good, "-f", bad).returncode == 2
    both = run_cli("validate", "-f", good, "-f", write(tmp_path, MINIMAL, name="min.yaml"))
    assert both.returncode == 0, both.stderr
    assert both.stdout.splitlines() == ["ok: ml/small-llms", "ok: default/tiny"]


def test_a_directory_is_read_recursively_yaml_yml_and_json(tmp_path: Path) -> None:
    tree = tmp_path / "manifests"
    (tree / "team" / "deep").mkdir(parents=True)
    write(tree, GOOD, name="a.yaml")
    write(tree / "team", MINIMAL, name="b.yml")
    json_doc = changed(MINIMAL, "metadata.name", "from-json")
    (tree / "team" / "deep" / "c.json").write_text(json.dumps(json_doc))
    (tree / "README.txt").write_text("not: [a manifest")  # other suffixes are not read

    result = run_cli("validate", "-f", str(tree))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ok: ml/small-llms",
        "ok: default/tiny",
        "ok: default/from-json",
    ]
    write(tree / "team" / "deep", BAD, name="z.yaml")
    broken = run_cli("validate", "-f", str(tree))
    assert broken.returncode == 2
    assert broken.stderr.startswith(f"{tree / 'team' / 'deep' / 'z.yaml'}: default/tiny: ")


def test_an_empty_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("validate", "-f", str(empty), "-f", write(tmp_path, GOOD))
    assert result.returncode == 2
    assert result.stderr == f"error: {empty}: no *.yaml, *.yml, *.json file in this directory\n"


def test_stdin_with_files_and_its_problems_named_stdin(tmp_path: Path) -> None:
    stdin = yaml.safe_dump_all([CONFIG_MAP, BAD])

    result = run_cli("validate", "-f", write(tmp_path, GOOD), "-f", "-", stdin=stdin)

    assert result.returncode == 2
    problems = [line for line in result.stderr.splitlines() if not line.startswith("note:")]
    assert len(problems) == 1
    assert problems[0].startswith("<stdin>: default/tiny: spec.region:")
    assert "note: <stdin>: document 1 (ConfigMap) skipped" in result.stderr


def test_a_missing_file_does_not_hide_the_others_problems(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    bad = write(tmp_path, BAD, name="bad.yaml")
    result = run_cli("validate", "-f", str(missing), "-f", bad)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: {missing}: no such file"
    assert lines[1].startswith(f"{bad}: default/tiny: spec.region:")


def test_render_to_stdout_prints_each_config_after_a_header(tmp_path: Path) -> None:
    first = write(tmp_path, GOOD, name="good.yaml")
    second = write(tmp_path, MINIMAL, name="min.yaml")

    result = run_cli("render", "-f", first, "-f", second, "-o", "-")

    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "-").exists()
    # Split on the headers, as a user's awk or csplit would.
    parts = re.split(r"^# ==> (\S+) <== (.+)\n", result.stdout, flags=re.M)
    assert parts[0] == ""
    got = {(path, label): text for path, label, text in zip(*[iter(parts[1:])] * 3, strict=True)}
    expected = {}
    for file, doc in ((first, GOOD), (second, MINIMAL)):
        resource = ModelEndpoint.model_validate(doc)
        label = f"{file}: {resource.metadata.namespace}/{resource.metadata.name}"
        for model in resource.spec.models:
            expected[(f"{model.name}/config.pbtxt", label)] = render_model_config(model)
    assert got == expected


def onnx_endpoint(tmp_path: Path, name: str, size: int | None) -> str:
    """A ModelEndpoint file with one ONNX model of ``size`` bytes (None: no such file)."""
    weights = tmp_path / name / "model.onnx"
    weights.parent.mkdir()
    if size is not None:
        with weights.open("wb") as handle:
            handle.truncate(size)
    doc: dict[str, Any] = changed(MINIMAL, "metadata.name", name)
    doc = changed(doc, "spec.region", "us-east-1")  # where the catalogue has prices
    doc["spec"]["models"] = [
        {"name": name, "source": weights.as_uri(), "platform": "onnxruntime_onnx",
         "maxBatchSize": 8, "instanceGroups": [{"count": 2, "kind": "KIND_GPU"}]}
    ]  # fmt: skip
    return write(tmp_path, doc, name=f"{name}.yaml")


def test_size_recommends_nothing_from_an_unknown_size_and_names_the_model(tmp_path: Path) -> None:
    file = onnx_endpoint(tmp_path, "ghost", None)

    result = run_cli("size", "-f", file, "--output", "json")

    assert result.returncode == 2, result.stderr
    (sized,) = json.loads(result.stdout)
    assert sized["recommended"] is None
    assert sized["unknownSizes"] == ["ghost"]
    assert sized["file"] == file
    assert "the size of models ghost is unknown" in sized["why"]
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{file}: default/ghost: model ghost: size of ")
    text = run_cli("size", "-f", file)
    assert "recommended: none: not recommended: the size of models ghost is unknown" in text.stdout

    assumed = run_cli("size", "-f", file, "--assume-unknown", "--output", "json")

    assert assumed.returncode == 0, assumed.stderr
    assert json.loads(assumed.stdout)[0]["recommended"] == "ml.g4dn.xlarge"
    assert assumed.stderr.startswith(f"note: {file}: default/ghost: model ghost: size of ")


def test_the_exit_code_is_the_worst_over_all_files(tmp_path: Path) -> None:
    fits = onnx_endpoint(tmp_path, "small", 1024**2)  # 0: a recommendation
    huge = onnx_endpoint(tmp_path, "huge", 40 * 1024**3)  # 1: no type fits
    unknown = onnx_endpoint(tmp_path, "ghost", None)  # 2: unknown size
    invalid = write(tmp_path, BAD, name="bad.yaml")  # 2: invalid

    def size(*files: str) -> int:
        return run_cli("size", *[arg for f in files for arg in ("-f", f)]).returncode

    assert size(fits) == 0
    assert size(fits, huge) == 1
    assert size(huge, unknown, fits) == 2
    assert size(fits, invalid) == 2
    both = run_cli("size", "-f", invalid, "-f", huge)
    assert f"{invalid}: default/tiny: spec.region" in both.stderr
    assert "default/huge" in both.stdout  # the valid one is still sized


@pytest.mark.parametrize("command", [[], ["validate"], ["render"], ["plan"], ["size"]])
def test_help_lists_the_exit_codes(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert EXIT_CODES in out
    for code in ("0  success", "1  the work could not be done", "2  invalid input", "3  the "):
        assert code in out


def test_file_options_accept_several_paths() -> None:
    args = build_parser().parse_args(["validate", "-f", "a.yaml", "-f", "dir", "-f", "-"])
    assert args.files == ["a.yaml", "dir", "-"]


def test_a_shell_glob_after_one_f_reads_every_file(tmp_path: Path) -> None:
    # `-f examples/*.yaml` reaches the command as -f a.yaml b.yaml.
    good = write(tmp_path, GOOD, name="a.yaml")
    bad = write(tmp_path, BAD, name="b.yaml")
    result = run_cli("render", "-f", good, bad, "-o", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"{bad}: default/tiny: spec.region:")
    minimal = write(tmp_path, MINIMAL, name="c.yaml")
    assert run_cli("validate", "-f", good, minimal).stdout.splitlines() == [
        "ok: ml/small-llms",
        "ok: default/tiny",
    ]


def test_the_install_hint_points_at_this_checkout() -> None:
    assert install_command("local,triton") == f"pip install -e '{REPO}[local,triton]'"
    extras = (REPO / "pyproject.toml").read_text()
    assert re.search(r"^local = \[", extras, re.M) and re.search(r"^triton = \[", extras, re.M)

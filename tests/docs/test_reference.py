"""docs/reference.md is generated from the CRDs (scripts/gen-reference.py) and stays so."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.docs.pages import DOCS, ROOT

SCRIPT = ROOT / "scripts" / "gen-reference.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_committed_reference_is_what_the_generator_writes() -> None:
    result = _check(DOCS / "reference.md")
    assert result.returncode == 0, result.stderr


def test_a_stale_reference_is_named_in_one_line(tmp_path: Path) -> None:
    stale = tmp_path / "reference.md"
    stale.write_text((DOCS / "reference.md").read_text().replace("Fewest instances.", "Few."))
    result = _check(stale)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "make crd" in result.stderr


def _objects(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    """Every object schema under ``node`` with the path the reference gives it."""
    found = [(path, node)] if "properties" in node else []
    for name, child in node.get("properties", {}).items():
        sub, suffix = child, ""
        while "properties" not in sub:
            if sub.get("type") == "array" and "items" in sub:
                sub, suffix = sub["items"], suffix + "[]"
            elif isinstance(sub.get("additionalProperties"), dict):
                sub, suffix = sub["additionalProperties"], suffix + "{}"
            else:
                break
        if "properties" in sub:
            found += _objects(sub, f"{path}.{name}{suffix}")
    return found


def test_every_field_of_the_crd_is_documented_with_its_description() -> None:
    generator = _generator()
    page = (DOCS / "reference.md").read_text(encoding="utf-8")
    crds = generator.load_crds()
    assert sorted(c["spec"]["names"]["kind"] for c in crds) == ["Model", "ModelEndpoint"]
    for crd in crds:
        _check_documented(generator, page, crd)


def _check_documented(generator: Any, page: str, crd: dict[str, Any]) -> None:
    """Every field of ``crd`` in its own part of the page (## <kind> ...)."""
    kind = crd["spec"]["names"]["kind"]
    text = page.split(f"\n## {kind} (", 1)[1].split("\n## ", 1)[0]
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    objects = _objects(schema["spec"], "spec") + _objects(schema["status"], "status")
    assert len(objects) > 5
    for path, node in objects:
        heading = f"### `{path}` "
        assert heading in text, path
        section = text.split(heading, 1)[1].split("\n### ", 1)[0]
        for name, child in node["properties"].items():
            line = next(
                (row for row in section.splitlines() if row.startswith(f"- **`{name}`** (")),
                None,
            )
            assert line is not None, f"{path}.{name}"
            if child.get("description"):
                assert generator._text(child["description"]) in line, f"{path}.{name}"

"""The README is the short start: what it is, install and test, a first resource, the docs."""

from __future__ import annotations

import re

import yaml
from mme_operator.api import validate_resource
from mme_operator.api.model import validate_model

from tests.docs.pages import README, ROOT, code_blocks

TEXT = README.read_text(encoding="utf-8")
MAX_LINES = 250


def _installed_extras(text: str) -> list[str]:
    """The extras of every `pip install ... -e '.[...]'` line in ``text``."""
    return re.findall(r"pip install (?:-q )?-e '\.\[([a-z,]+)\]'", text)


def test_the_readme_stays_a_short_start() -> None:
    lines = TEXT.count("\n")
    assert lines <= MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_the_readme_installs_what_ci_installs() -> None:
    ci = _installed_extras((ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    readme = _installed_extras(TEXT)
    assert len(ci) == 1
    assert readme == ci


def test_the_readme_names_the_demo_and_the_test_command() -> None:
    [commands] = [block for block in code_blocks(TEXT, "sh") if "pip install" in block]
    assert "mme-operator demo" in commands
    assert "make test" in commands


def test_the_readme_model_endpoint_is_valid() -> None:
    documents = [d for block in code_blocks(TEXT, "yaml") for d in yaml.safe_load_all(block)]
    endpoints = [d for d in documents if isinstance(d, dict) and d.get("kind") == "ModelEndpoint"]
    assert len(endpoints) >= 2, "the README shows a first ModelEndpoint and a shared one"
    for document in endpoints:
        _, problems = validate_resource(document)
        assert problems == []
    models = [d for d in documents if isinstance(d, dict) and d.get("kind") == "Model"]
    assert models, "the README shows a Model attached to the shared endpoint"
    for document in models:
        _, problems = validate_model(document)
        assert problems == []


def test_the_readme_points_to_docs_pages_that_exist() -> None:
    links = re.findall(r"\]\((docs/[^)#]+)", TEXT)
    assert "docs/index.md" in links
    assert [link for link in links if not (ROOT / link).is_file()] == []
    assert "mkdocs serve" in TEXT

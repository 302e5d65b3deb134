"""The site's pages: built offline, every resource shown valid, Argo CD's health told as it is."""

from __future__ import annotations

import re

import yaml
from mme_operator.api import validate_resource

from tests.deploy.test_argocd_health import SCRIPT, health_of
from tests.docs.pages import DOCS, ROOT, code_blocks, pages

CONFIG = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def test_the_site_builds_without_the_network() -> None:
    theme = CONFIG["theme"]
    assert theme["name"] == "material"
    # Material fetches Google Fonts unless told not to; social cards and the privacy plugin
    # download at build time.
    assert theme["font"] is False
    plugins = [p if isinstance(p, str) else next(iter(p)) for p in CONFIG.get("plugins", [])]
    assert plugins == ["search"]
    assert CONFIG["strict"] is True
    assert CONFIG["validation"]["links"]["anchors"] == "warn"
    assert CONFIG["validation"]["nav"]["omitted_files"] == "warn"


def test_the_navigation_holds_every_page() -> None:
    listed = sorted(next(iter(entry.values())) for entry in CONFIG["nav"])
    assert listed == sorted(str(p.relative_to(DOCS)) for p in pages())


def test_every_model_endpoint_shown_in_the_docs_is_valid() -> None:
    shown = 0
    for page in pages():
        for block in code_blocks(page.read_text(encoding="utf-8"), "yaml"):
            document = yaml.safe_load(block)
            if isinstance(document, dict) and document.get("kind") == "ModelEndpoint":
                shown += 1
                _, problems = validate_resource(document)
                assert problems == [], page.name
    assert shown >= 1


def _script_terminal_reasons() -> set[str]:
    table = re.search(r"local terminal = \{(.*?)\}", SCRIPT, re.DOTALL)
    assert table is not None
    return set(re.findall(r"(\w+) = true", table.group(1)))


def test_the_operations_page_lists_the_health_scripts_terminal_reasons() -> None:
    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    section = text.split("## Argo CD health", 1)[1].split("\n## ", 1)[0]
    degraded = next(line for line in section.split("\n- ") if line.startswith("**Degraded**"))
    listed = set(re.findall(r"`(\w+)`", degraded)) - {"Failed"}
    assert listed == _script_terminal_reasons()


def test_artifact_conflict_is_degraded_whatever_the_phase() -> None:
    # What the Operations page says: only a person can resolve a conflict over an archive key.
    assert "ArtifactConflict" in _script_terminal_reasons()
    conflict = {
        "metadata": {"name": "m", "namespace": "ml", "generation": 1},
        "status": {
            "observedGeneration": 1,
            "phase": "Failed",
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "ArtifactConflict", "message": "x"}
            ],
        },
    }
    assert health_of(conflict)["status"] == "Degraded"
    conflict["status"]["phase"] = "Syncing"
    assert health_of(conflict)["status"] == "Degraded"

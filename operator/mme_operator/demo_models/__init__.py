"""Tiny real Triton models shipped with mme-operator, and a ModelEndpoint that serves them.

The models are Python-backend ``model.py`` files in ``<name>/model.py``; the operator never
imports them (they need Triton's ``triton_python_backend_utils``), it only packages them.
``demo.yaml`` refers to them as ``file://{DEMO_MODELS}/...`` because a manifest cannot know
where the package is installed; :func:`demo_manifest` substitutes the real location.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

DEMO_MODELS_PLACEHOLDER = "file://{DEMO_MODELS}"
MANIFEST_NAME = "demo.yaml"


def demo_models_dir() -> Path:
    """The installed ``demo_models`` directory, as a real filesystem path.

    Triton and the packager read the models as plain files, so an install that is not
    on a filesystem (a zipped package) cannot serve the demo.
    """
    root = resources.files(__name__)
    if not isinstance(root, Path):
        raise RuntimeError(
            f"the demo models must be installed as files on disk, not inside {root!r}"
        )
    return root


def demo_manifest(models_dir: Path | None = None) -> dict[str, Any]:
    """The demo ModelEndpoint as a dict, its model sources pointing into ``models_dir``.

    ``models_dir`` defaults to :func:`demo_models_dir`; another directory is useful to
    show the manifest as it reads on some other installation.
    """
    base = (models_dir or demo_models_dir()).absolute().as_uri()
    text = (resources.files(__name__) / MANIFEST_NAME).read_text(encoding="utf-8")
    doc: dict[str, Any] = yaml.safe_load(text)
    for model in doc["spec"]["models"]:
        model["source"] = model["source"].replace(DEMO_MODELS_PLACEHOLDER, base)
    return doc

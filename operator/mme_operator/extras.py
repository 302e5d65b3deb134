"""The ``pip install`` command that adds an extra to *this* installation.

No package index carries mme-operator, so ``pip install 'mme-operator[local]'`` finds
nothing. The command points at where this code came from: the checkout it runs from, the
directory or archive pip installed it from, else a checkout the user makes.
"""

from __future__ import annotations

import json
import shlex
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

DISTRIBUTION = "mme-operator"
REPOSITORY_HINT = "in a checkout of the mme-operator repository"


def _checkout_running() -> Path | None:
    """The repository root when this package is imported from a source checkout."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    return root if f'name = "{DISTRIBUTION}"' in text else None


def _installed_from() -> tuple[Path, bool] | None:
    """(local path, editable) that pip recorded for this distribution (PEP 610), if any."""
    try:
        recorded = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
        where = json.loads(recorded or "null")
    except (metadata.PackageNotFoundError, ValueError):
        return None
    if not isinstance(where, dict) or not str(where.get("url", "")).startswith("file://"):
        return None
    path = Path(unquote(urlparse(str(where["url"])).path))
    editable = bool((where.get("dir_info") or {}).get("editable"))
    return (path, editable) if path.exists() else None


def install_command(extras: str) -> str:
    """``pip install ...`` that adds ``extras`` (e.g. ``local,triton``) to this installation."""
    checkout = _checkout_running()
    if checkout is not None:
        return f"pip install -e {shlex.quote(f'{checkout}[{extras}]')}"
    recorded = _installed_from()
    if recorded is not None:
        path, editable = recorded
        return f"pip install {'-e ' if editable else ''}{shlex.quote(f'{path}[{extras}]')}"
    return f"pip install -e '.[{extras}]' ({REPOSITORY_HINT})"

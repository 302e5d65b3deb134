"""Deterministic names of the SageMaker Model and EndpointConfig.

SageMaker takes no client token, so a name must carry identity: ``<endpoint>-<hash10>``,
where the hash covers the resource's content. A retried create then targets the same name
(harmless), and a changed content gets a new name (an EndpointConfig is immutable).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

NAME_MAX = 63
HASH_LENGTH = 10
# Room for the endpoint part: the whole name minus "-" and the hash.
PREFIX_MAX = NAME_MAX - HASH_LENGTH - 1


def content_hash(content: Mapping[str, Any]) -> str:
    """First 10 hex digits of the sha256 of ``content`` as canonical JSON."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]


def name_prefix(endpoint_name: str) -> str:
    """The endpoint part of a derived name: cleaned to ``[a-zA-Z0-9-]`` and cut to fit."""
    clean = re.sub(r"-+", "-", re.sub(r"[^a-zA-Z0-9-]", "-", endpoint_name)).strip("-")
    return clean[:PREFIX_MAX].rstrip("-") or "mme"


def derived_name_pattern(endpoint_name: str) -> re.Pattern[str]:
    """Matches exactly the names :func:`model_name` / :func:`endpoint_config_name` give.

    Listing by ``NameContains`` also returns other endpoints' resources whose names merely
    contain this one's; this pattern tells them apart.
    """
    return re.compile(rf"^{re.escape(name_prefix(endpoint_name))}-[0-9a-f]{{{HASH_LENGTH}}}$")


def _derived_name(endpoint_name: str, content: Mapping[str, Any]) -> str:
    return f"{name_prefix(endpoint_name)}-{content_hash(content)}"


def model_name(endpoint_name: str, model_spec: Mapping[str, Any]) -> str:
    """Name of the SageMaker Model whose identifying content is ``model_spec``."""
    return _derived_name(endpoint_name, {"kind": "Model", "spec": model_spec})


def endpoint_config_name(endpoint_name: str, config_spec: Mapping[str, Any]) -> str:
    """Name of the SageMaker EndpointConfig whose identifying content is ``config_spec``."""
    return _derived_name(endpoint_name, {"kind": "EndpointConfig", "spec": config_spec})

"""The input constraints SageMaker checks before an operation runs: names and tags.

AWS refuses a bad name or tag set with a ``ValidationException`` that lists every broken
constraint ("2 validation errors detected: Value 'x' at 'endpointName' failed to satisfy
constraint: ..."), before anything is created. The local SageMaker must refuse the same
requests (MME-FACTS #9, #10), or tests against it would pass what AWS refuses.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from mme_operator.local.errors import AwsError, validation

NAME_MAX = 63
# CreateEndpoint / CreateEndpointConfig / CreateModel (and every call naming one).
ENDPOINT_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
MODEL_NAME_PATTERN = r"^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$"
VARIANT_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
_NAME_MEMBERS = {
    "EndpointName": ENDPOINT_NAME_PATTERN,
    "EndpointConfigName": ENDPOINT_NAME_PATTERN,
    "ModelName": MODEL_NAME_PATTERN,
}

MAX_TAGS = 50
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
TAG_PATTERN = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"
_TAG_SYMBOLS = frozenset("_.:/=+-@")


def _member(path: str) -> str:
    """``EndpointName`` -> ``endpointName``, the way AWS names a member in its messages."""
    return ".".join(part[:1].lower() + part[1:] for part in path.split("."))


def _is_tag_text(text: str) -> bool:
    return all(ch in _TAG_SYMBOLS or unicodedata.category(ch)[0] in "LZN" for ch in text)


def _name_errors(value: Any, path: str, pattern: str) -> list[str]:
    if not isinstance(value, str):
        return []
    shown = f"Value '{value}' at '{_member(path)}' failed to satisfy constraint: Member must"
    errors = []
    if len(value) > NAME_MAX:
        errors.append(f"{shown} have length less than or equal to {NAME_MAX}")
    # AWS anchors these patterns at the start only; the whole name must still match.
    if not re.fullmatch(pattern.rstrip("$"), value):
        errors.append(f"{shown} satisfy regular expression pattern: {pattern}")
    return errors


def _tag_errors(tags: Any) -> list[str]:
    if not isinstance(tags, list):
        return []
    errors = []
    if len(tags) > MAX_TAGS:
        errors.append(
            "Value '[...]' at 'tags' failed to satisfy constraint: Member must have length "
            f"less than or equal to {MAX_TAGS}"
        )
    for i, tag in enumerate(tags, start=1):
        if not isinstance(tag, dict):
            continue
        for member, limit in (("Key", TAG_KEY_MAX), ("Value", TAG_VALUE_MAX)):
            text = tag.get(member)
            if not isinstance(text, str):
                continue
            shown = (
                f"Value '{text}' at 'tags.{i}.member.{member.lower()}' failed to satisfy "
                "constraint: Member must"
            )
            if len(text) > limit:
                errors.append(f"{shown} have length less than or equal to {limit}")
            if member == "Key" and not text:
                errors.append(f"{shown} have length greater than or equal to 1")
            if not _is_tag_text(text):
                errors.append(f"{shown} satisfy regular expression pattern: {TAG_PATTERN}")
    return errors


def _reserved_tag(tags: Any) -> AwsError | None:
    for tag in tags if isinstance(tags, list) else []:
        key = tag.get("Key") if isinstance(tag, dict) else None
        if isinstance(key, str) and key.lower().startswith("aws:"):
            return validation(
                f"Tag key '{key}' is not valid: tag keys starting with 'aws:' are reserved "
                "for internal use (case insensitive)."
            )
    return None


def check_request(request: dict[str, Any]) -> None:
    """Raise the ``ValidationException`` AWS answers for bad names or tags in REQUEST."""
    errors: list[str] = []
    for member, pattern in _NAME_MEMBERS.items():
        if member in request:
            errors += _name_errors(request[member], member, pattern)
    variants = request.get("ProductionVariants")
    for i, variant in enumerate(variants if isinstance(variants, list) else [], start=1):
        if isinstance(variant, dict):
            at = f"productionVariants.{i}.member"
            errors += _name_errors(
                variant.get("VariantName"), f"{at}.variantName", VARIANT_NAME_PATTERN
            )
            errors += _name_errors(variant.get("ModelName"), f"{at}.modelName", MODEL_NAME_PATTERN)
    errors += _tag_errors(request.get("Tags"))
    if errors:
        count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected"
        raise validation(f"{count}: {'; '.join(errors)}")
    reserved = _reserved_tag(request.get("Tags"))
    if reserved is not None:
        raise reserved

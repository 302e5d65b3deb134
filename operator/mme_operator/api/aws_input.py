"""What S3 and SageMaker refuse, refused first (MME-FACTS #21): names, keys, URLs, characters.

Checked by ``validate`` and by the operator before any AWS call, so a spec AWS would refuse
halfway through a pass (after uploads, before the endpoint) is a one-line problem instead.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse

S3_KEY_MAX_BYTES = 1024
BUCKET_MIN, BUCKET_MAX = 3, 63
# S3's reserved bucket-name prefixes and suffixes ("Bucket naming rules").
BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", "--x-s3", "--table-s3")
_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
# C0 controls, DEL and C1 controls: no S3 key, environment value or header should hold them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def bucket_name_problem(name: str) -> str | None:
    """Why S3 refuses NAME as a bucket name; None when it is valid."""
    if not BUCKET_MIN <= len(name) <= BUCKET_MAX:
        return f"bucket name {name[:70]!r} must be {BUCKET_MIN}-{BUCKET_MAX} characters"
    if not _BUCKET_CHARS.match(name):
        return (
            f"bucket name {name!r} may hold only lowercase letters, digits, '.' and '-', "
            "and must start and end with a letter or digit"
        )
    if ".." in name:
        return f"bucket name {name!r} must not hold two adjacent periods"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return f"bucket name {name!r} must not be formatted as an IP address"
    for prefix in BUCKET_RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"bucket name {name!r} must not start with {prefix!r} (reserved by S3)"
    for suffix in BUCKET_RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return f"bucket name {name!r} must not end with {suffix!r} (reserved by S3)"
    return None


def control_character_problem(text: str, what: str) -> str | None:
    """Why TEXT (described by WHAT) is refused for holding a control character; None if not."""
    found = _CONTROL.search(text)
    if found is None:
        return None
    return f"{what} holds the control character U+{ord(found.group()):04X}; remove it"


def key_problem(key: str, what: str) -> str | None:
    """Why S3 refuses KEY (an object key or the longest key under a prefix); None if fine."""
    size = len(key.encode("utf-8"))
    if size > S3_KEY_MAX_BYTES:
        return f"{what} is {size} bytes of UTF-8; S3 keys are at most {S3_KEY_MAX_BYTES}"
    return control_character_problem(key, what)


def source_uri_problem(uri: str) -> str | None:
    """Why a model source URI is refused before anything reads it; None when it is fine.

    Never repeats the URI's user info (a password in ``https://user:secret@host/``).
    """
    control = control_character_problem(uri, "the source")
    if control is not None:
        return control
    try:
        parts = urllib.parse.urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        detail = "port out of range 1-65535" if "port" in str(exc).lower() else "malformed URL"
        return f"the source is not a valid URL ({detail})"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return (
            "the source holds user info (user:password@); credentials never go in a spec: "
            "use a URL without them"
        )
    if port == 0:
        return "the source's port 0 is not a port: use 1-65535, or none"
    if parts.scheme == "file":
        if parts.netloc:
            return (
                f"file:// takes no host ({parts.hostname!r}): write file:///path for a path "
                "on the operator's mounted volumes"
            )
    elif parts.scheme == "https":
        if not parts.hostname:
            return "the https:// source names no host"
    elif parts.scheme == "s3":
        bucket = parts.netloc
        refused = bucket_name_problem(bucket)
        if refused is not None:
            return refused
        key = uri[len(f"s3://{bucket}/") :]
        return key_problem(key, "the source's key")
    return None

"""Log output: JSON lines for log collectors, or plain text for people.

Extra key/values given to a log call (``logger.info("...", extra={"endpoint": ep})``)
become fields of the JSON object (``key=value`` in text). kopf's per-object loggers carry
the object's reference in ``k8s_ref``; its ``namespace`` and ``name`` become fields too.
(``name`` itself cannot be passed in ``extra``: logging reserves it for the logger's name.)
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)
# kopf's internal extras: a flag, the operator settings, and the object reference.
_KOPF_ATTRS = frozenset({"k8s_skip", "settings", "k8s_ref"})

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, then the extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Plain text: ``ts LEVEL logger: [namespace/name] message key=value ...``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        prefix = ""
        if "name" in fields:
            ns = fields.pop("namespace", None)
            prefix = f"[{ns}/{fields.pop('name')}] " if ns else f"[{fields.pop('name')}] "
        # Formatting a copy keeps the record intact for other handlers.
        copy = logging.makeLogRecord(record.__dict__)
        copy.msg, copy.args = prefix + record.getMessage(), None
        line = super().format(copy)
        if fields:
            line += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return line


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's object reference (namespace, name) and its ``extra`` key/values."""
    fields: dict[str, Any] = {}
    ref = getattr(record, "k8s_ref", None)
    if isinstance(ref, dict):
        fields.update({key: ref[key] for key in ("namespace", "name") if ref.get(key)})
    for key, value in record.__dict__.items():
        if key not in _RECORD_ATTRS and key not in _KOPF_ATTRS and not key.startswith("_"):
            fields[key] = value
    return fields


class _OperatorHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler we install, so a second configure replaces it instead of adding."""


def configure_logging(format: str = "text", level: int | str = logging.INFO) -> None:
    """Send all logs to stderr as ``json`` lines or ``text``, at ``level`` and above."""
    if format not in ("json", "text"):
        raise ValueError(f"log format must be 'json' or 'text', not {format!r}")
    handler = _OperatorHandler()
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _OperatorHandler)]
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # botocore and urllib3 are chatty at INFO/DEBUG; keep them to warnings unless debugging.
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(quiet)

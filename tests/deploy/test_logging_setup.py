"""Log output as a log collector and a person read it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from mme_operator.logging_setup import configure_logging


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_format_writes_one_object_per_line_with_extras(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json", "INFO")
    log = logging.getLogger("mme_operator.reconcile")
    log.info(
        "Created endpoint %s",
        "ml-small-llms",
        extra={"namespace": "ml", "endpoint": "ml-small-llms"},
    )
    log.debug("not shown at INFO")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("Reconcile failed")

    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "INFO"
    assert first["logger"] == "mme_operator.reconcile"
    assert first["message"] == "Created endpoint ml-small-llms"
    assert first["namespace"] == "ml" and first["endpoint"] == "ml-small-llms"
    assert first["ts"].endswith("+00:00")
    assert second["level"] == "ERROR" and "RuntimeError: boom" in second["exception"]


def test_kopf_object_reference_becomes_namespace_and_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json")
    ref = {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "ModelEndpoint",
        "name": "small-llms",
        "namespace": "ml",
    }
    logging.getLogger("kopf.objects").info(
        "Handler succeeded", extra={"k8s_ref": ref, "k8s_skip": False}
    )
    entry = json.loads(capsys.readouterr().err)
    assert entry["namespace"] == "ml" and entry["name"] == "small-llms"
    assert "k8s_ref" not in entry and "k8s_skip" not in entry


def test_text_format_is_readable_and_configuring_twice_does_not_duplicate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("text", logging.DEBUG)
    configure_logging("text", logging.DEBUG)
    ref = {"name": "small-llms", "namespace": "ml"}
    logging.getLogger("mme_operator.handlers").debug(
        "Observed endpoint", extra={"k8s_ref": ref, "status": "InService"}
    )
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "DEBUG" in line and "mme_operator.handlers: [ml/small-llms] Observed endpoint" in line
    assert line.endswith("status=InService")


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="json"):
        configure_logging("xml")

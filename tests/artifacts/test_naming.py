"""Archive names: content-addressed, computed from metadata only."""

from __future__ import annotations

import pytest
from mme_operator.artifacts import archive_key, desired_archive, parse_target_model

FP = 's3://b/bert/model.onnx etag="abc" size=10'


def test_key_is_prefix_model_and_short_hash() -> None:
    key = archive_key("ml/llms/", "bert", "cfg", FP)
    assert key.startswith("ml/llms/bert-") and key.endswith(".tar.gz")
    model, short = parse_target_model(key.removeprefix("ml/llms/")) or ("", "")
    assert model == "bert" and len(short) == 12
    assert archive_key("ml/llms/", "bert", "cfg", FP) == key  # pure and stable


@pytest.mark.parametrize(
    "change",
    [
        {"model_name": "bert2"},
        {"config_pbtxt": "cfg2"},
        {"fingerprint": FP + "x"},
        {"weights_filename": "model.plan"},
    ],
)
def test_every_input_changes_the_name(change: dict[str, str]) -> None:
    base = {"model_name": "bert", "config_pbtxt": "cfg", "fingerprint": FP}
    args = base | {k: v for k, v in change.items() if k != "weights_filename"}
    weights = change.get("weights_filename", "model.onnx")
    changed = archive_key("p/", **args, weights_filename=weights)
    assert (
        changed.rsplit("-", 1)[1]
        != archive_key("p/", **base, weights_filename="model.onnx").rsplit("-", 1)[1]
    )


def test_desired_archive_carries_target_model() -> None:
    d = desired_archive(
        prefix="ns/ep/",
        model_name="bert",
        config_pbtxt="cfg",
        source_uri="s3://b/bert/model.onnx",
        fingerprint=FP,
        weights_filename="model.onnx",
    )
    assert d.key == "ns/ep/" + d.target_model
    assert parse_target_model(d.target_model) is not None


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="must end with"):
        archive_key("no-slash", "bert", "cfg", FP)
    with pytest.raises(ValueError, match="invalid model name"):
        archive_key("p/", "../x", "cfg", FP)
    with pytest.raises(ValueError, match="plain file name"):
        desired_archive(
            prefix="p/",
            model_name="m",
            config_pbtxt="",
            source_uri="",
            fingerprint="",
            weights_filename="../model.onnx",
        )
    assert parse_target_model("bert-XYZ.tar.gz") is None

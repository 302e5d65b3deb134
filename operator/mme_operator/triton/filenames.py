"""The file name Triton loads from a model's version directory when config.pbtxt names none."""

from __future__ import annotations

from mme_operator.api import ModelSpec, Platform

# From Triton core's constants (kOnnxRuntimeOnnxFilename, kTensorRTPlanFilename, ...)
# and the backends' own defaults (vllm reads model.json, DALI model.dali).
_PLATFORM_FILENAMES: dict[Platform, str] = {
    Platform.ONNXRUNTIME_ONNX: "model.onnx",
    Platform.TENSORRT_PLAN: "model.plan",
    Platform.PYTORCH_LIBTORCH: "model.pt",
    Platform.TENSORFLOW_SAVEDMODEL: "model.savedmodel",
    Platform.TENSORFLOW_GRAPHDEF: "model.graphdef",
}
_BACKEND_FILENAMES: dict[str, str] = {
    "onnxruntime": "model.onnx",
    "tensorrt": "model.plan",
    "pytorch": "model.pt",
    # Without a platform, Triton's tensorflow backend looks for a SavedModel first.
    "tensorflow": "model.savedmodel",
    "python": "model.py",
    "vllm": "model.json",
    "openvino": "model.xml",
    "dali": "model.dali",
}
FALLBACK_FILENAME = "model"


def default_model_filename(model: ModelSpec) -> str:
    """Name of the file (or directory) Triton looks for in ``<model>/<version>/`` by default.

    The artifacts packager places a single-file source at ``<model>/1/<this name>``, so
    config.pbtxt never needs ``default_model_filename``. Unknown backends (and ensembles,
    which have no file) get ``model``.
    """
    if model.platform is not None:
        return _PLATFORM_FILENAMES.get(model.platform, FALLBACK_FILENAME)
    if model.backend is not None:
        return _BACKEND_FILENAMES.get(model.backend, FALLBACK_FILENAME)
    return FALLBACK_FILENAME

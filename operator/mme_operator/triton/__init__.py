"""Triton model configs: ``config.pbtxt`` rendered from a ModelSpec and checked with Triton's schema."""

from mme_operator.triton.filenames import default_model_filename
from mme_operator.triton.render import pbtxt_string, render_model_config
from mme_operator.triton.schema import (
    TritonConfigError,
    check_model_config,
    expected_model_config,
    parse_model_config,
)

__all__ = [
    "TritonConfigError",
    "check_model_config",
    "default_model_filename",
    "expected_model_config",
    "parse_model_config",
    "pbtxt_string",
    "render_model_config",
]

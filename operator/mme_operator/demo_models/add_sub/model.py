"""Triton Python-backend model ``add_sub``: OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1.

A demo model shipped with mme-operator. Triton loads this file as ``<model>/1/model.py``;
it is never imported by the operator (``triton_python_backend_utils`` exists only inside
Triton's Python backend).
"""

import json
from typing import Any

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """Element-wise sum and difference of two FP32 vectors of length 4."""

    def initialize(self, args: dict[str, str]) -> None:
        """Read the output data types from the model config Triton passes in."""
        config = json.loads(args["model_config"])
        self.output_dtypes = {
            name: pb_utils.triton_string_to_numpy(
                pb_utils.get_output_config_by_name(config, name)["data_type"]
            )
            for name in ("OUTPUT0", "OUTPUT1")
        }

    def execute(self, requests: list[Any]) -> list[Any]:
        """One response per request, in order, as the Python backend requires."""
        responses = []
        for request in requests:
            in0 = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            in1 = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
            out0 = pb_utils.Tensor("OUTPUT0", (in0 + in1).astype(self.output_dtypes["OUTPUT0"]))
            out1 = pb_utils.Tensor("OUTPUT1", (in0 - in1).astype(self.output_dtypes["OUTPUT1"]))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out0, out1]))
        return responses

    def finalize(self) -> None:
        """Nothing to release."""

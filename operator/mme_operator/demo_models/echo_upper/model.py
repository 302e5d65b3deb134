"""Triton Python-backend model ``echo_upper``: returns its TYPE_STRING input upper-cased.

A demo model shipped with mme-operator, configured with dynamic batching
(``max_batch_size: 8``). Triton loads this file as ``<model>/1/model.py``; it is never
imported by the operator (``triton_python_backend_utils`` exists only inside Triton).
"""

from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils


def upper_utf8(value: object) -> bytes:
    """Upper-case one string element; Triton hands TYPE_STRING elements over as bytes."""
    text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
    return text.upper().encode("utf-8")


class TritonPythonModel:
    """Upper-cases every element of TEXT into UPPER, keeping the shape."""

    def execute(self, requests: list[Any]) -> list[Any]:
        """The dynamic batcher may hand over several requests at once: one response each."""
        responses = []
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()
            upper = np.array([upper_utf8(v) for v in text.flat], dtype=np.object_)
            out = pb_utils.Tensor("UPPER", upper.reshape(text.shape))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses

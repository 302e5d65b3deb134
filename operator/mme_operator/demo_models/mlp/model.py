"""Triton Python-backend model ``mlp``: a three-layer numpy MLP with a real model's cost shape.

A model shipped with mme-operator for ``benchmarks/serving.py`` and ``mme-operator profile``.
The weights are kept in fp16 and dequantized on every execution, as weight-only-quantized
models do: a fixed per-execution cost (about 3 ms on one CPU core) whatever the batch, while
the arithmetic grows with the batch far more slowly than linearly (batch 32 costs about
what batch 1 does). So batching and concurrent instances pay off here as they do on a
real encoder on a GPU.

The Python backend hands ``execute`` every request the scheduler put in one batch; they
are run as one matrix product, then split into one response each. Weights come from a
fixed seed, so every instance computes the same function. Keep BLAS to one thread
(``OMP_NUM_THREADS=1``) for instances to be the unit of parallelism.
"""

import itertools
import json
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

WIDTHS = (256, 1024, 1024, 256)


class TritonPythonModel:
    """OUTPUT = relu(relu(INPUT @ W1) @ W2) @ W3 over FP32 rows of 256."""

    def initialize(self, args: dict[str, str]) -> None:
        """Build the weights (seeded) and read the output type from the config."""
        config = json.loads(args["model_config"])
        self.output_dtype = pb_utils.triton_string_to_numpy(
            pb_utils.get_output_config_by_name(config, "OUTPUT")["data_type"]
        )
        rng = np.random.default_rng(0)
        self.weights = [
            (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float16)
            for n_in, n_out in itertools.pairwise(WIDTHS)
        ]

    def execute(self, requests: list[Any]) -> list[Any]:
        """One forward pass over all requests' rows; one response per request, in order."""
        inputs = [pb_utils.get_input_tensor_by_name(r, "INPUT").as_numpy() for r in requests]
        rows = [x.reshape(-1, WIDTHS[0]) for x in inputs]
        hidden = np.concatenate(rows).astype(np.float32, copy=False)
        for i, weight in enumerate(self.weights):
            hidden = hidden @ weight.astype(np.float32)
            if i < len(self.weights) - 1:
                np.maximum(hidden, 0.0, out=hidden)
        responses = []
        start = 0
        for x, r in zip(inputs, rows, strict=True):
            out = hidden[start : start + len(r)].reshape(*x.shape[:-1], WIDTHS[-1])
            start += len(r)
            tensor = pb_utils.Tensor("OUTPUT", out.astype(self.output_dtype))
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
        return responses

    def finalize(self) -> None:
        """Nothing to release."""

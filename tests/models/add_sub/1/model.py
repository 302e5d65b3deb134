"""OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1 (python_backend's add_sub, reduced).

The output types come from the model config: without its own config.pbtxt the
model fails to load ('NoneType' object is not subscriptable).
"""

import json

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.types = {
            name: pb_utils.triton_string_to_numpy(
                pb_utils.get_output_config_by_name(config, name)["data_type"]
            )
            for name in ("OUTPUT0", "OUTPUT1")
        }

    def execute(self, requests):
        responses = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            b = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
            out0 = pb_utils.Tensor("OUTPUT0", (a + b).astype(self.types["OUTPUT0"]))
            out1 = pb_utils.Tensor("OUTPUT1", (a - b).astype(self.types["OUTPUT1"]))
            responses.append(pb_utils.InferenceResponse([out0, out1]))
        return responses

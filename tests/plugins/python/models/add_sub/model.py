# OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, in the dtypes the
# config declares; ARGS (BYTES, only when requested) is initialize()'s args
# as JSON, and the names of the outputs the request asked for.
import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.args = args
        self.config = json.loads(args["model_config"])
        out0 = pb_utils.get_output_config_by_name(self.config, "OUTPUT0")
        out1 = pb_utils.get_output_config_by_name(self.config, "OUTPUT1")
        self.dtype0 = pb_utils.triton_string_to_numpy(out0["data_type"])
        self.dtype1 = pb_utils.triton_string_to_numpy(out1["data_type"])

    def execute(self, requests):
        responses = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            b = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
            outputs = [
                pb_utils.Tensor("OUTPUT0", (a + b).astype(self.dtype0)),
                pb_utils.Tensor("OUTPUT1", (a - b).astype(self.dtype1)),
            ]
            requested = request.requested_output_names()
            if "ARGS" in requested:
                text = json.dumps({"args": self.args, "requested": requested})
                outputs.append(pb_utils.Tensor("ARGS", np.array([text.encode()], dtype=object)))
            responses.append(pb_utils.InferenceResponse(output_tensors=outputs))
        return responses

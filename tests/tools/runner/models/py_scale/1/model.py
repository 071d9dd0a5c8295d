"""torii-runner test model: OUTPUT0 = factor * INPUT0, LENGTH = len(TEXT),
PROCESS = the name of this process (/proc/self/comm).

Rows are independent (the batching check compares a batch with its requests
alone), empty tensors and NaN/Inf pass through, and only the requested
outputs are returned.
"""
import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.factor = np.float32(config["parameters"]["factor"]["string_value"])
        with open("/proc/self/comm", "rb") as f:
            self.process = f.read().strip()

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            text = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()
            lengths = np.array([[len(t) for t in row] for row in text], dtype=np.int64)
            outputs = []
            for name in request.requested_output_names():
                if name == "OUTPUT0":
                    outputs.append(pb_utils.Tensor("OUTPUT0", (x * self.factor).astype(np.float32)))
                elif name == "LENGTH":
                    outputs.append(pb_utils.Tensor("LENGTH", lengths.reshape(len(text), 1)))
                elif name == "PROCESS":
                    process = np.array([[self.process]] * len(text), dtype=np.object_)
                    outputs.append(pb_utils.Tensor("PROCESS", process))
            responses.append(pb_utils.InferenceResponse(output_tensors=outputs))
        return responses

"""Step 0 of the pipeline ensemble: standardise each row of RAW.

STANDARDISED = (RAW - mean) / std, mean and std read from the config's
parameters. Written against Triton's python-backend API; runs unchanged there.
"""
import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        self.mean = np.float32(params["mean"]["string_value"])
        self.std = np.float32(params["std"]["string_value"])
        if self.std == 0:
            raise pb_utils.TritonModelException("parameter std must not be 0")

    def execute(self, requests):
        responses = []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "RAW").as_numpy()
            standardised = ((raw - self.mean) / self.std).astype(np.float32)
            responses.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("STANDARDISED", standardised)]))
        return responses

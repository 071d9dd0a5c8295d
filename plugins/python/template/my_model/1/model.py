"""A Python model for Torii, written against Triton's python-backend API.

For each row of FEATURES it returns the standardised features
SCORES = (FEATURES - mean) / std and LABEL = b"high" when their sum is
positive, else b"low". mean and std come from the config's parameters.
A request with NaN features gets an error (the other requests of the batch
still get their answers).

Test it without a server: python3 test_model.py (next to this folder).
"""
import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        # args["model_config"] is the config as a JSON string.
        self.config = json.loads(args["model_config"])
        params = self.config.get("parameters", {})
        self.mean = float(params.get("mean", {}).get("string_value", "0"))
        self.std = float(params.get("std", {}).get("string_value", "1"))
        if self.std == 0:
            raise pb_utils.TritonModelException("parameter std must not be 0")
        pb_utils.Logger.log_info("my_model: mean %g, std %g" % (self.mean, self.std))

    def execute(self, requests):
        # Requests batched together arrive as a list; answer each, in order.
        responses = []
        for request in requests:
            # [rows, n] float32, read-only, viewing the server's memory.
            features = pb_utils.get_input_tensor_by_name(request, "FEATURES").as_numpy()
            if np.isnan(features).any():
                responses.append(pb_utils.InferenceResponse(
                    error=pb_utils.TritonError("FEATURES contains NaN",
                                               pb_utils.TritonError.INVALID_ARG)))
                continue
            scores = ((features - self.mean) / self.std).astype(np.float32)
            labels = np.where(scores.sum(axis=1, keepdims=True) > 0, b"high", b"low")
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("SCORES", scores),
                pb_utils.Tensor("LABEL", labels.astype(np.object_)),
            ]))
        return responses

    def finalize(self):
        pass

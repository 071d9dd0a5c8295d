"""The last step of the pipeline ensemble: turn scores into an answer.

TOP is the index of the highest score of each row; LABEL is b"above" when
the row's DELTA (input minus reference) sums to more than 0, else b"below".
Written against Triton's python-backend API; runs unchanged there.
"""
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            scores = pb_utils.get_input_tensor_by_name(request, "SCORES").as_numpy()
            delta = pb_utils.get_input_tensor_by_name(request, "DELTA").as_numpy()
            top = np.argmax(scores, axis=1).astype(np.int64).reshape(-1, 1)
            above = delta.sum(axis=1, keepdims=True) > 0
            label = np.where(above, b"above", b"below").astype(np.object_)
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("TOP", top),
                pb_utils.Tensor("LABEL", label),
            ]))
        return responses

# A batching model: OUT = IN * 2 per request; COUNT tells each request how
# many requests execute() received together and its own position; ID echoes
# the request id as one BYTES element per row; PARAMS the request parameters.
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for i, request in enumerate(requests):
            x = request.inputs()[0].as_numpy()
            rows = x.shape[0]
            responses.append(pb_utils.InferenceResponse([
                pb_utils.Tensor("OUT", x * 2),
                pb_utils.Tensor("COUNT", np.full((rows, 2), [len(requests), i], dtype=np.int64)),
                pb_utils.Tensor("ID", np.array([[request.request_id().encode()]] * rows,
                                               dtype=np.object_)),
                pb_utils.Tensor("PARAMS", np.array([[request.parameters().encode()]] * rows,
                                                   dtype=np.object_)),
            ]))
        return responses

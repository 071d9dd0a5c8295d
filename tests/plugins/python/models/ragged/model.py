# A batching model whose output length depends on the request: OUT holds
# IN[0, 0] copies of IN[0, 0] (INT32 [-1]), so batched requests produce
# outputs of different shapes.
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            n = int(r.inputs()[0].as_numpy()[0, 0])
            out.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor("OUT", np.full((1, n), n, dtype=np.int32))]))
        return out

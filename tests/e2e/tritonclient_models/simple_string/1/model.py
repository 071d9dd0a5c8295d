import numpy as np
import triton_python_backend_utils as pb_utils


def ints(t):
    return np.vectorize(lambda s: int(s))(t).astype(np.int64)


def strings(a):
    return np.vectorize(lambda v: str(v).encode())(a).astype(np.object_)


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for request in requests:
            a = ints(pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy())
            b = ints(pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy())
            out.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("OUTPUT0", strings(a + b)),
                pb_utils.Tensor("OUTPUT1", strings(a - b))]))
        return out

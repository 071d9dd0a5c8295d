# BYTES: OUT = upper-cased IN (elements are bytes; str outputs are encoded as
# UTF-8), LEN = the length of each element as INT32.
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            data = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()
            assert data.dtype == np.object_, data.dtype
            assert all(isinstance(x, bytes) for x in data.flat)
            upper = np.array([x.upper() for x in data.flat], dtype=np.object_).reshape(data.shape)
            lengths = np.array([len(x) for x in data.flat], dtype=np.int32).reshape(data.shape)
            responses.append(pb_utils.InferenceResponse([
                pb_utils.Tensor("OUT", upper), pb_utils.Tensor("LEN", lengths)]))
        return responses

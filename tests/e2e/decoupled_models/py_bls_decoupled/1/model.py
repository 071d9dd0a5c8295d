# Written for Torii's tests: a call to a decoupled model, every response read.
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            call = pb_utils.InferenceRequest(model_name="py_repeat",
                                             requested_output_names=["OUT"],
                                             inputs=[pb_utils.get_input_tensor_by_name(request, "IN")])
            total, count = 0, 0
            for response in call.exec(decoupled=True):
                if response.has_error():
                    raise pb_utils.TritonModelException(response.error().message())
                if len(response.output_tensors()) > 0:
                    total += int(pb_utils.get_output_tensor_by_name(response, "OUT").as_numpy().sum())
                    count += 1
            responses.append(pb_utils.InferenceResponse([
                pb_utils.Tensor("SUM", np.array([total], np.int64)),
                pb_utils.Tensor("COUNT", np.array([count], np.int64))]))
        return responses

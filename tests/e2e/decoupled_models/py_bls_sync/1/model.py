# Written for Torii's tests: a synchronous call to another model (add_sub).
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            call = pb_utils.InferenceRequest(
                model_name="add_sub",
                requested_output_names=["OUTPUT0", "OUTPUT1"],
                inputs=[pb_utils.get_input_tensor_by_name(request, "INPUT0"),
                        pb_utils.get_input_tensor_by_name(request, "INPUT1")],
                request_id="bls-" + request.request_id())
            result = call.exec()
            if result.has_error():
                raise pb_utils.TritonModelException(result.error().message())
            responses.append(pb_utils.InferenceResponse(result.output_tensors()))
        return responses

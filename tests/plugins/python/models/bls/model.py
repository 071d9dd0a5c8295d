# Calls another model of the server (Triton's "BLS"), like Triton's
# bls/sync_model.py: the model named by MODEL_NAME gets INPUT0 and INPUT1,
# and its OUTPUT0/OUTPUT1 are this model's answer. A failed call fails the
# request with the called model's error.
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            name = pb_utils.get_input_tensor_by_name(request, "MODEL_NAME").as_numpy()[0]
            call = pb_utils.InferenceRequest(
                model_name=name.decode(),
                requested_output_names=["OUTPUT0", "OUTPUT1"],
                inputs=[pb_utils.get_input_tensor_by_name(request, "INPUT0"),
                        pb_utils.get_input_tensor_by_name(request, "INPUT1")],
                request_id="bls-" + request.request_id(),
                parameters={"origin": "bls", "depth": 1})
            result = call.exec()
            if result.has_error():
                raise pb_utils.TritonModelException(result.error().message())
            responses.append(pb_utils.InferenceResponse(result.output_tensors()))
        return responses

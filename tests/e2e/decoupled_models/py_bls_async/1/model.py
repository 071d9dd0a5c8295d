# Written for Torii's tests: two concurrent calls from an async execute.
import asyncio

import triton_python_backend_utils as pb_utils


def call(a, b):
    return pb_utils.InferenceRequest(
        model_name="add_sub", requested_output_names=["OUTPUT0", "OUTPUT1"],
        inputs=[pb_utils.Tensor("INPUT0", a.as_numpy()), pb_utils.Tensor("INPUT1", b.as_numpy())])


class TritonPythonModel:
    async def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0")
            y = pb_utils.get_input_tensor_by_name(request, "INPUT1")
            first, second = await asyncio.gather(call(x, y).async_exec(), call(y, x).async_exec())
            for r in (first, second):
                if r.has_error():
                    raise pb_utils.TritonModelException(r.error().message())
            responses.append(pb_utils.InferenceResponse([
                pb_utils.Tensor("OUTPUT0",
                                pb_utils.get_output_tensor_by_name(first, "OUTPUT0").as_numpy()),
                pb_utils.Tensor("OUTPUT1",
                                pb_utils.get_output_tensor_by_name(second, "OUTPUT1").as_numpy())]))
        return responses

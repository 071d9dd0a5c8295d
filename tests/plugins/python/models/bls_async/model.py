# async execute with two concurrent calls (async_exec + asyncio.gather), like
# Triton's bls/async_model.py: OUTPUT0 from model A, OUTPUT1 from model B.
import asyncio

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    async def execute(self, requests):
        responses = []
        for request in requests:
            inputs = [pb_utils.get_input_tensor_by_name(request, "INPUT0"),
                      pb_utils.get_input_tensor_by_name(request, "INPUT1")]
            calls = [pb_utils.InferenceRequest(model_name=name,
                                               requested_output_names=["OUTPUT0", "OUTPUT1"],
                                               inputs=inputs).async_exec()
                     for name in ("model_a", "model_b")]
            a, b = await asyncio.gather(*calls)
            for r in (a, b):
                if r.has_error():
                    raise pb_utils.TritonModelException(r.error().message())
            responses.append(pb_utils.InferenceResponse([
                pb_utils.get_output_tensor_by_name(a, "OUTPUT0"),
                pb_utils.get_output_tensor_by_name(b, "OUTPUT1")]))
        return responses

# A decoupled model with async def execute: for IN = n it sends n responses
# OUT = 0..n-1, awaiting between them, then the final flag.
import asyncio

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    async def execute(self, requests):
        for request in requests:
            n = int(request.inputs()[0].as_numpy()[0])
            sender = request.get_response_sender()
            for i in range(n):
                await asyncio.sleep(0.002)
                sender.send(pb_utils.InferenceResponse(
                    [pb_utils.Tensor("OUT", np.array([i], np.int32))]))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None

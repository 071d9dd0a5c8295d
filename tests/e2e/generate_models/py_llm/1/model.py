# Written for Torii's generate tests: config.pbtxt says what it does.
import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            params = json.loads(request.parameters() or "{}")
            prompt = pb_utils.get_input_tensor_by_name(request, "PROMPT").as_numpy()
            stream = bool(pb_utils.get_input_tensor_by_name(request, "STREAM").as_numpy().flat[0])
            sender = request.get_response_sender()
            text = pb_utils.Tensor("TEXT", np.array(prompt, dtype=np.object_).reshape(1, 1))
            if not stream:
                sender.send(pb_utils.InferenceResponse([text]),
                            flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                continue
            for _ in range(int(params.get("repetitions", 1))):
                if params.get("delay_ms"):
                    time.sleep(params["delay_ms"] / 1000.0)
                if sender.is_cancelled():
                    break
                sender.send(pb_utils.InferenceResponse([text]))
            if params.get("fail_last"):
                sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError("failed at the end")),
                            flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            else:
                sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None

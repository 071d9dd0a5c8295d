# Written for Torii's tests (in the manner of Triton's `repeat` example): the
# responses come from a Python thread after execute() returned; the thread
# stops when the client goes away. It also writes a line straight to file
# descriptor 1 (as C code inside a model would), which the server must log.
import json
import os
import threading
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.threads = []

    def execute(self, requests):
        for request in requests:
            values = np.array(pb_utils.get_input_tensor_by_name(request, "IN").as_numpy())
            delay = json.loads(request.parameters() or "{}").get("delay_ms", 0)
            os.write(1, ("py_repeat: %d responses for '%s'\n"
                         % (values.size, request.request_id())).encode())
            t = threading.Thread(target=self.respond,
                                 args=(request.get_response_sender(), values, delay,
                                       request.request_id()),
                                 daemon=True)
            t.start()
            self.threads.append(t)
        return None

    def respond(self, sender, values, delay_ms, request_id):
        sent = 0
        for i in range(values.size):
            if delay_ms:
                time.sleep(delay_ms / 1000.0)
            if sender.is_cancelled():
                break
            try:
                sender.send(pb_utils.InferenceResponse([
                    pb_utils.Tensor("OUT", np.array([values[i]], dtype=np.int32)),
                    pb_utils.Tensor("IDX", np.array([i], dtype=np.uint32))]))
            except pb_utils.TritonModelException:
                break
            sent += 1
        pb_utils.Logger.log_info("py_repeat: request '%s' ended after %d of %d responses"
                                 % (request_id, sent, values.size))
        sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def finalize(self):
        for t in self.threads:
            t.join(timeout=5)

# A decoupled model in the manner of Triton's `repeat` example, written for
# these tests: for a request with IN of n elements it sends n responses from
# a thread (OUT = IN[i], IDX = i), waiting DELAY[i] ms before each, then the
# final flag; execute() returns after WAIT ms, usually before the thread is
# done. The thread keeps the request's IN array and its response sender
# after execute returned.
import threading
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        import json
        config = json.loads(args["model_config"])
        if not pb_utils.using_decoupled_model_transaction_policy(config):
            raise pb_utils.TritonModelException("this model must be decoupled")
        self.threads = []

    def execute(self, requests):
        for request in requests:
            values = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()
            delays = pb_utils.get_input_tensor_by_name(request, "DELAY").as_numpy()
            wait = pb_utils.get_input_tensor_by_name(request, "WAIT").as_numpy()
            t = threading.Thread(target=self.respond,
                                 args=(request.get_response_sender(), values, delays))
            t.daemon = True
            t.start()
            self.threads.append(t)
            time.sleep(wait[0] / 1000)
        return None

    def respond(self, sender, values, delays):
        for i in range(values.size):
            time.sleep(delays[i] / 1000)
            if sender.is_cancelled():
                break
            sender.send(pb_utils.InferenceResponse([
                pb_utils.Tensor("OUT", np.array([values[i]], dtype=np.int32)),
                pb_utils.Tensor("IDX", np.array([i], dtype=np.uint32))]))
        sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def finalize(self):
        for t in self.threads:
            t.join(timeout=10)

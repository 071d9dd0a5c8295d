# A decoupled model whose thread sends 300 ms after execute, and whose
# finalize does not wait for it: after an unload the send must fail in Python
# (never reach the host); the thread writes what happened to late_send.txt
# beside model.py.
import os
import threading
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        where = os.path.join(pb_utils.get_model_dir(), "late_send.txt")
        sender = requests[0].get_response_sender()
        threading.Thread(target=self.late, args=(sender, where), daemon=True).start()
        return None

    def late(self, sender, where):
        time.sleep(0.3)
        try:
            sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([1], np.int32))]),
                        flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            text = "sent"
        except pb_utils.TritonModelException as e:
            text = "refused: %s" % e
        with open(where, "w") as f:
            f.write(text)

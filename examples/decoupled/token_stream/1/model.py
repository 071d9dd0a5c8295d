"""Streams the words of TEXT back, one response each, the way a text
generator streams tokens (docs/decoupled.md).

execute() only takes each request's response sender and starts a thread;
the thread sends one response per word (TOKEN, POSITION), waiting
`delay_ms` (a request parameter, default 0) before each, stops early when
the client goes away, and always ends the request with the final flag.
"""
import json
import threading
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.threads = []
        self.stopping = threading.Event()

    def execute(self, requests):
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()[0]
            words = text.decode("utf-8").split()
            delay_ms = json.loads(request.parameters() or "{}").get("delay_ms", 0)
            thread = threading.Thread(target=self.stream, daemon=True,
                                      args=(request.get_response_sender(), words, delay_ms))
            thread.start()
            self.threads.append(thread)
        self.threads = [t for t in self.threads if t.is_alive()]
        return None  # a decoupled model answers through its senders

    def stream(self, sender, words, delay_ms):
        for position, word in enumerate(words):
            if delay_ms:
                time.sleep(delay_ms / 1000.0)
            if sender.is_cancelled() or self.stopping.is_set():
                break  # the client went away, or the model is unloading
            try:
                sender.send(pb_utils.InferenceResponse([
                    pb_utils.Tensor("TOKEN", np.array([word.encode("utf-8")], dtype=np.object_)),
                    pb_utils.Tensor("POSITION", np.array([position], dtype=np.int32))]))
            except pb_utils.TritonModelException:
                break  # the request can take no more responses
        sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def finalize(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=5)

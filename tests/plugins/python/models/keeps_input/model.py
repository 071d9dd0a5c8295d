# Keeps its input array after execute (what a model must not do) and says
# whether the array was a read-only view; with IN[0] < 0 it writes into the
# input, which fails.
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.kept = []

    def execute(self, requests):
        x = requests[0].inputs()[0].as_numpy()
        if x[0] < 0:
            x[0] = 0
        self.kept.append(x)
        flags = np.array([x.flags.writeable, x.flags.owndata], dtype=np.bool_)
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUT", flags)])]

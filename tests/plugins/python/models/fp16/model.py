# FP16 in and out: OUT = IN * 0.5 in float16, and the dtype numpy saw.
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = r.inputs()[0].as_numpy()
            assert x.dtype == np.float16, x.dtype
            assert not x.flags.writeable
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", x * np.float16(0.5))]))
        return out

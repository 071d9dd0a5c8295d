# Echoes every input IN_<T> as OUT_<T> and reports, in DTYPES, for each input
# "<name>:<numpy dtype>:<triton_dtype()>:<read-only>" as numpy saw it.
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for r in requests:
            tensors, seen = [], []
            for t in r.inputs():
                a = t.as_numpy()
                seen.append("%s:%s:%d:%s" % (t.name(), a.dtype, t.triton_dtype(),
                                             "ro" if not a.flags.writeable else "rw"))
                tensors.append(pb_utils.Tensor("OUT_" + t.name()[3:], a))
            tensors.append(pb_utils.Tensor("DTYPES", np.array([" ".join(seen).encode()],
                                                              dtype=np.object_)))
            responses.append(pb_utils.InferenceResponse(tensors))
        return responses

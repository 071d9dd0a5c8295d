# BF16 through DLPack with PyTorch: OUT = IN * 2 computed by torch in
# bfloat16; NOTE says what as_numpy() did with a BF16 tensor.
import numpy as np
import torch
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for r in requests:
            t = r.inputs()[0]
            try:
                t.as_numpy()
                note = b"as_numpy worked"
            except pb_utils.TritonModelException as e:
                note = str(e).encode()
            x = torch.from_dlpack(t)
            assert x.dtype == torch.bfloat16, x.dtype
            y = (x * 2).contiguous()
            responses.append(pb_utils.InferenceResponse([
                pb_utils.Tensor.from_dlpack("OUT", y),
                pb_utils.Tensor("NOTE", np.array([note], dtype=np.object_))]))
        return responses

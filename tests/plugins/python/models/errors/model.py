# MODE (INT32, one per request) chooses how execute() misbehaves:
#   0 answer OUT = IN          1 raise ValueError        2 TritonError response
#   3 return one response too few   4 response without OUT
#   5 OUT as strings (the config says FP32)    6 return a dict
#   7 None in the list         8 OUT with one row too many (the model batches)
#   9 OUT as float64: converted to the config's FP32 (with a warning)
#  10 OUT as float64 too large for FP32
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        modes = [int(pb_utils.get_input_tensor_by_name(r, "MODE").as_numpy().reshape(-1)[0])
                 for r in requests]
        if 1 in modes:
            raise ValueError("mode 1 asked me to fail")
        if 6 in modes:
            return {"not": "a list"}
        for r, mode in zip(requests, modes):
            x = pb_utils.get_input_tensor_by_name(r, "IN").as_numpy()
            if mode == 2:
                responses.append(pb_utils.InferenceResponse(
                    error=pb_utils.TritonError("bad input, says the model",
                                               pb_utils.TritonError.INVALID_ARG)))
            elif mode == 4:
                responses.append(pb_utils.InferenceResponse([]))
            elif mode == 5:
                responses.append(pb_utils.InferenceResponse(
                    [pb_utils.Tensor("OUT", x.astype(str).astype(np.object_))]))
            elif mode == 7:
                responses.append(None)
            elif mode == 8:
                responses.append(pb_utils.InferenceResponse(
                    [pb_utils.Tensor("OUT", np.concatenate([x, x[:1]]))]))
            elif mode == 9:
                responses.append(pb_utils.InferenceResponse(
                    [pb_utils.Tensor("OUT", x.astype(np.float64) / 3)]))
            elif mode == 10:
                responses.append(pb_utils.InferenceResponse(
                    [pb_utils.Tensor("OUT", np.full(x.shape, 1e300))]))
            else:
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", x.copy())]))
        if 3 in modes:
            responses.pop()
        return responses

"""torii-runner test model with no config.pbtxt: auto_complete_config declares
INPUT0 INT32 [4] -> OUTPUT0 = INPUT0 + 1 and SUM = the row's sum (INT64),
max_batch_size 4, as Triton's auto-complete examples do.
"""
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    @staticmethod
    def auto_complete_config(config):
        config.add_input({"name": "INPUT0", "data_type": "TYPE_INT32", "dims": [4]})
        config.add_output({"name": "OUTPUT0", "data_type": "TYPE_INT32", "dims": [4]})
        config.add_output({"name": "SUM", "data_type": "TYPE_INT64", "dims": [1]})
        config.set_max_batch_size(4)
        return config

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            plus_one = (x.astype(np.int64) + 1).astype(np.int32)
            total = x.astype(np.int64).sum(axis=1, keepdims=True)
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("OUTPUT0", plus_one), pb_utils.Tensor("SUM", total)]))
        return responses

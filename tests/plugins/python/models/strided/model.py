# Outputs that are numpy views, not C-contiguous arrays: REVERSED = IN read
# backwards (a negative stride), COLUMNS = the [2, 3] input transposed to
# [3, 2]. The runner must send their values in C order.
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "IN").as_numpy()
            m = pb_utils.get_input_tensor_by_name(r, "MATRIX").as_numpy()
            reversed_view = x[::-1]
            columns = m.T
            assert not reversed_view.flags.c_contiguous and not columns.flags.c_contiguous
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("REVERSED", reversed_view),
                                                   pb_utils.Tensor("COLUMNS", columns)]))
        return out

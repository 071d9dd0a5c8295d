import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """TEXT (bytes) -> FEATURES: a 64-bin histogram of the bytes (byte % 64),
    divided by the text's length."""

    def execute(self, requests):
        responses = []
        for request in requests:
            texts = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()
            features = np.zeros((texts.shape[0], 64), dtype=np.float32)
            for row, (text,) in enumerate(texts):
                data = np.frombuffer(text, dtype=np.uint8)
                if data.size == 0:
                    continue
                features[row] = np.bincount(data % 64, minlength=64) / np.float32(data.size)
            responses.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor("FEATURES", features)]))
        return responses

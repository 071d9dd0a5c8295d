import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """SCORES -> LABEL = b"class_<index of the highest score>", CONFIDENCE =
    the softmax probability of that score."""

    def execute(self, requests):
        responses = []
        for request in requests:
            scores = pb_utils.get_input_tensor_by_name(request, "SCORES").as_numpy()
            top = np.argmax(scores, axis=1)
            shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
            confidence = (shifted.max(axis=1) / shifted.sum(axis=1)).astype(np.float32)
            labels = np.array([[b"class_%d" % i] for i in top], dtype=np.object_)
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("LABEL", labels),
                pb_utils.Tensor("CONFIDENCE", confidence.reshape(-1, 1)),
            ]))
        return responses

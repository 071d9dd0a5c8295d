"""Runs my_model/1/model.py against fake requests, in plain Python: no
server needed, only numpy and triton_python_backend_utils (from Torii's
install: PYTHONPATH=$TORII/lib/torii/python).

    PYTHONPATH=$TORII/lib/torii/python python3 test_model.py
"""
import importlib.util
import json
import os
import unittest

import numpy as np
import triton_python_backend_utils as pb_utils

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_FILE = os.path.join(HERE, "my_model", "1", "model.py")

# What the server passes to initialize(). model_config mirrors config.pbtxt
# (the parts the model reads); keep the two in step.
CONFIG = {
    "name": "my_model",
    "max_batch_size": 8,
    "input": [{"name": "FEATURES", "data_type": "TYPE_FP32", "dims": [-1]}],
    "output": [{"name": "SCORES", "data_type": "TYPE_FP32", "dims": [-1]},
               {"name": "LABEL", "data_type": "TYPE_STRING", "dims": [1]}],
    "parameters": {"mean": {"string_value": "0.5"}, "std": {"string_value": "2.0"}},
}


def load_model():
    spec = importlib.util.spec_from_file_location("my_model", MODEL_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.TritonPythonModel()
    model.initialize({
        "model_config": json.dumps(CONFIG), "model_instance_kind": "CPU",
        "model_instance_name": "my_model_0", "model_instance_device_id": "0",
        "model_repository": os.path.join(HERE, "my_model"), "model_version": "1",
        "model_name": "my_model",
    })
    return model


def request(features):
    return pb_utils.InferenceRequest(
        model_name="my_model", requested_output_names=["SCORES", "LABEL"],
        inputs=[pb_utils.Tensor("FEATURES", np.asarray(features, dtype=np.float32))])


class MyModelTest(unittest.TestCase):
    def setUp(self):
        self.model = load_model()

    def test_scores_and_labels(self):
        (response,) = self.model.execute([request([[0.5, 2.5, 4.5], [0.5, -1.5, 0.5]])])
        self.assertFalse(response.has_error())
        scores = pb_utils.get_output_tensor_by_name(response, "SCORES").as_numpy()
        np.testing.assert_allclose(scores, [[0, 1, 2], [0, -1, 0]])
        self.assertEqual(scores.dtype, np.float32)
        label = pb_utils.get_output_tensor_by_name(response, "LABEL").as_numpy()
        self.assertEqual(label.tolist(), [[b"high"], [b"low"]])

    def test_one_response_per_request_in_order(self):
        responses = self.model.execute([request([[1.0]]), request([[np.nan]]), request([[0.0]])])
        self.assertEqual(len(responses), 3)
        self.assertFalse(responses[0].has_error())
        self.assertTrue(responses[1].has_error())
        self.assertEqual(responses[1].error().code(), pb_utils.TritonError.INVALID_ARG)
        self.assertIn("NaN", responses[1].error().message())
        self.assertEqual(
            pb_utils.get_output_tensor_by_name(responses[2], "LABEL").as_numpy()[0, 0], b"low")

    def test_outputs_match_the_config(self):
        (response,) = self.model.execute([request([[1.0, 2.0]])])
        for out in CONFIG["output"]:
            tensor = pb_utils.get_output_tensor_by_name(response, out["name"])
            self.assertIsNotNone(tensor, out["name"])
            self.assertEqual(tensor.as_numpy().dtype,
                             pb_utils.triton_string_to_numpy(out["data_type"]))


if __name__ == "__main__":
    unittest.main()

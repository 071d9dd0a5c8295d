"""triton_python_backend_utils without a server (plain Python, no runner):
what models use to build and read tensors, requests and responses, the
datatype tables, the BYTES encoding, and auto-complete's ModelConfig.

    PYTHONPATH=plugins/python/python python3 tests/plugins/python/utils_test.py
"""
import io
import json
import struct
import unittest
from contextlib import redirect_stderr
from unittest import mock

import numpy as np
import triton_python_backend_utils as pb_utils

# Triton's datatype codes, by their v2 names.
CODES = {"BOOL": 1, "UINT8": 2, "UINT16": 3, "UINT32": 4, "UINT64": 5, "INT8": 6, "INT16": 7,
         "INT32": 8, "INT64": 9, "FP16": 10, "FP32": 11, "FP64": 12, "BYTES": 13}
NUMPY = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
         "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
         "INT64": np.int64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64,
         "BYTES": np.object_}


def encode(items):
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


class DatatypeTest(unittest.TestCase):
    def test_codes_and_numpy_types_round_trip(self):
        for name, code in CODES.items():
            self.assertIs(pb_utils.triton_to_numpy_type(code), NUMPY[name], name)
            self.assertEqual(pb_utils.numpy_to_triton_type(NUMPY[name]), code, name)
            config_name = "TYPE_STRING" if name == "BYTES" else "TYPE_" + name
            expected = bool if name == "BOOL" else NUMPY[name]
            self.assertIs(pb_utils.triton_string_to_numpy(config_name), expected)

    def test_bf16_and_unknown_have_no_numpy_type(self):
        self.assertIsNone(pb_utils.triton_to_numpy_type(14))
        self.assertIsNone(pb_utils.triton_to_numpy_type(99))
        self.assertIsNone(pb_utils.numpy_to_triton_type(np.complex64))
        self.assertEqual(pb_utils.numpy_to_triton_type(np.bytes_), 13)
        with self.assertRaises(KeyError):
            pb_utils.triton_string_to_numpy("TYPE_NOPE")


class BytesTest(unittest.TestCase):
    def test_wire_format(self):
        arr = np.array([[b"ab", b""], [b"\x00\xff", "h\u00e9"]], dtype=np.object_)
        wire = pb_utils.serialize_byte_tensor(arr)
        self.assertEqual(wire, encode([b"ab", b"", b"\x00\xff", "h\u00e9".encode()]))
        back = pb_utils.deserialize_bytes_tensor(wire)
        self.assertEqual(back.dtype, np.object_)
        self.assertEqual(back.tolist(), [b"ab", b"", b"\x00\xff", "h\u00e9".encode()])

    def test_fixed_width_bytes_and_empty(self):
        self.assertEqual(pb_utils.serialize_byte_tensor(np.array([b"xy", b"z"])),
                         encode([b"xy", b"z"]))
        self.assertEqual(pb_utils.serialize_byte_tensor(np.array([], dtype=np.object_)), b"")
        self.assertIsNone(pb_utils.serialize_byte_tensor(np.array([1, 2], dtype=np.int32)))
        self.assertEqual(pb_utils.deserialize_bytes_tensor(b"").tolist(), [])

    def test_malformed_encoding_is_refused(self):
        with self.assertRaises(ValueError):
            pb_utils.deserialize_bytes_tensor(b"\x05\x00\x00\x00ab")
        with self.assertRaises(ValueError):
            pb_utils.deserialize_bytes_tensor(b"\x01\x00")


class TensorTest(unittest.TestCase):
    def test_numpy_tensor(self):
        arr = np.arange(6, dtype=np.float32).reshape(2, 3)
        t = pb_utils.Tensor("X", arr)
        self.assertEqual(t.name(), "X")
        self.assertIs(t.as_numpy(), arr)
        self.assertEqual(t.triton_dtype(), 11)
        self.assertEqual(t.shape(), [2, 3])
        self.assertTrue(t.is_cpu())

    def test_lists_and_str_become_arrays(self):
        self.assertEqual(pb_utils.Tensor("L", [1, 2, 3]).as_numpy().tolist(), [1, 2, 3])
        s = pb_utils.Tensor("S", np.array(["a", "bc"]))
        self.assertEqual(s.triton_dtype(), 13)
        self.assertEqual(s.as_numpy().dtype, np.object_)

    def test_unsupported_dtype_is_refused_with_the_reason(self):
        with self.assertRaises(pb_utils.TritonModelException) as cm:
            pb_utils.Tensor("C", np.zeros(2, dtype=np.complex64))
        self.assertIn("complex64", str(cm.exception))
        with self.assertRaises(pb_utils.TritonModelException):
            pb_utils.Tensor(3, np.zeros(2))

    def test_dlpack_round_trip_through_numpy(self):
        t = pb_utils.Tensor("D", np.arange(4, dtype=np.int16))
        self.assertEqual(t.__dlpack_device__(), (1, 0))
        back = pb_utils.Tensor.from_dlpack("E", np.arange(3, dtype=np.float64))
        self.assertEqual(back.name(), "E")
        self.assertEqual(back.as_numpy().tolist(), [0.0, 1.0, 2.0])


class RequestResponseTest(unittest.TestCase):
    def test_request_fields(self):
        x = pb_utils.Tensor("IN", np.ones(2, np.float32))
        r = pb_utils.InferenceRequest(model_name="m", requested_output_names=["OUT"], inputs=[x],
                                      request_id="7", parameters={"k": 1, "b": True, "s": "v"})
        self.assertEqual(r.inputs(), [x])
        self.assertEqual(r.requested_output_names(), ["OUT"])
        self.assertEqual(r.request_id(), "7")
        self.assertEqual(json.loads(r.parameters()), {"k": 1, "b": True, "s": "v"})
        self.assertIs(pb_utils.get_input_tensor_by_name(r, "IN"), x)
        self.assertIsNone(pb_utils.get_input_tensor_by_name(r, "NOPE"))
        self.assertFalse(r.is_cancelled())

    def test_request_needs_its_arguments(self):
        with self.assertRaises(TypeError):
            pb_utils.InferenceRequest(model_name="m", requested_output_names=[])
        with self.assertRaises(pb_utils.TritonModelException):
            pb_utils.InferenceRequest(model_name="m", requested_output_names=[], inputs=[1])
        with self.assertRaises(pb_utils.TritonModelException):
            pb_utils.InferenceRequest(model_name="m", requested_output_names=[], inputs=[],
                                      parameters={"k": [1]})

    def test_calls_and_senders_need_the_server(self):
        r = pb_utils.InferenceRequest(model_name="m", requested_output_names=[], inputs=[])
        with self.assertRaises(pb_utils.TritonModelException) as cm:
            r.exec()
        self.assertIn("no server", str(cm.exception))
        with self.assertRaises(pb_utils.TritonModelException):
            r.get_response_sender()

    def test_response_and_errors(self):
        out = pb_utils.Tensor("OUT", np.zeros(1))
        ok = pb_utils.InferenceResponse(output_tensors=[out])
        self.assertFalse(ok.has_error())
        self.assertIsNone(ok.error())
        self.assertIs(pb_utils.get_output_tensor_by_name(ok, "OUT"), out)
        self.assertEqual(ok.parameters(), "{}")
        err = pb_utils.InferenceResponse(error=pb_utils.TritonError("nope"))
        self.assertTrue(err.has_error())
        self.assertEqual(err.error().message(), "nope")
        self.assertEqual(err.error().code(), pb_utils.TritonError.INTERNAL)
        coded = pb_utils.TritonError("gone", pb_utils.TritonError.NOT_FOUND)
        self.assertEqual(coded.code(), 2)
        self.assertEqual([pb_utils.TritonError.UNKNOWN, pb_utils.TritonError.INVALID_ARG,
                          pb_utils.TritonError.UNAVAILABLE, pb_utils.TritonError.UNSUPPORTED,
                          pb_utils.TritonError.ALREADY_EXISTS, pb_utils.TritonError.CANCELLED],
                         [0, 3, 4, 5, 6, 7])
        with self.assertRaises(pb_utils.TritonModelException):
            pb_utils.InferenceResponse(output_tensors=[np.zeros(1)])

    def test_constants(self):
        self.assertEqual(pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL, 1)
        self.assertEqual(pb_utils.TRITONSERVER_REQUEST_FLAG_SEQUENCE_START, 1)
        self.assertEqual(pb_utils.TRITONSERVER_REQUEST_FLAG_SEQUENCE_END, 2)
        self.assertTrue(issubclass(pb_utils.TritonModelException, Exception))


class ConfigTest(unittest.TestCase):
    CONFIG = {"name": "m", "max_batch_size": 0,
              "input": [{"name": "A", "data_type": "TYPE_FP32", "dims": [4]}],
              "output": [{"name": "B", "data_type": "TYPE_INT64", "dims": [-1]}],
              "model_transaction_policy": {"decoupled": True}}

    def test_lookups(self):
        c = self.CONFIG
        self.assertEqual(pb_utils.get_input_config_by_name(c, "A")["dims"], [4])
        self.assertEqual(pb_utils.get_output_config_by_name(c, "B")["data_type"], "TYPE_INT64")
        self.assertIsNone(pb_utils.get_input_config_by_name(c, "B"))
        self.assertIsNone(pb_utils.get_output_config_by_name({}, "B"))
        self.assertTrue(pb_utils.using_decoupled_model_transaction_policy(c))
        self.assertFalse(pb_utils.using_decoupled_model_transaction_policy({}))

    def test_model_config_fills_and_keeps(self):
        mc = pb_utils.ModelConfig(json.dumps({"name": "m"}))
        mc.add_input({"name": "X", "data_type": "TYPE_FP32", "dims": [2], "optional": True})
        mc.add_output({"name": "Y", "data_type": "TYPE_FP32", "dims": [2]})
        mc.set_max_batch_size(8)
        mc.set_dynamic_batching()
        mc.set_model_transaction_policy({"decoupled": False})
        d = mc.as_dict()
        self.assertEqual(d["input"], [{"name": "X", "data_type": "TYPE_FP32", "dims": [2],
                                       "optional": True}])
        self.assertEqual(d["max_batch_size"], 8)
        self.assertEqual(d["dynamic_batching"], {})
        self.assertEqual(d["model_transaction_policy"], {"decoupled": False})
        # Adding what is there already is no change.
        mc.add_output({"name": "Y", "data_type": "TYPE_FP32", "dims": [2]})
        self.assertEqual(len(d["output"]), 1)

    def test_model_config_refuses_contradictions(self):
        mc = pb_utils.ModelConfig(json.dumps(self.CONFIG))
        cases = [
            (lambda: mc.add_input({"name": "A", "data_type": "TYPE_INT32", "dims": [4]}),
             "configuration expects datatype TYPE_FP32 for input 'A', model provides TYPE_INT32"),
            (lambda: mc.add_input({"name": "A", "data_type": "TYPE_FP32", "dims": [5]}),
             "the model expects dims [5] but the model configuration specifies dims [4]"),
            (lambda: mc.add_input({"name": "Z", "data_type": "TYPE_FP32", "dims": [1],
                                   "shape": [1]}),
             "contains property other than"),
            (lambda: mc.add_output({"name": "Z", "dims": [1]}), "missing 'data_type' property"),
            (lambda: mc.set_model_transaction_policy({"decoupled": False}),
             "trying to change decoupled property"),
            (lambda: mc.set_model_transaction_policy({"other": 1}),
             "contains property other than 'decoupled'"),
        ]
        for call, message in cases:
            with self.assertRaises(ValueError) as cm:
                call()
            self.assertIn(message, str(cm.exception))
        mc2 = pb_utils.ModelConfig(json.dumps({"name": "m", "max_batch_size": 16}))
        with self.assertRaises(ValueError) as cm:
            mc2.set_max_batch_size(4)
        self.assertIn("max_batch_size 16", str(cm.exception))
        mc3 = pb_utils.ModelConfig(json.dumps({"name": "m", "sequence_batching": {}}))
        with self.assertRaises(ValueError):
            mc3.set_dynamic_batching()


class LoggerAndMetricsTest(unittest.TestCase):
    def test_logger_writes_to_stderr_without_a_server(self):
        err = io.StringIO()
        with mock.patch("sys.__stderr__", err):
            pb_utils.Logger.log_info("hello")
            pb_utils.Logger.log_warn("careful")
            pb_utils.Logger.log("explicit", pb_utils.Logger.ERROR)
        self.assertEqual(err.getvalue(), "[INFO] hello\n[WARNING] careful\n[ERROR] explicit\n")

    def test_metrics_keep_their_value_locally(self):
        with redirect_stderr(io.StringIO()), mock.patch("sys.__stderr__", io.StringIO()):
            family = pb_utils.MetricFamily("m", "d", pb_utils.MetricFamily.COUNTER)
        metric = family.Metric(labels={"a": "b"})
        metric.increment(2)
        metric.increment(3)
        self.assertEqual(metric.value(), 5)
        with self.assertRaises(pb_utils.TritonModelException):
            metric.set(1)
        with self.assertRaises(pb_utils.TritonModelException):
            metric.increment(-1)
        with self.assertRaises(pb_utils.TritonModelException):
            family.Metric(labels="a=b")
        with self.assertRaises(pb_utils.TritonModelException):
            family.Metric(labels={"a": 1})
        with self.assertRaises(pb_utils.TritonModelException):
            family.Metric(labels={}, buckets=[1.0])
        hist = pb_utils.MetricFamily("h", "d", pb_utils.MetricFamily.HISTOGRAM)
        with self.assertRaises(pb_utils.TritonModelException):
            hist.Metric(labels={})
        observed = hist.Metric(labels={}, buckets=[1.0, 2.0])
        observed.observe(1.5)
        with self.assertRaises(pb_utils.TritonModelException):
            observed.value()
        gauge = pb_utils.MetricFamily("g", "d", pb_utils.MetricFamily.GAUGE).Metric()
        gauge.set(4)
        gauge.increment(-6)
        self.assertEqual(gauge.value(), -2)

    def test_model_control_is_not_supported(self):
        with self.assertRaises(pb_utils.TritonModelException):
            pb_utils.load_model(model_name="x")
        with self.assertRaises(pb_utils.TritonModelException):
            pb_utils.get_model_dir()


if __name__ == "__main__":
    unittest.main()

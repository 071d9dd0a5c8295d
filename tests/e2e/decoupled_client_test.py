#!/usr/bin/python3
"""Decoupled models through ModelStreamInfer with a client we did not write:
Debian's python3-grpcio with stubs generated from proto/ (the same the
clients.python test uses).

It starts torii-server on a free 127.0.0.1 port with a temporary repository
holding examples/decoupled/token_stream (Python, decoupled), the stream
test runner isolated (stream_iso), add_sub and the Python models of
tests/e2e/decoupled_models, and checks Triton's stream conventions,
concurrent streams, that a client that goes away stops the model's work, and
Python models that call other models (exec, async_exec, a decoupled call). The server is always stopped (SIGTERM, then SIGKILL) and the
repository removed.

    /usr/bin/python3 tests/e2e/decoupled_client_test.py --server build/bin/torii-server \
        --stubs build/tests/clients/python_stubs --stream-runner <libtorii_stream.so> \
        --examples examples --models tests/e2e/decoupled_models -v

Only the standard library besides grpcio/protobuf.
"""

import argparse
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from torii_server import free_port

ARGS = None
SERVER = None
pb = None
pb_grpc = None
grpc = None

STREAM_CONFIG = """name: "stream_iso"
backend: "stream"
max_batch_size: 0
input [ { name: "COUNT" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "INDEX" data_type: TYPE_INT32 dims: [ 1 ] },
         { name: "PID" data_type: TYPE_INT64 dims: [ 1 ] } ]
model_transaction_policy { decoupled: true }
parameters { key: "isolation" value { string_value: "process" } }
"""


class Server:
    def __init__(self):
        self.repo = tempfile.mkdtemp(prefix="torii-decoupled-py-")
        shutil.copytree(os.path.join(ARGS.examples, "decoupled", "token_stream"),
                        os.path.join(self.repo, "token_stream"))
        os.makedirs(os.path.join(self.repo, "stream_iso", "1"))
        with open(os.path.join(self.repo, "stream_iso", "config.pbtxt"), "w") as f:
            f.write(STREAM_CONFIG)
        shutil.copy(ARGS.stream_runner, os.path.join(self.repo, "stream_iso", "libtorii_stream.so"))
        shutil.copytree(os.path.join(ARGS.examples, "model_repository", "add_sub"),
                        os.path.join(self.repo, "add_sub"))
        for name in os.listdir(ARGS.models):
            shutil.copytree(os.path.join(ARGS.models, name), os.path.join(self.repo, name))
        self.port = free_port()
        self.log_path = os.path.join(self.repo, "server.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [ARGS.server, "--model-repository=" + self.repo, "--grpc-address=127.0.0.1",
             "--grpc-port=%d" % self.port, "--metrics-address=127.0.0.1",
             "--metrics-port=%d" % free_port(), "--allow-http=false"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.port)
        self.stub = pb_grpc.GRPCInferenceServiceStub(self.channel)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if self.stub.ServerReady(pb.ServerReadyRequest(), timeout=2).ready:
                    return
            except grpc.RpcError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("torii-server did not become ready:\n" + self.read_log()[-3000:])

    def read_log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, needle, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in self.read_log().splitlines():
                if needle in line:
                    return line
            time.sleep(0.05)
        return None

    def stop(self):
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.repo, ignore_errors=True)


def bytes_tensor(*items):
    return b"".join(struct.pack("<I", len(i)) + i for i in items)


def text_request(text, request_id, empty_final=False, delay_ms=0):
    r = pb.ModelInferRequest(model_name="token_stream", id=request_id)
    r.inputs.add(name="TEXT", datatype="BYTES", shape=[1])
    r.raw_input_contents.append(bytes_tensor(text.encode()))
    if empty_final:
        r.parameters["triton_enable_empty_final_response"].bool_param = True
    if delay_ms:
        r.parameters["delay_ms"].int64_param = delay_ms
    return r


def token(message):
    raw = message.infer_response.raw_output_contents[0]
    (n,) = struct.unpack_from("<I", raw)
    return raw[4:4 + n].decode()


def final_flag(message):
    p = message.infer_response.parameters
    return p["triton_final_response"].bool_param if "triton_final_response" in p else None


class DecoupledTest(unittest.TestCase):
    def test_tokens_stream_in_order_with_triton_conventions(self):
        words = ["w%d" % i for i in range(200)]
        requests = [text_request(" ".join(words), "with-final", empty_final=True),
                    text_request("only three words", "plain")]
        got = {"with-final": [], "plain": []}
        for m in SERVER.stub.ModelStreamInfer(iter(requests), timeout=60):
            self.assertEqual(m.error_message, "")
            got[m.infer_response.id].append(m)
        with_final = got["with-final"]
        self.assertEqual(len(with_final), 201)
        self.assertEqual([token(m) for m in with_final[:200]], words)
        self.assertTrue(all(final_flag(m) is False for m in with_final[:200]))
        last = with_final[200]
        self.assertEqual(len(last.infer_response.outputs), 0)
        self.assertIs(final_flag(last), True)
        self.assertEqual(last.infer_response.model_name, "token_stream")
        self.assertEqual([token(m) for m in got["plain"]], ["only", "three", "words"])

    def test_sixteen_concurrent_streams_lose_nothing(self):
        failures = []

        def client(c):
            try:
                model = "token_stream" if c % 2 == 0 else "stream_iso"
                if model == "token_stream":
                    req = text_request(" ".join("c%d-%d" % (c, i) for i in range(50)), str(c))
                else:
                    req = pb.ModelInferRequest(model_name=model, id=str(c))
                    req.inputs.add(name="COUNT", datatype="INT32", shape=[1])
                    req.raw_input_contents.append(struct.pack("<i", 50))
                n = 0
                for m in SERVER.stub.ModelStreamInfer(iter([req]), timeout=60):
                    if m.error_message or m.infer_response.id != str(c):
                        failures.append((c, m.error_message))
                    n += 1
                if n != 50:
                    failures.append((c, "%d responses" % n))
            except Exception as e:  # noqa: BLE001 - reported below
                failures.append((c, repr(e)))

        threads = [threading.Thread(target=client, args=(c,)) for c in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=90)
        self.assertEqual(failures, [])

    def test_a_client_that_goes_away_stops_the_model(self):
        words = " ".join("x" for _ in range(100000))
        call = SERVER.stub.ModelStreamInfer(
            iter([text_request(words, "leaving", delay_ms=1)]), timeout=60)
        for i, _ in enumerate(call):
            if i == 9:
                break
        call.cancel()
        # The isolated stream runner logs how its request ended.
        req = pb.ModelInferRequest(model_name="stream_iso", id="leaving-iso")
        req.inputs.add(name="COUNT", datatype="INT32", shape=[1])
        req.raw_input_contents.append(struct.pack("<i", 1000000))
        req.parameters["delay_us"].int64_param = 500
        call = SERVER.stub.ModelStreamInfer(iter([req]), timeout=60)
        for i, _ in enumerate(call):
            if i == 9:
                break
        call.cancel()
        line = SERVER.wait_log("stream: request 'leaving-iso' ended after ")
        self.assertIsNotNone(line)
        self.assertIn("of 1000000 responses", line)
        self.assertTrue("(cancelled)" in line or "(send failed)" in line, line)

    def test_python_models_call_other_models(self):
        a = [float(i) for i in range(16)]
        b = [float(100 - i) for i in range(16)]
        for model in ("py_bls_sync", "py_bls_async"):
            req = pb.ModelInferRequest(model_name=model, id="bls")
            req.inputs.add(name="INPUT0", datatype="FP32", shape=[1, 16])
            req.inputs.add(name="INPUT1", datatype="FP32", shape=[1, 16])
            req.raw_input_contents.extend([struct.pack("<16f", *a), struct.pack("<16f", *b)])
            resp = SERVER.stub.ModelInfer(req, timeout=30)
            total = struct.unpack("<16f", resp.raw_output_contents[0])
            diff = struct.unpack("<16f", resp.raw_output_contents[1])
            self.assertEqual(list(total), [x + y for x, y in zip(a, b)], model)
            want = [x - y for x, y in zip(a, b)] if model == "py_bls_sync" else \
                [y - x for x, y in zip(a, b)]
            self.assertEqual(list(diff), want, model)
        values = list(range(1, 41))
        req = pb.ModelInferRequest(model_name="py_bls_decoupled", id="bls-d")
        req.inputs.add(name="IN", datatype="INT32", shape=[len(values)])
        req.raw_input_contents.append(struct.pack("<%di" % len(values), *values))
        resp = SERVER.stub.ModelInfer(req, timeout=30)
        self.assertEqual(struct.unpack("<q", resp.raw_output_contents[0])[0], sum(values))
        self.assertEqual(struct.unpack("<q", resp.raw_output_contents[1])[0], len(values))

    def test_unary_infer_is_refused(self):
        with self.assertRaises(grpc.RpcError) as e:
            SERVER.stub.ModelInfer(text_request("a b", "unary"), timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("ModelStreamInfer", e.exception.details())


def main():
    global ARGS, SERVER, pb, pb_grpc, grpc
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--stubs", required=True)
    parser.add_argument("--stream-runner", required=True)
    parser.add_argument("--examples", required=True)
    parser.add_argument("--models", required=True, help="tests/e2e/decoupled_models")
    ARGS, rest = parser.parse_known_args()
    sys.path.insert(0, ARGS.stubs)
    import grpc as grpc_module  # noqa: E402
    import inference_pb2  # noqa: E402
    import inference_pb2_grpc  # noqa: E402
    grpc, pb, pb_grpc = grpc_module, inference_pb2, inference_pb2_grpc
    SERVER = Server()
    try:
        result = unittest.main(argv=[sys.argv[0]] + rest, exit=False).result
    finally:
        SERVER.stop()
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()

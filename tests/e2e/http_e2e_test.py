#!/usr/bin/python3
"""End-to-end test of torii-server's HTTP/REST frontend with a client we did
not write: Python's standard library only (http.client, raw sockets, gzip,
zlib, urllib), run by /usr/bin/python3.

It starts the real server binary on free 127.0.0.1 ports against a copy of
examples/model_repository plus a slow model (the probe runner), and checks
every endpoint of docs/http.md, every bad input (malformed JSON, a wrong
Inference-Header-Content-Length, a body over --max-request-bytes, unknown
paths, wrong methods, restricted APIs, unsupported codings, oversized
headers, a request that is not HTTP), compression both ways, keep-alive and
pipelining, the idle/slow-header/slow-body timeouts, a client that leaves
while its request waits at the model, a port already in use, and the drain
on SIGTERM. The server is always stopped (SIGTERM, then SIGKILL).

    /usr/bin/python3 tests/e2e/http_e2e_test.py --server build/bin/torii-server \
        --repo examples/model_repository --probe-runner build/tests/fixtures/libtorii_probe.so -v
"""

import argparse
import ctypes
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
import zlib

ARGS = None
SERVER = None  # the shared server (explicit model control, restricted repository API)

IDLE_TIMEOUT_S = 2  # --http-idle-timeout-secs of the shared server
IO_TIMEOUT_S = 2    # --http-io-timeout-secs
MAX_REQUEST_BYTES = 1 << 20
ADMIN = {"Admin-Key": "s3cret"}  # --http-restricted-api=model-repository:admin-key=s3cret

from torii_server import die_with_parent as _die_with_parent, free_port  # noqa: E402


def make_repository(root):
    """The example models (no TorchScript one) and 'slow', served by the probe runner
    with one instance, so a second request waits in the queue."""
    repo = os.path.join(root, "repo")
    shutil.copytree(ARGS.repo, repo)
    shutil.rmtree(os.path.join(repo, "mlp"), ignore_errors=True)
    os.makedirs(os.path.join(repo, "slow", "1"))
    with open(os.path.join(repo, "slow", "config.pbtxt"), "w") as f:
        f.write('backend: "probe"\nmax_batch_size: 1\n'
                'input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]\n'
                'output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]\n'
                'instance_group [ { count: 1 kind: KIND_CPU } ]\n')
    shutil.copy(ARGS.probe_runner, os.path.join(repo, "slow", "libtorii_probe.so"))
    return repo


class Server:
    """torii-server on free loopback ports; ready once /v2/health/ready is 200."""

    def __init__(self, repo, extra, wait_ready=True):
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.metrics_port = free_port()
        fd, self.log_path = tempfile.mkstemp(prefix="torii-http-e2e-", suffix=".log")
        os.close(fd)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [ARGS.server, "--model-repository=" + repo,
             "--grpc-address=127.0.0.1", "--grpc-port=%d" % self.grpc_port,
             "--http-address=127.0.0.1", "--http-port=%d" % self.http_port,
             "--metrics-address=127.0.0.1", "--metrics-port=%d" % self.metrics_port] + extra,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent)
        log.close()
        if wait_ready:
            self.wait_ready()

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("torii-server exited at start:\n" + self.log())
            try:
                if request(self, "GET", "/v2/health/ready", timeout=1)[0].status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("torii-server not ready in time:\n" + self.log())

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self, timeout=20):
        """SIGTERM, then SIGKILL; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        try:
            os.unlink(self.log_path)
        except OSError:
            pass
        return code


def request(server, method, path, body=None, headers=None, timeout=10):
    """One request on a fresh connection: (response, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r, r.read()
    finally:
        conn.close()


def post_json(server, path, obj, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    r, d = request(server, "POST", path, json.dumps(obj).encode(), h)
    return r, d


def error_of(data):
    return json.loads(data)["error"]


def raw_exchange(server, payload, wait=5.0, hold_open=False):
    """Sends bytes on a new connection; returns (bytes received until close or
    `wait`, seconds until the server closed or None)."""
    s = socket.create_connection(("127.0.0.1", server.http_port), timeout=wait)
    t0 = time.time()
    s.sendall(payload)
    got, closed_after = b"", None
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                closed_after = time.time() - t0
                break
            got += chunk
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed_after = time.time() - t0
    s.close()
    return got, closed_after


def metric(server, name, **labels):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % server.metrics_port,
                                  timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all('%s="%s"' % (k, v) in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def identity_json(values, rows=1):
    return {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [rows, len(values) // rows],
                        "data": values}]}


def binary_request(inputs, params=None, outputs=None):
    """tritonclient's layout: JSON with binary_data_size per input, then the bytes.
    `inputs`: [(name, datatype, shape, raw bytes)]. Returns (body, json length)."""
    doc = {"inputs": [{"name": n, "datatype": dt, "shape": shape,
                       "parameters": {"binary_data_size": len(data)}}
                      for n, dt, shape, data in inputs]}
    if params:
        doc["parameters"] = params
    if outputs:
        doc["outputs"] = outputs
    head = json.dumps(doc).encode()
    return head + b"".join(d for _, _, _, d in inputs), len(head)


def split_binary(r, data):
    n = int(r.getheader("Inference-Header-Content-Length"))
    return json.loads(data[:n]), data[n:]


class Endpoints(unittest.TestCase):
    """Every endpoint, as docs/http.md lists it."""

    def test_health(self):
        for path in ("/v2/health/live", "/v2/health/ready"):
            r, d = request(SERVER, "GET", path)
            self.assertEqual((r.status, d), (200, b""), path)

    def test_server_metadata(self):
        r, d = request(SERVER, "GET", "/v2")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Type"), "application/json")
        meta = json.loads(d)
        self.assertEqual(meta["name"], "torii")
        self.assertRegex(meta["version"], r"^\d+\.\d+\.\d+$")
        for ext in ("model_configuration", "statistics", "model_repository", "binary_tensor_data"):
            self.assertIn(ext, meta["extensions"])

    def test_model_metadata(self):
        for path in ("/v2/models/add_sub", "/v2/models/add_sub/versions/1"):
            r, d = request(SERVER, "GET", path)
            self.assertEqual(r.status, 200, path)
            m = json.loads(d)
            self.assertEqual(m["name"], "add_sub")
            self.assertEqual(m["versions"], ["1"])
            self.assertEqual(m["platform"], "add_sub")
            self.assertEqual([(t["name"], t["datatype"], t["shape"]) for t in m["inputs"]],
                             [("INPUT0", "FP32", [-1, 16]), ("INPUT1", "FP32", [-1, 16])])
            self.assertEqual([t["name"] for t in m["outputs"]], ["OUTPUT0", "OUTPUT1"])
            self.assertEqual(m["properties"]["runner"], "add_sub")
        r, d = request(SERVER, "GET", "/v2/models/nope")
        self.assertEqual(r.status, 404)
        self.assertTrue(error_of(d).startswith("Request for unknown model"), d)
        r, d = request(SERVER, "GET", "/v2/models/add_sub/versions/9")
        self.assertEqual(r.status, 404)
        self.assertIn("'9'", error_of(d))

    def test_model_ready(self):
        self.assertEqual(request(SERVER, "GET", "/v2/models/identity/ready")[0].status, 200)
        self.assertEqual(request(SERVER, "GET", "/v2/models/identity/versions/1/ready")[0].status,
                         200)
        r, d = request(SERVER, "GET", "/v2/models/nope/ready")
        self.assertEqual(r.status, 404)
        self.assertIn("nope", error_of(d))
        self.assertEqual(request(SERVER, "GET", "/v2/models/identity/versions/3/ready")[0].status,
                         404)

    def test_model_config(self):
        r, d = request(SERVER, "GET", "/v2/models/identity/config")
        self.assertEqual(r.status, 200)
        c = json.loads(d)
        # Triton's form: 64-bit numbers as JSON numbers, config.pbtxt's names.
        self.assertEqual(c["name"], "identity")
        self.assertEqual(c["max_batch_size"], 64)
        self.assertEqual(c["input"][0]["dims"], [-1])
        self.assertEqual(c["input"][0]["data_type"], "TYPE_FP32")
        self.assertEqual(request(SERVER, "GET", "/v2/models/identity/versions/1/config")[0].status,
                         200)
        self.assertEqual(request(SERVER, "GET", "/v2/models/nope/config")[0].status, 404)

    def test_statistics(self):
        def count(path):
            r, d = request(SERVER, "GET", path)
            self.assertEqual(r.status, 200, d)
            stats = json.loads(d)["model_stats"]
            return {(s["name"], s["version"]): s for s in stats}
        before = count("/v2/models/add_sub/stats")[("add_sub", "1")]
        body = {"inputs": [{"name": n, "datatype": "FP32", "shape": [2, 16], "data": [1.0] * 32}
                           for n in ("INPUT0", "INPUT1")]}
        self.assertEqual(post_json(SERVER, "/v2/models/add_sub/infer", body)[0].status, 200)
        after = count("/v2/models/add_sub/versions/1/stats")[("add_sub", "1")]
        self.assertEqual(after["inference_count"], before["inference_count"] + 2)
        self.assertEqual(after["inference_stats"]["success"]["count"],
                         before["inference_stats"]["success"]["count"] + 1)
        self.assertTrue(after["batch_stats"])
        every = count("/v2/models/stats")
        self.assertIn(("identity", "1"), every)
        self.assertIn(("add_sub", "1"), every)
        self.assertEqual(request(SERVER, "GET", "/v2/models/nope/stats")[0].status, 404)

    def test_repository_index(self):
        r, d = request(SERVER, "POST", "/v2/repository/index", b"", ADMIN)
        self.assertEqual(r.status, 200)
        rows = {m["name"]: m for m in json.loads(d)}
        self.assertEqual(rows["identity"]["state"], "READY")
        self.assertEqual(rows["identity"]["version"], "1")
        r, d = request(SERVER, "POST", "/v2/repository/index", json.dumps({"ready": True}), ADMIN)
        self.assertEqual(r.status, 200)
        self.assertTrue(all(m["state"] == "READY" for m in json.loads(d)))

    def test_load_and_unload(self):
        path = "/v2/repository/models/identity_bytes/"
        # As tritonclient sends it.
        r, d = request(SERVER, "POST", path + "unload",
                       json.dumps({"parameters": {"unload_dependents": False}}), ADMIN)
        self.assertEqual((r.status, d), (200, b""))
        r, d = request(SERVER, "GET", "/v2/models/identity_bytes/ready")
        self.assertEqual(r.status, 400)
        self.assertIn("not ready", error_of(d))
        r, d = post_json(SERVER, "/v2/models/identity_bytes/infer",
                         {"inputs": [{"name": "INPUT0", "datatype": "BYTES", "shape": [1, 1],
                                      "data": ["x"]}]})
        self.assertEqual(r.status, 503, d)
        rows = {m["name"]: m for m in json.loads(
            request(SERVER, "POST", "/v2/repository/index", b"", ADMIN)[1])}
        self.assertEqual(rows["identity_bytes"]["state"], "UNAVAILABLE")
        r, d = request(SERVER, "POST", path + "load", b"", ADMIN)
        self.assertEqual((r.status, d), (200, b""))
        self.assertEqual(request(SERVER, "GET", "/v2/models/identity_bytes/ready")[0].status, 200)
        # A name that is not a directory is refused; errors say "failed to load".
        r, d = request(SERVER, "POST", "/v2/repository/models/..%2F..%2Fetc/load", b"", ADMIN)
        self.assertEqual(r.status, 400)
        r, d = request(SERVER, "POST", "/v2/repository/models/nope/load", b"", ADMIN)
        self.assertEqual(r.status, 404, d)
        self.assertTrue(error_of(d).startswith("failed to load 'nope'"), d)

    def test_load_with_a_config_override(self):
        # As tritonclient's load_model(name, config=...) sends it: the config
        # as JSON text replaces config.pbtxt; a load without it goes back.
        path = "/v2/repository/models/identity_bytes/load"
        config = json.dumps({"backend": "identity", "max_batch_size": 4,
                             "input": [{"name": "INPUT0", "data_type": "TYPE_STRING",
                                        "dims": [-1]}],
                             "output": [{"name": "OUTPUT0", "data_type": "TYPE_STRING",
                                         "dims": [-1]}]})
        r, d = request(SERVER, "POST", path, json.dumps({"parameters": {"config": config}}), ADMIN)
        self.assertEqual((r.status, d), (200, b""))
        c = json.loads(request(SERVER, "GET", "/v2/models/identity_bytes/config")[1])
        self.assertEqual(c["max_batch_size"], 4)
        r, d = request(SERVER, "POST", path, json.dumps({"parameters": {"config": "{not json"}}),
                       ADMIN)
        self.assertEqual(r.status, 400)
        self.assertTrue(error_of(d).startswith("failed to load 'identity_bytes'"), d)
        self.assertEqual(request(SERVER, "POST", path, b"", ADMIN)[0].status, 200)
        c = json.loads(request(SERVER, "GET", "/v2/models/identity_bytes/config")[1])
        self.assertEqual(c["max_batch_size"], 64)

    def test_system_shared_memory(self):
        from multiprocessing import shared_memory
        shm = shared_memory.SharedMemory(create=True, size=64)
        try:
            key = "/" + shm.name.lstrip("/")
            shm.buf[:12] = struct.pack("<3f", 1.5, 2.5, -3.0)
            r, d = post_json(SERVER, "/v2/systemsharedmemory/region/e2e/register",
                             {"key": key, "offset": 0, "byte_size": 64})
            self.assertEqual((r.status, d), (200, b""))
            r, d = request(SERVER, "GET", "/v2/systemsharedmemory/region/e2e/status")
            self.assertEqual(json.loads(d), [{"name": "e2e", "key": key, "offset": 0,
                                              "byte_size": 64}])
            # Input read in place, output written in place at offset 32.
            body = {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 3],
                                "parameters": {"shared_memory_region": "e2e",
                                               "shared_memory_byte_size": 12}}],
                    "outputs": [{"name": "OUTPUT0",
                                 "parameters": {"shared_memory_region": "e2e",
                                                "shared_memory_offset": 32,
                                                "shared_memory_byte_size": 32}}]}
            r, d = post_json(SERVER, "/v2/models/identity/infer", body)
            self.assertEqual(r.status, 200, d)
            out = json.loads(d)["outputs"][0]
            self.assertEqual(out["shape"], [1, 3])
            self.assertEqual(out["parameters"]["shared_memory_byte_size"], 12)
            self.assertNotIn("data", out)
            self.assertEqual(struct.unpack("<3f", bytes(shm.buf[32:44])), (1.5, 2.5, -3.0))
            # A window past the region's end.
            body["inputs"][0]["parameters"]["shared_memory_offset"] = 60
            r, d = post_json(SERVER, "/v2/models/identity/infer", body)
            self.assertEqual(r.status, 400)
            self.assertIn("e2e", error_of(d))
            self.assertEqual(request(SERVER, "POST",
                                     "/v2/systemsharedmemory/region/e2e/unregister")[0].status, 200)
            self.assertEqual(json.loads(request(SERVER, "GET", "/v2/systemsharedmemory/status")[1]),
                             [])
        finally:
            shm.close()
            shm.unlink()
        # CUDA shared memory: refused, as Triton without GPUs answers.
        r, d = post_json(SERVER, "/v2/cudasharedmemory/region/c/register",
                         {"raw_handle": {"b64": ""}, "device_id": 0, "byte_size": 4})
        self.assertEqual(r.status, 400)
        self.assertIn("GPUs not supported", error_of(d))
        self.assertEqual(request(SERVER, "GET", "/v2/cudasharedmemory/status")[1], b"[]")


class Inference(unittest.TestCase):
    def test_json_every_shape_of_data(self):
        for data in ([1, 2, 3, 4], [[1, 2], [3, 4]]):
            body = {"id": "req-1", "inputs": [{"name": "INPUT0", "datatype": "FP32",
                                               "shape": [2, 2], "data": data}]}
            r, d = post_json(SERVER, "/v2/models/identity/infer", body)
            self.assertEqual(r.status, 200, d)
            out = json.loads(d)
            self.assertEqual(out["id"], "req-1")
            self.assertEqual((out["model_name"], out["model_version"]), ("identity", "1"))
            self.assertEqual(out["outputs"][0]["shape"], [2, 2])
            self.assertEqual(out["outputs"][0]["data"], [1, 2, 3, 4])

    def test_json_bytes_and_selected_outputs(self):
        r, d = post_json(SERVER, "/v2/models/identity_bytes/versions/1/infer",
                         {"inputs": [{"name": "INPUT0", "datatype": "BYTES", "shape": [1, 2],
                                      "data": ["héllo", ""]}]})
        self.assertEqual(r.status, 200, d)
        self.assertEqual(json.loads(d)["outputs"][0]["data"], ["héllo", ""])
        body = {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 16],
                            "data": list(range(16))},
                           {"name": "INPUT1", "datatype": "FP32", "shape": [1, 16],
                            "data": [1] * 16}],
                "outputs": [{"name": "OUTPUT1"}]}
        r, d = post_json(SERVER, "/v2/models/add_sub/infer", body)
        self.assertEqual(r.status, 200, d)
        outs = json.loads(d)["outputs"]
        self.assertEqual([o["name"] for o in outs], ["OUTPUT1"])
        self.assertEqual(outs[0]["data"], [float(i - 1) for i in range(16)])

    def test_binary_tensors_both_ways(self):
        a = struct.pack("<16f", *range(16))
        b = struct.pack("<16f", *([2.0] * 16))
        body, n = binary_request([("INPUT0", "FP32", [1, 16], a), ("INPUT1", "FP32", [1, 16], b)],
                                 params={"binary_data_output": True})
        r, d = request(SERVER, "POST", "/v2/models/add_sub/infer", body,
                       {"Inference-Header-Content-Length": str(n),
                        "Content-Type": "application/octet-stream"})
        self.assertEqual(r.status, 200, d)
        head, tail = split_binary(r, d)
        sizes = [o["parameters"]["binary_data_size"] for o in head["outputs"]]
        self.assertEqual(sizes, [64, 64])
        self.assertEqual(struct.unpack("<16f", tail[:64]), tuple(float(i + 2) for i in range(16)))
        self.assertEqual(struct.unpack("<16f", tail[64:]), tuple(float(i - 2) for i in range(16)))
        # One output binary, the other JSON.
        body, n = binary_request([("INPUT0", "FP32", [1, 16], a), ("INPUT1", "FP32", [1, 16], b)],
                                 outputs=[{"name": "OUTPUT0", "parameters": {"binary_data": True}},
                                          {"name": "OUTPUT1"}])
        r, d = request(SERVER, "POST", "/v2/models/add_sub/infer", body,
                       {"Inference-Header-Content-Length": str(n)})
        self.assertEqual(r.status, 200, d)
        head, tail = split_binary(r, d)
        self.assertEqual(len(tail), 64)
        self.assertEqual(head["outputs"][1]["data"][0], -2.0)

    def test_raw_binary_request(self):
        # Inference-Header-Content-Length: 0: the body is the model's one input.
        raw = struct.pack("<3f", 1.5, 2.5, 3.5)
        r, d = request(SERVER, "POST", "/v2/models/identity/infer", raw,
                       {"Inference-Header-Content-Length": "0"})
        self.assertEqual(r.status, 200, d)
        head, tail = split_binary(r, d)
        self.assertEqual(head["outputs"][0]["shape"], [1, 3])
        self.assertEqual(tail, raw)
        r, d = request(SERVER, "POST", "/v2/models/add_sub/infer", raw,
                       {"Inference-Header-Content-Length": "0"})
        self.assertEqual(r.status, 400)
        self.assertIn("one input", error_of(d))

    def test_compression_both_ways(self):
        body = json.dumps(identity_json([1, 2, 3])).encode()
        for coding, packed in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))):
            r, d = request(SERVER, "POST", "/v2/models/identity/infer", packed,
                           {"Content-Encoding": coding, "Accept-Encoding": coding})
            self.assertEqual(r.status, 200, coding)
            self.assertEqual(r.getheader("Content-Encoding"), coding)
            plain = gzip.decompress(d) if coding == "gzip" else zlib.decompress(d)
            self.assertEqual(json.loads(plain)["outputs"][0]["data"], [1, 2, 3])
        # Binary outputs in a compressed answer: the header counts the JSON as
        # if uncompressed, as tritonclient expects.
        raw = struct.pack("<2f", 7, 8)
        r, d = request(SERVER, "POST", "/v2/models/identity/infer", raw,
                       {"Inference-Header-Content-Length": "0", "Accept-Encoding": "gzip"})
        self.assertEqual(r.status, 200)
        plain = gzip.decompress(d)
        n = int(r.getheader("Inference-Header-Content-Length"))
        self.assertEqual(plain[n:], raw)

    def test_keep_alive_and_pipelining(self):
        conn = http.client.HTTPConnection("127.0.0.1", SERVER.http_port, timeout=10)
        for i in range(5):
            conn.request("POST", "/v2/models/identity/infer",
                         json.dumps(identity_json([float(i)])))
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(json.loads(r.read())["outputs"][0]["data"], [float(i)])
            self.assertNotEqual((r.getheader("Connection") or "").lower(), "close")
        conn.close()
        # Two requests in one write; two answers, in order.
        one = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
        two = b"GET /v2/models/nope/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        got, _ = raw_exchange(SERVER, one + two)
        statuses = re.findall(rb"HTTP/1.1 (\d+)", got)
        self.assertEqual(statuses, [b"200", b"404"])


class BadInput(unittest.TestCase):
    """Each gets a clear answer, and the server keeps serving."""

    def tearDown(self):
        self.assertEqual(request(SERVER, "GET", "/v2/health/ready")[0].status, 200)

    def test_malformed_json(self):
        for body in (b"{", b"[1,2]", b'{"inputs": 3}', b'{"inputs":[{"name":"INPUT0"}]}',
                     b'{"id": 1, "inputs": []}', b"\xff\xfe"):
            r, d = request(SERVER, "POST", "/v2/models/identity/infer", body)
            self.assertEqual(r.status, 400, body)
            self.assertTrue(error_of(d), body)

    def test_request_that_does_not_fit_the_model(self):
        cases = [
            ({"inputs": [{"name": "INPUT0", "datatype": "INT32", "shape": [1, 1], "data": [1]}]},
             "INT32"),
            ({"inputs": [{"name": "WRONG", "datatype": "FP32", "shape": [1, 1], "data": [1]}]},
             "WRONG"),
            ({"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 2], "data": [1]}]},
             "2 elements"),
            ({"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [65, 1],
                          "data": [1] * 65}]}, "65"),
            ({"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 1], "data": ["a"]}]},
             "number"),
        ]
        for body, word in cases:
            r, d = post_json(SERVER, "/v2/models/identity/infer", body)
            self.assertEqual(r.status, 400, body)
            self.assertIn(word, error_of(d))

    def test_wrong_header_length(self):
        body, n = binary_request([("INPUT0", "FP32", [1, 2], struct.pack("<2f", 1, 2))])
        for value, word in ((str(len(body) + 1), "Inference-Header-Content-Length"),
                            ("abc", "Inference-Header-Content-Length"),
                            (str(n - 5), "JSON"),
                            (str(n + 3), "")):
            r, d = request(SERVER, "POST", "/v2/models/identity/infer", body,
                           {"Inference-Header-Content-Length": value})
            self.assertEqual(r.status, 400, value)
            self.assertIn(word, error_of(d))
        # binary_data_size that does not add up to the body.
        r, d = request(SERVER, "POST", "/v2/models/identity/infer", body + b"xx",
                       {"Inference-Header-Content-Length": str(n)})
        self.assertEqual(r.status, 400)
        self.assertIn("add up", error_of(d))

    def test_body_over_the_limit(self):
        big = b"x" * (MAX_REQUEST_BYTES + 1)
        got, closed = raw_exchange(SERVER, b"POST /v2/models/identity/infer HTTP/1.1\r\nHost: x\r\n"
                                   b"Content-Length: %d\r\n\r\n" % len(big) + big)
        self.assertTrue(got.startswith(b"HTTP/1.1 413"), got[:100])
        self.assertIn(b"--max-request-bytes", got)
        self.assertIsNotNone(closed)
        # Refused before the body is read: Expect: 100-continue gets 413, not 100.
        got, _ = raw_exchange(SERVER, b"POST /v2/models/identity/infer HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(big))
        self.assertTrue(got.startswith(b"HTTP/1.1 413"), got[:100])
        # Over the limit only once decompressed.
        bomb = gzip.compress(b" " * (MAX_REQUEST_BYTES + 10))
        r, d = request(SERVER, "POST", "/v2/models/identity/infer", bomb,
                       {"Content-Encoding": "gzip"})
        self.assertEqual(r.status, 400)
        self.assertIn(str(MAX_REQUEST_BYTES), error_of(d))

    def test_unknown_path_and_wrong_method(self):
        for path in ("/", "/v1/models", "/v2/models/identity/bogus", "/v2/models/identity/versions/x",
                     "/v2/repository/models/identity"):
            r, d = request(SERVER, "GET", path)
            self.assertEqual(r.status, 404, path)
            self.assertIn("no endpoint", error_of(d))
        for method, path, allow in (("POST", "/v2/health/ready", "GET"),
                                    ("GET", "/v2/models/identity/infer", "POST"),
                                    ("DELETE", "/v2/models/identity", "GET"),
                                    ("GET", "/v2/repository/index", "POST")):
            r, d = request(SERVER, method, path, headers=ADMIN)
            self.assertEqual(r.status, 405, path)
            self.assertEqual(r.getheader("Allow"), allow)
            self.assertIn(method, error_of(d))

    def test_restricted_api(self):
        for headers in ({}, {"Admin-Key": "wrong"}):
            r, d = request(SERVER, "POST", "/v2/repository/index", b"", headers)
            self.assertEqual(r.status, 403)
            self.assertIn("admin-key", error_of(d))
        # Header names match in any case; other groups are open.
        self.assertEqual(request(SERVER, "POST", "/v2/repository/index", b"",
                                 {"ADMIN-KEY": "s3cret"})[0].status, 200)
        self.assertEqual(request(SERVER, "GET", "/v2/models/stats")[0].status, 200)

    def test_unsupported_coding_and_oversized_headers(self):
        r, d = request(SERVER, "POST", "/v2/models/identity/infer", b"{}", {"Content-Encoding": "br"})
        self.assertEqual(r.status, 415)
        self.assertEqual(r.getheader("Accept-Encoding"), "gzip, deflate")
        r, d = request(SERVER, "POST", "/v2/models/identity/infer", b"not gzip",
                       {"Content-Encoding": "gzip"})
        self.assertEqual(r.status, 400)
        got, closed = raw_exchange(SERVER, b"GET /v2 HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                   b"a" * 70000 + b"\r\n\r\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 431"), got[:80])

    def test_not_http(self):
        got, closed = raw_exchange(SERVER, b"\x16\x03\x01\x02\x00hello there\r\n\r\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 400"), got[:80])
        self.assertIsNotNone(closed)


class Timeouts(unittest.TestCase):
    def test_idle_keep_alive_connection_is_closed(self):
        got, closed = raw_exchange(SERVER, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n",
                                   wait=IDLE_TIMEOUT_S + 5)
        self.assertTrue(got.startswith(b"HTTP/1.1 200"))
        self.assertIsNotNone(closed, "the idle connection stayed open")
        self.assertGreaterEqual(closed, IDLE_TIMEOUT_S - 0.5)

    def test_slow_headers_and_slow_body(self):
        got, closed = raw_exchange(SERVER, b"GET /v2/health/live HTTP/1.1\r\nHo",
                                   wait=IDLE_TIMEOUT_S + 5)
        self.assertIsNotNone(closed, "a half-sent header held the connection")
        got, closed = raw_exchange(SERVER, b"POST /v2/models/identity/infer HTTP/1.1\r\nHost: x\r\n"
                                   b"Content-Length: 100\r\n\r\n{\"inp", wait=IO_TIMEOUT_S + 5)
        self.assertIsNotNone(closed, "a half-sent body held the connection")
        self.assertEqual(request(SERVER, "GET", "/v2/health/live")[0].status, 200)


class Cancellation(unittest.TestCase):
    def test_a_client_that_leaves_cancels_its_queued_request(self):
        before = metric(SERVER, "torii_inference_request_failure_total", model="slow",
                        reason="cancelled")
        # The one instance is busy for a second with the first request ...
        busy = threading.Thread(target=post_json, args=(
            SERVER, "/v2/models/slow/infer",
            dict(identity_json([1.0]), parameters={"sleep_ms": 1000})))
        busy.start()
        time.sleep(0.3)
        # ... while the second waits in the queue, and its client leaves.
        body = json.dumps(identity_json([2.0])).encode()
        s = socket.create_connection(("127.0.0.1", SERVER.http_port), timeout=5)
        s.sendall(b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                  % len(body) + body)
        time.sleep(0.2)
        s.close()
        busy.join(20)
        deadline = time.time() + 10
        cancelled = before
        while time.time() < deadline and cancelled == before:
            time.sleep(0.1)
            cancelled = metric(SERVER, "torii_inference_request_failure_total", model="slow",
                               reason="cancelled")
        self.assertEqual(cancelled, before + 1)
        # Counted per endpoint and status too.
        self.assertGreater(metric(SERVER, "torii_http_requests_total", endpoint="infer",
                                  code="200"), 0)


class Lifecycle(unittest.TestCase):
    def test_load_unload_need_explicit_mode(self):
        repo = os.path.join(WORK, "repo")
        server = Server(repo, ["--strict-readiness=false"])
        try:
            r, d = request(server, "POST", "/v2/repository/models/identity/load", b"")
            self.assertEqual(r.status, 503)
            self.assertIn("--model-control-mode=explicit", error_of(d))
            r, d = request(server, "POST", "/v2/repository/models/identity/unload", b"")
            self.assertEqual(r.status, 503)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_http_port_in_use_stops_the_server_before_models_load(self):
        repo = os.path.join(WORK, "repo")
        server = Server(repo, ["--http-port=%d" % SERVER.http_port, "--allow-metrics=false"],
                        wait_ready=False)
        try:
            code = server.proc.wait(30)
            log = server.log()
            self.assertEqual(code, 2, log)
            self.assertIn("cannot serve HTTP", log)
            self.assertIn("Address already in use", log)
            self.assertNotIn("model load started", log)
        finally:
            server.stop()
        self.assertEqual(request(SERVER, "GET", "/v2/health/live")[0].status, 200)

    def test_sigterm_drains_http_requests_then_exits(self):
        repo = os.path.join(WORK, "repo")
        server = Server(repo, ["--exit-timeout-secs=10"])
        result = {}

        def slow_call():
            result["answer"] = post_json(server, "/v2/models/slow/infer",
                                         dict(identity_json([5.0]), parameters={"sleep_ms": 1500}))
        t = threading.Thread(target=slow_call)
        t.start()
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        # Draining: not ready, new requests refused, the accepted one answered.
        r, _ = request(server, "GET", "/v2/health/ready")
        self.assertEqual(r.status, 400)
        r, d = post_json(server, "/v2/models/identity/infer", identity_json([1.0]))
        self.assertEqual(r.status, 503)
        self.assertIn("shutting down", error_of(d))
        t.join(20)
        r, d = result["answer"]
        self.assertEqual(r.status, 200, d)
        self.assertEqual(json.loads(d)["outputs"][0]["data"], [5.0])
        self.assertEqual(server.proc.wait(20), 0)
        server.stop()


WORK = None


def main():
    global ARGS, SERVER, WORK
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--probe-runner", required=True)
    ARGS, rest = parser.parse_known_args()
    WORK = tempfile.mkdtemp(prefix="torii-http-e2e-")
    try:
        repo = make_repository(WORK)
        SERVER = Server(repo, [
            "--model-control-mode=explicit", "--load-model=*",
            "--http-restricted-api=model-repository:admin-key=s3cret",
            "--max-request-bytes=%d" % MAX_REQUEST_BYTES,
            "--http-idle-timeout-secs=%d" % IDLE_TIMEOUT_S,
            "--http-io-timeout-secs=%d" % IO_TIMEOUT_S,
            "--http-thread-count=2"])
        try:
            prog = unittest.main(argv=[sys.argv[0]] + rest, exit=False)
        finally:
            code = SERVER.stop()
        ok = prog.result.wasSuccessful()
        if code != 0:
            print("the shared server exited with %s after SIGTERM" % code)
            ok = False
        return 0 if ok else 1
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

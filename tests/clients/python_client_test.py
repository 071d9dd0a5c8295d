#!/usr/bin/python3
"""End-to-end test of torii-server with a client we did not write.

The client is Python grpcio (Debian's python3-grpcio) with stubs that protoc
and grpc_python_plugin generate from proto/ at build time: if this test
passes, any KServe v2 / Triton gRPC client generated from the public
definition talks to Torii unchanged.

It starts the real server binary on a free 127.0.0.1 port against
examples/model_repository, checks every core RPC, raw and typed contents,
BYTES, add_sub, every bad-input rule, the extension RPCs and 32 concurrent
clients, and always stops the server (SIGTERM, then SIGKILL).

    /usr/bin/python3 tests/clients/python_client_test.py \
        --server build/bin/torii-server --repo examples/model_repository \
        --stubs build/tests/clients/python_stubs -v

Only the standard library besides grpcio/protobuf (no numpy, no pytest).
"""

import argparse
import atexit
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

# Bounds: every RPC has a deadline and every wait a timeout, so a hung server
# fails the test quickly instead of running into ctest's TIMEOUT.
RPC_TIMEOUT_S = 10.0
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0

ARGS = None     # parsed command line (set in main)
SERVER = None   # the shared ServerProcess (set in main)

# Generated stubs; imported in main() once --stubs is on sys.path.
grpc = None
pb = None
pb_grpc = None
health_pb = None
health_grpc = None


# --------------------------------------------------------------------------
# Server process management
# --------------------------------------------------------------------------

# The free port and the server's pre-exec hook: tests/e2e/torii_server.py.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "e2e"))
from torii_server import die_with_parent, free_port  # noqa: E402


class ServerProcess:
    """One torii-server process on a free loopback port, with its log."""

    def __init__(self, binary, repo, log_dir, tag):
        self.binary = binary
        self.repo = repo
        self.log_path = os.path.join(log_dir, "torii-server-%s.log" % tag)
        self.proc = None
        self.port = None
        self.channel = None
        self.stub = None

    def start(self):
        """Starts the server and waits until ServerLive and ServerReady say
        true. Retries on another port if the chosen one was taken between
        probing and binding. Raises RuntimeError with the log on failure."""
        last_error = "not started"
        for _attempt in range(3):
            self.port = free_port()
            log = open(self.log_path, "ab")
            log.write(("\n=== starting on port %d ===\n" % self.port).encode())
            log.flush()
            cmd = [self.binary,
                   "--model-repository=%s" % self.repo,
                   "--grpc-port=%d" % self.port,
                   "--grpc-address=127.0.0.1",
                   "--metrics-address=127.0.0.1",
                   "--metrics-port=%d" % free_port(),
                   # gRPC only here; never the shared default HTTP port 8000.
                   "--allow-http=false"] + list(ARGS.server_arg)
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         preexec_fn=die_with_parent)
            log.close()
            ok, last_error = self._wait_ready()
            if ok:
                self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.port)
                self.stub = pb_grpc.GRPCInferenceServiceStub(self.channel)
                return
            self.stop()
            if "in use" not in self.log_tail().lower():
                break
        raise RuntimeError("torii-server did not become ready: %s\n%s"
                           % (last_error, self.log_tail()))

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False, "exited with code %d" % self.proc.returncode
            # A fresh channel per probe: a channel that failed to connect
            # waits out gRPC's reconnect backoff (1 s, 1.6 s, ...) first.
            try:
                with grpc.insecure_channel("127.0.0.1:%d" % self.port) as ch:
                    stub = pb_grpc.GRPCInferenceServiceStub(ch)
                    live = stub.ServerLive(pb.ServerLiveRequest(), timeout=1.0)
                    ready = stub.ServerReady(pb.ServerReadyRequest(),
                                             timeout=1.0)
                if live.live and ready.ready:
                    return True, ""
                last = "live=%s ready=%s" % (live.live, ready.ready)
            except grpc.RpcError as e:
                last = "%s: %s" % (e.code(), e.details())
            time.sleep(0.1)
        return False, "timed out after %.0f s (last: %s)" % (START_TIMEOUT_S,
                                                             last)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S. Returns (exit code,
        whether SIGKILL was needed). Safe to call more than once."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is None:
            return None, False
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                killed = True
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        return self.proc.returncode, killed

    def log_tail(self, lines=80):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------
# Encoding helpers (the v2 raw format: little-endian, row-major, BYTES as
# 4-byte little-endian length + bytes per element)
# --------------------------------------------------------------------------

def f32(values):
    return struct.pack("<%df" % len(values), *values)


def unf32(data):
    if len(data) % 4:
        raise AssertionError("FP32 buffer of %d bytes" % len(data))
    return list(struct.unpack("<%df" % (len(data) // 4), data))


def round32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def bytes_tensor(elements):
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def parse_bytes_tensor(data):
    out, i = [], 0
    while i < len(data):
        if i + 4 > len(data):
            raise AssertionError("truncated BYTES length prefix at %d" % i)
        (n,) = struct.unpack_from("<I", data, i)
        i += 4
        if i + n > len(data):
            raise AssertionError("BYTES element runs past the buffer at %d" % i)
        out.append(data[i:i + n])
        i += n
    return out


def tensor(name, datatype, shape):
    t = pb.ModelInferRequest.InferInputTensor()
    t.name = name
    t.datatype = datatype
    t.shape.extend(shape)
    return t


def request(model, inputs, raw=None, outputs=None, rid="", version=""):
    """inputs: InferInputTensor list; raw: list of bytes or None."""
    r = pb.ModelInferRequest(model_name=model, model_version=version, id=rid)
    r.inputs.extend(inputs)
    if raw is not None:
        r.raw_input_contents.extend(raw)
    for o in outputs or []:
        r.outputs.add().name = o
    return r


def outputs_by_name(test, resp):
    """Maps output name -> (datatype, shape, raw bytes), checking that
    outputs come back as raw_output_contents, one per output."""
    test.assertEqual(len(resp.raw_output_contents), len(resp.outputs),
                     "one raw_output_contents entry per output expected")
    result = {}
    for o, raw in zip(resp.outputs, resp.raw_output_contents):
        test.assertNotIn(o.name, result, "duplicate output %s" % o.name)
        result[o.name] = (o.datatype, list(o.shape), raw)
    return result


# --------------------------------------------------------------------------
# Expectations read from the model repository itself
# --------------------------------------------------------------------------

def model_config_text(model):
    with open(os.path.join(ARGS.repo, model, "config.pbtxt")) as f:
        return f.read()


def config_field(model, field):
    m = re.search(r'^\s*%s\s*:\s*"([^"]*)"' % field, model_config_text(model),
                  re.MULTILINE)
    return m.group(1) if m else None


def served_version(model):
    """The highest numeric version folder: what the server serves now."""
    model_dir = os.path.join(ARGS.repo, model)
    versions = [int(d) for d in os.listdir(model_dir)
                if d.isdigit() and os.path.isdir(os.path.join(model_dir, d))]
    if not versions:
        raise AssertionError("no version folder under " + model_dir)
    return str(max(versions))


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------

class ServerTestCase(unittest.TestCase):
    """Shares the one server started in main()."""

    @property
    def stub(self):
        return SERVER.stub

    def infer(self, req, **kw):
        return self.stub.ModelInfer(req, timeout=RPC_TIMEOUT_S, **kw)

    def assert_rpc_error(self, call, req, code, fragments=()):
        """call(req) must fail with `code`; its message must contain every
        fragment (a str) or at least one of a tuple of alternatives."""
        with self.assertRaises(grpc.RpcError) as cm:
            call(req, timeout=RPC_TIMEOUT_S)
        err = cm.exception
        details = err.details() or ""
        codes = code if isinstance(code, tuple) else (code,)
        self.assertIn(err.code(), codes,
                      "expected %s, got %s: %r" % (" or ".join(map(str, codes)),
                                                   err.code(), details))
        self.assertTrue(details.strip(), "empty error message")
        for frag in fragments:
            alts = frag if isinstance(frag, tuple) else (frag,)
            self.assertTrue(
                any(re.search(r"(?<![\w-])%s(?!\w)" % re.escape(a), details)
                    for a in alts),
                "message %r does not mention %s" % (details, " or ".join(alts)))
        return details


class HealthAndMetadataTest(ServerTestCase):

    def test_server_live(self):
        self.assertTrue(self.stub.ServerLive(pb.ServerLiveRequest(),
                                             timeout=RPC_TIMEOUT_S).live)

    def test_server_ready(self):
        self.assertTrue(self.stub.ServerReady(pb.ServerReadyRequest(),
                                              timeout=RPC_TIMEOUT_S).ready)

    def test_grpc_health_v1(self):
        h = health_grpc.HealthStub(SERVER.channel)
        resp = h.Check(health_pb.HealthCheckRequest(service=""),
                       timeout=RPC_TIMEOUT_S)
        self.assertEqual(resp.status, health_pb.HealthCheckResponse.SERVING)

    def test_server_metadata(self):
        md = self.stub.ServerMetadata(pb.ServerMetadataRequest(),
                                      timeout=RPC_TIMEOUT_S)
        self.assertIn("torii", md.name.lower())
        self.assertTrue(md.version, "empty version")
        if ARGS.expect_version:
            self.assertTrue(md.version.startswith(ARGS.expect_version),
                            "version %r, project version %r"
                            % (md.version, ARGS.expect_version))
        exts = list(md.extensions)
        for e in exts:
            self.assertTrue(e.strip(), "empty extension name in %r" % exts)
        self.assertEqual(len(exts), len(set(exts)), "duplicates in %r" % exts)

    def test_model_ready_known(self):
        for model in ("identity", "identity_bytes", "add_sub"):
            with self.subTest(model=model):
                r = self.stub.ModelReady(pb.ModelReadyRequest(name=model),
                                         timeout=RPC_TIMEOUT_S)
                self.assertTrue(r.ready)
                r = self.stub.ModelReady(
                    pb.ModelReadyRequest(name=model,
                                         version=served_version(model)),
                    timeout=RPC_TIMEOUT_S)
                self.assertTrue(r.ready)

    def test_model_ready_unknown_model(self):
        # As Triton: an unknown model is not ready, not an error.
        r = self.stub.ModelReady(pb.ModelReadyRequest(name="no_such_model"),
                                 timeout=RPC_TIMEOUT_S)
        self.assertFalse(r.ready)

    def test_model_ready_unknown_version(self):
        r = self.stub.ModelReady(
            pb.ModelReadyRequest(name="identity", version="999"),
            timeout=RPC_TIMEOUT_S)
        self.assertFalse(r.ready)

    def check_metadata(self, model, inputs, outputs):
        md = self.stub.ModelMetadata(pb.ModelMetadataRequest(name=model),
                                     timeout=RPC_TIMEOUT_S)
        self.assertEqual(md.name, model)
        self.assertEqual(list(md.versions), [served_version(model)])
        platform = config_field(model, "platform")
        if platform:
            self.assertEqual(md.platform, platform)
        else:
            # No platform in the config: the runner's name.
            self.assertTrue(md.platform, "empty platform")
            runner = md.properties.get("runner") or config_field(model,
                                                                  "backend")
            self.assertEqual(md.platform, runner)
        self.assertEqual([(t.name, t.datatype, list(t.shape))
                          for t in md.inputs], inputs)
        self.assertEqual([(t.name, t.datatype, list(t.shape))
                          for t in md.outputs], outputs)
        # The same with the version named explicitly.
        md2 = self.stub.ModelMetadata(
            pb.ModelMetadataRequest(name=model, version=served_version(model)),
            timeout=RPC_TIMEOUT_S)
        self.assertEqual(md2, md)

    def test_model_metadata_identity(self):
        # max_batch_size 64 and dims [-1]: a leading -1 batch dimension.
        self.check_metadata("identity",
                            [("INPUT0", "FP32", [-1, -1])],
                            [("OUTPUT0", "FP32", [-1, -1])])

    def test_model_metadata_identity_bytes(self):
        self.check_metadata("identity_bytes",
                            [("INPUT0", "BYTES", [-1, -1])],
                            [("OUTPUT0", "BYTES", [-1, -1])])

    def test_model_metadata_add_sub(self):
        self.check_metadata("add_sub",
                            [("INPUT0", "FP32", [-1, 16]),
                             ("INPUT1", "FP32", [-1, 16])],
                            [("OUTPUT0", "FP32", [-1, 16]),
                             ("OUTPUT1", "FP32", [-1, 16])])

    def test_model_metadata_unknown(self):
        self.assert_rpc_error(self.stub.ModelMetadata,
                              pb.ModelMetadataRequest(name="no_such_model"),
                              grpc.StatusCode.NOT_FOUND, ["no_such_model"])
        self.assert_rpc_error(
            self.stub.ModelMetadata,
            pb.ModelMetadataRequest(name="identity", version="999"),
            grpc.StatusCode.NOT_FOUND, ["999"])


class InferTest(ServerTestCase):

    def check_identity(self, resp, model, rid, datatype, shape, raw):
        self.assertEqual(resp.model_name, model)
        self.assertEqual(resp.model_version, served_version(model))
        self.assertEqual(resp.id, rid)
        outs = outputs_by_name(self, resp)
        self.assertEqual(list(outs), ["OUTPUT0"])
        self.assertEqual(outs["OUTPUT0"], (datatype, shape, raw))
        # Outputs travel raw, never as typed contents as well.
        self.assertEqual(resp.outputs[0].contents.ByteSize(), 0)

    def test_identity_raw(self):
        values = [0.0, -1.5, 3.25, 1e30, -2.0 ** -20, 7.0]
        req = request("identity", [tensor("INPUT0", "FP32", [2, 3])],
                      raw=[f32(values)], rid="raw-1")
        self.check_identity(self.infer(req), "identity", "raw-1", "FP32",
                            [2, 3], f32(values))

    def test_identity_typed(self):
        values = [1.0, 2.5, -4.0, 8.125]
        t = tensor("INPUT0", "FP32", [1, 4])
        t.contents.fp32_contents.extend(values)
        req = request("identity", [t], rid="typed-1")
        self.check_identity(self.infer(req), "identity", "typed-1", "FP32",
                            [1, 4], f32(values))

    def test_identity_explicit_version_and_empty_id(self):
        req = request("identity", [tensor("INPUT0", "FP32", [1, 2])],
                      raw=[f32([5.0, 6.0])], version=served_version("identity"))
        self.check_identity(self.infer(req), "identity", "", "FP32", [1, 2],
                            f32([5.0, 6.0]))

    def test_identity_max_batch(self):
        values = [float(i) for i in range(64)]
        req = request("identity", [tensor("INPUT0", "FP32", [64, 1])],
                      raw=[f32(values)], rid="max-batch")
        self.check_identity(self.infer(req), "identity", "max-batch", "FP32",
                            [64, 1], f32(values))

    def test_identity_zero_elements(self):
        # [1, 0] is concrete and non-negative: a valid, empty tensor.
        req = request("identity", [tensor("INPUT0", "FP32", [1, 0])],
                      raw=[b""], rid="empty")
        self.check_identity(self.infer(req), "identity", "empty", "FP32",
                            [1, 0], b"")

    def test_identity_requested_output(self):
        req = request("identity", [tensor("INPUT0", "FP32", [1, 2])],
                      raw=[f32([1.0, 2.0])], outputs=["OUTPUT0"], rid="o")
        self.check_identity(self.infer(req), "identity", "o", "FP32", [1, 2],
                            f32([1.0, 2.0]))

    BYTES_ELEMENTS = [b"hello", b"", b"\x00\xffbinary\x00",
                      "\u00fcn\u00efcode".encode("utf-8"), b"x" * 300]

    def test_identity_bytes_raw(self):
        elems = self.BYTES_ELEMENTS
        raw = bytes_tensor(elems)
        req = request("identity_bytes",
                      [tensor("INPUT0", "BYTES", [1, len(elems)])],
                      raw=[raw], rid="bytes-raw")
        resp = self.infer(req)
        self.check_identity(resp, "identity_bytes", "bytes-raw", "BYTES",
                            [1, len(elems)], raw)
        self.assertEqual(parse_bytes_tensor(resp.raw_output_contents[0]), elems)

    def test_identity_bytes_typed(self):
        elems = self.BYTES_ELEMENTS[:4]
        t = tensor("INPUT0", "BYTES", [2, 2])
        t.contents.bytes_contents.extend(elems)
        resp = self.infer(request("identity_bytes", [t], rid="bytes-typed"))
        self.check_identity(resp, "identity_bytes", "bytes-typed", "BYTES",
                            [2, 2], bytes_tensor(elems))

    def add_sub_inputs(self, batch):
        a = [round32(0.5 * i - 3.0 + b * 100) for b in range(batch)
             for i in range(16)]
        c = [round32(0.25 * i * i + 1.0 - b) for b in range(batch)
             for i in range(16)]
        return a, c

    def test_add_sub(self):
        for batch in (1, 3):
            with self.subTest(batch=batch):
                a, c = self.add_sub_inputs(batch)
                req = request("add_sub",
                              [tensor("INPUT0", "FP32", [batch, 16]),
                               tensor("INPUT1", "FP32", [batch, 16])],
                              raw=[f32(a), f32(c)], rid="as-%d" % batch)
                resp = self.infer(req)
                self.assertEqual(resp.id, "as-%d" % batch)
                self.assertEqual(resp.model_name, "add_sub")
                self.assertEqual(resp.model_version, served_version("add_sub"))
                outs = outputs_by_name(self, resp)
                self.assertEqual(sorted(outs), ["OUTPUT0", "OUTPUT1"])
                for name, want in (
                        ("OUTPUT0", [round32(x + y) for x, y in zip(a, c)]),
                        ("OUTPUT1", [round32(x - y) for x, y in zip(a, c)])):
                    dt, shape, raw = outs[name]
                    self.assertEqual((dt, shape), ("FP32", [batch, 16]), name)
                    self.assertEqual(unf32(raw), want, name)

    def test_add_sub_typed(self):
        a, c = self.add_sub_inputs(1)
        t0 = tensor("INPUT0", "FP32", [1, 16])
        t0.contents.fp32_contents.extend(a)
        t1 = tensor("INPUT1", "FP32", [1, 16])
        t1.contents.fp32_contents.extend(c)
        outs = outputs_by_name(self, self.infer(request("add_sub", [t0, t1])))
        self.assertEqual(unf32(outs["OUTPUT0"][2]),
                         [round32(x + y) for x, y in zip(a, c)])
        self.assertEqual(unf32(outs["OUTPUT1"][2]),
                         [round32(x - y) for x, y in zip(a, c)])

    def test_add_sub_one_output(self):
        a, c = self.add_sub_inputs(2)
        for only, op in (("OUTPUT1", lambda x, y: x - y),
                         ("OUTPUT0", lambda x, y: x + y)):
            with self.subTest(output=only):
                req = request("add_sub",
                              [tensor("INPUT0", "FP32", [2, 16]),
                               tensor("INPUT1", "FP32", [2, 16])],
                              raw=[f32(a), f32(c)], outputs=[only])
                outs = outputs_by_name(self, self.infer(req))
                self.assertEqual(list(outs), [only])
                self.assertEqual(outs[only][:2], ("FP32", [2, 16]))
                self.assertEqual(unf32(outs[only][2]),
                                 [round32(op(x, y)) for x, y in zip(a, c)])


class BadInputTest(ServerTestCase):
    """Every malformed request gets the right code and a message naming the
    tensor; none of them hurts the server."""

    def cases(self):
        INV = grpc.StatusCode.INVALID_ARGUMENT
        NF = grpc.StatusCode.NOT_FOUND
        one = f32([1.0])
        two = f32([1.0, 2.0])
        sixteen = f32([1.0] * 16)

        def add_sub(inputs, raw, outputs=None):
            return request("add_sub", inputs, raw=raw, outputs=outputs)

        def typed(name, datatype, shape, **contents):
            t = tensor(name, datatype, shape)
            for field, values in contents.items():
                getattr(t.contents, field).extend(values)
            return t

        both = typed("INPUT0", "FP32", [1, 2], fp32_contents=[1.0, 2.0])
        I0 = lambda shape: tensor("INPUT0", "FP32", shape)  # noqa: E731
        I1 = lambda shape: tensor("INPUT1", "FP32", shape)  # noqa: E731
        B0 = lambda shape: tensor("INPUT0", "BYTES", shape)  # noqa: E731

        return [
            ("unknown model", NF,
             request("no_such_model", [I0([1, 1])], raw=[one]),
             ["no_such_model"]),
            ("unknown version", NF,
             request("identity", [I0([1, 1])], raw=[one], version="999"),
             ["999"]),
            # Triton answers INVALID_ARGUMENT for a version that is not a
            # number; "unknown version" reads as NOT_FOUND. Either is right.
            ("non-numeric version", (NF, INV),
             request("identity", [I0([1, 1])], raw=[one], version="latest"),
             ["latest"]),
            ("wrong datatype", INV,
             request("identity", [tensor("INPUT0", "INT32", [1, 2])],
                     raw=[struct.pack("<2i", 1, 2)]),
             ["INPUT0", "FP32", "INT32"]),
            ("wrong datatype BYTES model", INV,
             request("identity_bytes", [I0([1, 2])], raw=[two]),
             ["INPUT0", "BYTES", "FP32"]),
            ("unknown input", INV,
             add_sub([I0([1, 16]), I1([1, 16]),
                      tensor("INPUT7", "FP32", [1, 16])],
                     [sixteen, sixteen, sixteen]),
             ["INPUT7"]),
            ("missing input", INV,
             add_sub([I0([1, 16])], [sixteen]), ["INPUT1"]),
            ("no inputs at all", INV,
             request("identity", [], raw=[]), ["INPUT0"]),
            ("duplicate input", INV,
             add_sub([I0([1, 16]), I0([1, 16]), I1([1, 16])],
                     [sixteen, sixteen, sixteen]),
             ["INPUT0"]),
            ("wrong inner dimension", INV,
             add_sub([I0([1, 8]), I1([1, 16])], [f32([1.0] * 8), sixteen]),
             ["INPUT0", "8", "16"]),
            ("wrong rank (no batch dimension)", INV,
             request("identity", [I0([2])], raw=[two]), ["INPUT0"]),
            ("wrong rank (extra dimension)", INV,
             request("identity", [I0([1, 2, 1])], raw=[two]), ["INPUT0"]),
            ("batch > max_batch_size", INV,
             request("identity", [I0([65, 1])], raw=[f32([0.0] * 65)]),
             ["INPUT0", "65", "64"]),
            ("inputs disagree on batch size", INV,
             add_sub([I0([2, 16]), I1([3, 16])],
                     [f32([1.0] * 32), f32([1.0] * 48)]),
             [("INPUT0", "INPUT1")]),
            ("negative dimension", INV,
             request("identity", [I0([1, -5])], raw=[b""]), ["INPUT0", "-5"]),
            ("negative batch dimension", INV,
             request("identity", [I0([-1, 2])], raw=[two]), ["INPUT0"]),
            ("element count overflows int64", INV,
             request("identity", [I0([4, 2 ** 62])], raw=[two]), ["INPUT0"]),
            ("huge element count, tiny buffer", INV,
             request("identity", [I0([1, 2 ** 40])], raw=[two]), ["INPUT0"]),
            ("raw byte size too small", INV,
             request("identity", [I0([1, 4])], raw=[f32([1.0] * 3)]),
             ["INPUT0", "16", "12"]),
            ("raw byte size too large", INV,
             request("identity", [I0([1, 2])], raw=[f32([1.0] * 2) + b"\0"]),
             ["INPUT0", "8", "9"]),
            ("typed element count mismatch", INV,
             request("identity", [typed("INPUT0", "FP32", [1, 4],
                                        fp32_contents=[1.0, 2.0, 3.0])]),
             ["INPUT0"]),
            ("typed contents in the wrong field", INV,
             request("identity", [typed("INPUT0", "FP32", [1, 2],
                                        int_contents=[1, 2])]),
             ["INPUT0"]),
            ("typed input without any values", INV,
             request("add_sub", [typed("INPUT0", "FP32", [1, 16],
                                       fp32_contents=[1.0] * 16),
                                 I1([1, 16])]),
             ["INPUT1"]),
            ("BYTES prefix runs past the buffer", INV,
             request("identity_bytes", [B0([1, 1])],
                     raw=[struct.pack("<I", 10) + b"abc"]),
             ["INPUT0"]),
            ("BYTES truncated length prefix", INV,
             request("identity_bytes", [B0([1, 2])],
                     raw=[bytes_tensor([b"ab"]) + b"\x01\x00"]),
             ["INPUT0"]),
            ("BYTES fewer elements than the shape", INV,
             request("identity_bytes", [B0([1, 3])],
                     raw=[bytes_tensor([b"a", b"b"])]),
             ["INPUT0"]),
            ("BYTES more elements than the shape", INV,
             request("identity_bytes", [B0([1, 1])],
                     raw=[bytes_tensor([b"a", b"b"])]),
             ["INPUT0"]),
            ("BYTES typed element count mismatch", INV,
             request("identity_bytes",
                     [typed("INPUT0", "BYTES", [1, 3],
                            bytes_contents=[b"a", b"b"])]),
             ["INPUT0"]),
            ("both raw and typed contents", INV,
             request("identity", [both], raw=[two]), ["INPUT0"]),
            ("fewer raw_input_contents than inputs", INV,
             add_sub([I0([1, 16]), I1([1, 16])], [sixteen]),
             [("raw_input_contents", "INPUT0", "INPUT1")]),
            ("more raw_input_contents than inputs", INV,
             add_sub([I0([1, 16]), I1([1, 16])], [sixteen, sixteen, sixteen]),
             [("raw_input_contents", "INPUT0", "INPUT1")]),
            ("unknown requested output", INV,
             request("identity", [I0([1, 2])], raw=[two],
                     outputs=["OUTPUT9"]),
             ["OUTPUT9"]),
            ("one known and one unknown requested output", INV,
             add_sub([I0([1, 16]), I1([1, 16])], [sixteen, sixteen],
                     outputs=["OUTPUT0", "OUTPUT2"]),
             ["OUTPUT2"]),
        ]

    def test_bad_inputs_then_still_serving(self):
        for label, code, req, fragments in self.cases():
            with self.subTest(case=label):
                self.assert_rpc_error(self.stub.ModelInfer, req, code,
                                      fragments)
                self.assertTrue(SERVER.alive(), "server died on: " + label)
        # Still serving after all of them.
        self.assertTrue(self.stub.ServerLive(pb.ServerLiveRequest(),
                                             timeout=RPC_TIMEOUT_S).live)
        self.assertTrue(self.stub.ServerReady(pb.ServerReadyRequest(),
                                              timeout=RPC_TIMEOUT_S).ready)
        req = request("identity", [tensor("INPUT0", "FP32", [1, 3])],
                      raw=[f32([9.0, 8.0, 7.0])], rid="after")
        resp = self.infer(req)
        self.assertEqual(resp.id, "after")
        self.assertEqual(list(resp.raw_output_contents),
                         [f32([9.0, 8.0, 7.0])])


class ExtensionRpcTest(ServerTestCase):
    """Extension RPCs may be UNIMPLEMENTED for now; they must answer (within
    the deadline) and leave the server serving. An advertised extension must
    not be UNIMPLEMENTED."""

    ADVERTISED = {  # ServerMetadata extension name -> RPC that implements it
        "model_configuration": "ModelConfig",
        "statistics": "ModelStatistics",
        "model_repository": "RepositoryIndex",
    }

    def call(self, rpc, req):
        try:
            return grpc.StatusCode.OK, getattr(self.stub, rpc)(
                req, timeout=RPC_TIMEOUT_S)
        except grpc.RpcError as e:
            self.assertNotEqual(e.code(), grpc.StatusCode.DEADLINE_EXCEEDED,
                                "%s did not answer" % rpc)
            return e.code(), None

    def test_extension_rpcs_answer(self):
        md = self.stub.ServerMetadata(pb.ServerMetadataRequest(),
                                      timeout=RPC_TIMEOUT_S)
        codes = {}
        code, resp = self.call("ModelConfig",
                               pb.ModelConfigRequest(name="identity"))
        codes["ModelConfig"] = code
        if code == grpc.StatusCode.OK:
            self.assertEqual(resp.config.name, "identity")
            self.assertEqual(resp.config.max_batch_size, 64)
        code, resp = self.call("ModelStatistics",
                               pb.ModelStatisticsRequest(name="identity"))
        codes["ModelStatistics"] = code
        if code == grpc.StatusCode.OK:
            self.assertTrue(all(s.name == "identity" for s in resp.model_stats))
        code, resp = self.call("RepositoryIndex", pb.RepositoryIndexRequest())
        codes["RepositoryIndex"] = code
        if code == grpc.StatusCode.OK:
            names = {m.name for m in resp.models}
            self.assertLessEqual({"identity", "identity_bytes", "add_sub"},
                                 names)
        # Load/unload a model that does not exist, so the shared server's
        # models are left alone whatever these do.
        for rpc, msg in (("RepositoryModelLoad", pb.RepositoryModelLoadRequest),
                         ("RepositoryModelUnload",
                          pb.RepositoryModelUnloadRequest)):
            code, _ = self.call(rpc, msg(model_name="no_such_model"))
            self.assertNotEqual(code, grpc.StatusCode.OK,
                                "%s of a missing model succeeded" % rpc)
        for ext, rpc in self.ADVERTISED.items():
            if ext in md.extensions:
                self.assertNotEqual(codes[rpc], grpc.StatusCode.UNIMPLEMENTED,
                                    "extension %r advertised but %s is "
                                    "UNIMPLEMENTED" % (ext, rpc))
        self.assertTrue(SERVER.alive())
        self.assertTrue(self.stub.ServerLive(pb.ServerLiveRequest(),
                                             timeout=RPC_TIMEOUT_S).live)

    def test_model_stream_infer_answers(self):
        values = [1.0, 2.0, 3.0]
        req = request("identity", [tensor("INPUT0", "FP32", [1, 3])],
                      raw=[f32(values)], rid="stream-1")
        try:
            responses = list(self.stub.ModelStreamInfer(iter([req]),
                                                        timeout=RPC_TIMEOUT_S))
        except grpc.RpcError as e:
            self.assertNotEqual(e.code(), grpc.StatusCode.DEADLINE_EXCEEDED,
                                "ModelStreamInfer did not answer")
        else:
            # Implemented: one response per request, and a correct one.
            self.assertEqual(len(responses), 1)
            r = responses[0]
            self.assertEqual(r.error_message, "")
            self.assertEqual(r.infer_response.id, "stream-1")
            self.assertEqual(list(r.infer_response.raw_output_contents),
                             [f32(values)])
        self.assertTrue(SERVER.alive())
        self.assertTrue(self.stub.ServerLive(pb.ServerLiveRequest(),
                                             timeout=RPC_TIMEOUT_S).live)

    def test_model_stream_infer_error_keeps_stream_open(self):
        # A failed request answers with error_message and the stream goes on.
        bad = request("identity", [tensor("INPUT0", "INT32", [1, 1])],
                      raw=[struct.pack("<i", 1)], rid="stream-bad")
        good = request("identity", [tensor("INPUT0", "FP32", [1, 2])],
                       raw=[f32([4.0, 5.0])], rid="stream-good")
        try:
            responses = list(self.stub.ModelStreamInfer(iter([bad, good]),
                                                        timeout=RPC_TIMEOUT_S))
        except grpc.RpcError as e:
            self.assertNotEqual(e.code(), grpc.StatusCode.DEADLINE_EXCEEDED,
                                "ModelStreamInfer did not answer")
            self.assertEqual(e.code(), grpc.StatusCode.UNIMPLEMENTED,
                             "stream failed instead of reporting the bad "
                             "request in error_message: %s" % e.details())
            return
        self.assertEqual(len(responses), 2)
        by_id = {}
        for r in responses:
            if r.error_message:
                self.assertIn("INPUT0", r.error_message)
                by_id.setdefault("error", []).append(r)
            else:
                by_id.setdefault(r.infer_response.id, []).append(r)
        self.assertEqual(len(by_id.get("error", [])), 1, responses)
        self.assertEqual(len(by_id.get("stream-good", [])), 1, responses)
        self.assertEqual(
            list(by_id["stream-good"][0].infer_response.raw_output_contents),
            [f32([4.0, 5.0])])


class ConcurrencyTest(ServerTestCase):
    CLIENTS = 32
    REQUESTS_PER_CLIENT = 25

    def test_concurrent_clients_get_their_own_data(self):
        errors = []
        done = []
        barrier = threading.Barrier(self.CLIENTS, timeout=30)
        lock = threading.Lock()

        def client(cid):
            try:
                # Each client is its own channel (its own connection), as
                # separate microservices would be.
                with grpc.insecure_channel("127.0.0.1:%d" % SERVER.port) as ch:
                    stub = pb_grpc.GRPCInferenceServiceStub(ch)
                    barrier.wait()
                    for i in range(self.REQUESTS_PER_CLIENT):
                        n = 1 + (cid + i) % 7
                        values = [cid * 1000.0 + i + k / 8.0
                                  for k in range(n)]
                        rid = "c%d-r%d" % (cid, i)
                        resp = stub.ModelInfer(
                            request("identity",
                                    [tensor("INPUT0", "FP32", [1, n])],
                                    raw=[f32(values)], rid=rid),
                            timeout=RPC_TIMEOUT_S)
                        got = (resp.id, list(resp.outputs[0].shape),
                               list(resp.raw_output_contents))
                        want = (rid, [1, n], [f32(values)])
                        if got != want:
                            raise AssertionError("client %d request %d: got "
                                                 "%r want %r" % (cid, i, got,
                                                                 want))
                with lock:
                    done.append(cid)
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append("client %d: %r" % (cid, e))

        threads = [threading.Thread(target=client, args=(c,), daemon=True)
                   for c in range(self.CLIENTS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        self.assertFalse(any(t.is_alive() for t in threads),
                         "clients still running after 120 s")
        self.assertEqual(errors, [])
        self.assertEqual(sorted(done), list(range(self.CLIENTS)))
        self.assertTrue(SERVER.alive())


class ShutdownTest(unittest.TestCase):
    """A second server of its own: SIGTERM stops it cleanly (exit 0)."""

    def test_sigterm_stops_cleanly(self):
        server = ServerProcess(ARGS.server, ARGS.repo, ARGS.log_dir, "shutdown")
        try:
            server.start()
            server.proc.send_signal(signal.SIGTERM)
            try:
                code = server.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.fail("no exit within %.0f s of SIGTERM\n%s"
                          % (STOP_TIMEOUT_S, server.log_tail()))
            self.assertEqual(code, 0, "exit code after SIGTERM\n"
                             + server.log_tail())
        finally:
            server.stop()


# --------------------------------------------------------------------------

def main():
    global ARGS, SERVER, grpc, pb, pb_grpc, health_pb, health_grpc
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", required=True, help="torii-server binary")
    parser.add_argument("--repo", required=True, help="model repository")
    parser.add_argument("--stubs", required=True,
                        help="directory of the generated *_pb2*.py stubs")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra torii-server flag (repeatable)")
    parser.add_argument("--expect-version", default="",
                        help="ServerMetadata.version must start with this")
    ARGS, rest = parser.parse_known_args()

    sys.path.insert(0, ARGS.stubs)
    import grpc as _grpc
    import health_pb2
    import health_pb2_grpc
    import inference_pb2
    import inference_pb2_grpc
    grpc, pb, pb_grpc = _grpc, inference_pb2, inference_pb2_grpc
    health_pb, health_grpc = health_pb2, health_pb2_grpc

    # SIGTERM (e.g. from ctest) unwinds like Ctrl-C, so `finally` stops the
    # server; PR_SET_PDEATHSIG covers SIGKILL.
    def _terminate(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, _terminate)

    with tempfile.TemporaryDirectory(prefix="torii-clients-") as log_dir:
        ARGS.log_dir = log_dir
        SERVER = ServerProcess(ARGS.server, ARGS.repo, log_dir, "main")
        atexit.register(SERVER.stop)
        ok = False
        try:
            SERVER.start()
            print("torii-server ready on 127.0.0.1:%d" % SERVER.port,
                  file=sys.stderr)
            prog = unittest.main(argv=[sys.argv[0]] + rest, exit=False)
            ok = prog.result.wasSuccessful()
            if not SERVER.alive():
                print("FAIL: torii-server died during the tests (exit %s)"
                      % SERVER.proc.returncode, file=sys.stderr)
                ok = False
        except (RuntimeError, OSError) as e:  # could not start the server
            print("FAIL: %s" % e, file=sys.stderr)
        finally:
            code, killed = SERVER.stop()
            if ok and (killed or code != 0):
                print("FAIL: torii-server did not stop cleanly on SIGTERM "
                      "(exit %s, SIGKILL needed: %s)" % (code, killed),
                      file=sys.stderr)
                ok = False
            if not ok:
                print("---- torii-server log (tail) ----\n%s"
                      % SERVER.log_tail(), file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

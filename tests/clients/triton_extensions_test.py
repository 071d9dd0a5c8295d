#!/usr/bin/python3
"""Triton's repository load overrides and system shared memory, end to end,
with a client we did not write: Debian's python3-grpcio and stubs protoc
generates from proto/ at build time.

Shared-memory objects are made the way tritonclient makes them (Python's
multiprocessing.shared_memory: shm_open + ftruncate + mmap). The server runs
in explicit model-control mode on a free 127.0.0.1 port, with a $TMPDIR of
its own (where load overrides go), and is always stopped (SIGTERM, then
SIGKILL).

    /usr/bin/python3 tests/clients/triton_extensions_test.py \\
        --server build/bin/torii-server --repo examples/model_repository \\
        --stubs build/tests/clients/python_stubs \\
        --fault-runner build/tests/fixtures/fault_runner/libtorii_fault.so -v

Standard library besides grpcio/protobuf (no numpy, no tritonclient).
"""

import argparse
import glob
import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from multiprocessing import shared_memory

RPC_TIMEOUT_S = 20.0
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
MAX_REQUEST_BYTES = 4 << 20

ARGS = None
SERVER = None
grpc = pb = pb_grpc = None

# The free port and the server's pre-exec hook: tests/e2e/torii_server.py.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "e2e"))
from torii_server import die_with_parent, free_port  # noqa: E402


class Server:
    """torii-server on a repository copy, with its own TMPDIR."""

    def __init__(self, work):
        self.work = work
        self.repo = os.path.join(work, "repo")
        self.tmp = os.path.join(work, "tmp")
        os.mkdir(self.tmp)
        shutil.copytree(ARGS.repo, self.repo)
        shutil.rmtree(os.path.join(self.repo, "mlp"), ignore_errors=True)
        # The fault runner: identity that sleeps when a request asks.
        slow = os.path.join(self.repo, "slow")
        os.makedirs(os.path.join(slow, "1"))
        shutil.copy(ARGS.fault_runner, os.path.join(slow, "libtorii_fault.so"))
        with open(os.path.join(slow, "config.pbtxt"), "w") as f:
            f.write('backend: "fault"\nmax_batch_size: 8\n'
                    'input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]\n'
                    'output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]\n')
        self.log_path = os.path.join(work, "server.log")
        self.proc = None
        self.channel = None
        self.stub = None

    def start(self):
        self.port = free_port()
        env = dict(os.environ, TMPDIR=self.tmp)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [ARGS.server, "--model-repository=" + self.repo,
                 "--grpc-address=127.0.0.1", "--grpc-port=%d" % self.port,
                 "--metrics-address=127.0.0.1", "--metrics-port=%d" % free_port(),
                 "--model-control-mode=explicit", "--load-model=*",
                 "--max-request-bytes=%d" % MAX_REQUEST_BYTES,
                 # gRPC only; never the shared default HTTP port 8000.
                 "--allow-http=false"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, preexec_fn=die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("torii-server exited: %s" % self.log_tail())
            try:
                with grpc.insecure_channel("127.0.0.1:%d" % self.port) as ch:
                    s = pb_grpc.GRPCInferenceServiceStub(ch)
                    if s.ServerReady(pb.ServerReadyRequest(), timeout=1.0).ready:
                        break
            except grpc.RpcError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("torii-server not ready: %s" % self.log_tail())
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.port)
        self.stub = pb_grpc.GRPCInferenceServiceStub(self.channel)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)
            return None

    def log_tail(self, lines=60):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def override_dirs(self, model=None):
        pattern = os.path.join(self.tmp, "torii-overrides-*")
        if model is None:
            return glob.glob(pattern)
        return glob.glob(os.path.join(pattern, model + "-*"))


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def unf32(data):
    return list(struct.unpack("<%df" % (len(data) // 4), data))


class Case(unittest.TestCase):
    def rpc_error(self, fn, *args, code=None):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*args, timeout=RPC_TIMEOUT_S)
        err = cm.exception
        if code is not None:
            self.assertEqual(err.code(), code, err.details())
        self.assertTrue((err.details() or "").strip(), "empty error message")
        return err

    def load(self, model, config=None, files=None):
        """What tritonclient's load_model(model, config=, files=) sends."""
        req = pb.RepositoryModelLoadRequest(model_name=model)
        if config is not None:
            req.parameters["config"].string_param = config
        for path, content in (files or {}).items():
            req.parameters[path].bytes_param = content
        return req

    def unload(self, model):
        req = pb.RepositoryModelUnloadRequest(model_name=model)
        req.parameters["unload_dependents"].bool_param = False
        return req


IDENTITY_IO = {"input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [-1]}],
               "output": [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [-1]}]}

PYTHON_MODEL = b'''
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "X").as_numpy()
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", (x * 3).astype(np.float32))]))
        return out
'''


class LoadOverrideTest(Case):

    def config_of(self, model):
        return SERVER.stub.ModelConfig(pb.ModelConfigRequest(name=model),
                                       timeout=RPC_TIMEOUT_S).config

    def infer_identity(self, model, values):
        req = pb.ModelInferRequest(model_name=model)
        t = req.inputs.add()
        t.name, t.datatype = "INPUT0", "FP32"
        t.shape.extend([1, len(values)])
        req.raw_input_contents.append(f32(values))
        resp = SERVER.stub.ModelInfer(req, timeout=RPC_TIMEOUT_S)
        return unf32(resp.raw_output_contents[0])

    def test_config_override_then_plain_load(self):
        config = dict(IDENTITY_IO, backend="identity", max_batch_size="16")
        SERVER.stub.RepositoryModelLoad(self.load("identity", json.dumps(config)),
                                        timeout=RPC_TIMEOUT_S)
        self.assertEqual(self.config_of("identity").max_batch_size, 16)
        self.assertEqual(self.infer_identity("identity", [1.0, 2.0]), [1.0, 2.0])
        err = self.rpc_error(SERVER.stub.RepositoryModelLoad,
                             self.load("identity", '"parameters": {"config": {{}}}'),
                             code=grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("failed to load", err.details())
        self.assertEqual(self.config_of("identity").max_batch_size, 16)
        SERVER.stub.RepositoryModelLoad(self.load("identity"), timeout=RPC_TIMEOUT_S)
        self.assertEqual(self.config_of("identity").max_batch_size, 64)

    def test_python_model_from_request_files(self):
        if not ARGS.python_runner:
            self.skipTest("this build has no Python runner")
        config = {"backend": "python", "max_batch_size": 4,
                  "input": [{"name": "X", "data_type": "TYPE_FP32", "dims": [2]}],
                  "output": [{"name": "Y", "data_type": "TYPE_FP32", "dims": [2]}]}
        SERVER.stub.RepositoryModelLoad(
            self.load("uploaded", json.dumps(config), {"file:1/model.py": PYTHON_MODEL}),
            timeout=120)
        self.assertFalse(os.path.exists(os.path.join(SERVER.repo, "uploaded")))
        dirs = SERVER.override_dirs("uploaded")
        self.assertEqual(len(dirs), 1)
        with open(os.path.join(dirs[0], "1", "model.py"), "rb") as f:
            self.assertEqual(f.read(), PYTHON_MODEL)
        mode = stat.S_IMODE(os.stat(os.path.dirname(dirs[0])).st_mode)
        self.assertEqual(mode, 0o700)
        req = pb.ModelInferRequest(model_name="uploaded")
        t = req.inputs.add()
        t.name, t.datatype = "X", "FP32"
        t.shape.extend([1, 2])
        req.raw_input_contents.append(f32([1.5, -2.0]))
        resp = SERVER.stub.ModelInfer(req, timeout=RPC_TIMEOUT_S)
        self.assertEqual(unf32(resp.raw_output_contents[0]), [4.5, -6.0])
        SERVER.stub.RepositoryModelUnload(self.unload("uploaded"), timeout=120)
        self.assertEqual(SERVER.override_dirs("uploaded"), [])

    def test_paths_that_escape_are_refused(self):
        config = json.dumps(dict(IDENTITY_IO, backend="identity"))
        for path in ("file:../x", "file:/tmp/x", "file:1/../../x", "file:1//x",
                     "file:./x", "file:", "file:config.pbtxt"):
            err = self.rpc_error(SERVER.stub.RepositoryModelLoad,
                                 self.load("escape", config, {path: b"x"}),
                                 code=grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("failed to load 'escape'", err.details())
        self.assertEqual(SERVER.override_dirs("escape"), [])
        self.assertFalse(os.path.exists(os.path.join(SERVER.work, "x")))

    def test_request_size_bounds_the_files(self):
        config = json.dumps(dict(IDENTITY_IO, backend="identity", max_batch_size=1))
        self.rpc_error(SERVER.stub.RepositoryModelLoad,
                       self.load("big", config, {"file:1/w": b"x" * (MAX_REQUEST_BYTES + 1)}),
                       code=grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertEqual(SERVER.override_dirs("big"), [])
        SERVER.stub.RepositoryModelLoad(
            self.load("big", config, {"file:1/w": b"x" * (MAX_REQUEST_BYTES // 2)}),
            timeout=RPC_TIMEOUT_S)
        self.assertEqual(self.infer_identity("big", [7.0]), [7.0])
        SERVER.stub.RepositoryModelUnload(self.unload("big"), timeout=RPC_TIMEOUT_S)
        self.assertEqual(SERVER.override_dirs("big"), [])


class Region:
    """A POSIX shared-memory object made as tritonclient makes it."""

    count = 0

    def __init__(self, size):
        Region.count += 1
        self.shm = shared_memory.SharedMemory(
            name="torii-py-%d-%d" % (os.getpid(), Region.count), create=True, size=size)
        self.key = "/" + self.shm.name

    def put(self, offset, values):
        self.shm.buf[offset:offset + 4 * len(values)] = f32(values)

    def get(self, offset, n):
        return unf32(bytes(self.shm.buf[offset:offset + 4 * n]))

    def truncate(self):
        """What a client shrinking its object does (our mapping must not be
        touched afterwards)."""
        fd = os.open("/dev/shm/" + self.shm.name, os.O_RDWR)
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    def close(self):
        self.shm.close()
        self.shm.unlink()


def shm_params(t, region, byte_size, offset=None):
    t.parameters["shared_memory_region"].string_param = region
    t.parameters["shared_memory_byte_size"].int64_param = byte_size
    if offset is not None:
        t.parameters["shared_memory_offset"].int64_param = offset


def shm_request(model, n, region, offset, out_region=None, out_offset=0):
    req = pb.ModelInferRequest(model_name=model)
    t = req.inputs.add()
    t.name, t.datatype = "INPUT0", "FP32"
    t.shape.extend([1, n])
    shm_params(t, region, 4 * n, offset)
    o = req.outputs.add()
    o.name = "OUTPUT0"
    if out_region:
        shm_params(o, out_region, 4 * n, out_offset)
    return req


class SharedMemoryTest(Case):

    def setUp(self):
        self.regions = []
        SERVER.stub.SystemSharedMemoryUnregister(pb.SystemSharedMemoryUnregisterRequest(),
                                                 timeout=RPC_TIMEOUT_S)

    def tearDown(self):
        SERVER.stub.SystemSharedMemoryUnregister(pb.SystemSharedMemoryUnregisterRequest(),
                                                 timeout=RPC_TIMEOUT_S)
        for r in self.regions:
            r.close()

    def region(self, size):
        r = Region(size)
        self.regions.append(r)
        return r

    def register(self, name, region, byte_size, offset=0):
        SERVER.stub.SystemSharedMemoryRegister(
            pb.SystemSharedMemoryRegisterRequest(name=name, key=region.key, offset=offset,
                                                 byte_size=byte_size),
            timeout=RPC_TIMEOUT_S)

    def test_register_status_unregister(self):
        a = self.region(4096)
        self.register("a", a, 1024, 512)
        status = SERVER.stub.SystemSharedMemoryStatus(
            pb.SystemSharedMemoryStatusRequest(), timeout=RPC_TIMEOUT_S)
        self.assertEqual(set(status.regions), {"a"})
        r = status.regions["a"]
        self.assertEqual((r.name, r.key, r.offset, r.byte_size), ("a", a.key, 512, 1024))
        self.rpc_error(SERVER.stub.SystemSharedMemoryRegister,
                       pb.SystemSharedMemoryRegisterRequest(name="a", key=a.key, byte_size=16),
                       code=grpc.StatusCode.ALREADY_EXISTS)
        self.rpc_error(SERVER.stub.SystemSharedMemoryStatus,
                       pb.SystemSharedMemoryStatusRequest(name="b"),
                       code=grpc.StatusCode.NOT_FOUND)
        self.rpc_error(SERVER.stub.SystemSharedMemoryRegister,
                       pb.SystemSharedMemoryRegisterRequest(name="b", key=a.key, byte_size=8192),
                       code=grpc.StatusCode.INVALID_ARGUMENT)
        SERVER.stub.SystemSharedMemoryUnregister(
            pb.SystemSharedMemoryUnregisterRequest(name="a"), timeout=RPC_TIMEOUT_S)
        status = SERVER.stub.SystemSharedMemoryStatus(
            pb.SystemSharedMemoryStatusRequest(), timeout=RPC_TIMEOUT_S)
        self.assertEqual(len(status.regions), 0)

    def test_inputs_and_outputs_through_regions(self):
        inp, out = self.region(4096), self.region(4096)
        self.register("in", inp, 4096)
        self.register("out", out, 4096)
        inp.put(256, [1.0, 2.5, -3.0])
        resp = SERVER.stub.ModelInfer(shm_request("identity", 3, "in", 256, "out", 64),
                                      timeout=RPC_TIMEOUT_S)
        self.assertEqual(list(resp.outputs[0].shape), [1, 3])
        self.assertEqual(list(resp.raw_output_contents), [b""])
        self.assertEqual(out.get(64, 3), [1.0, 2.5, -3.0])

    def test_bad_references(self):
        inp = self.region(4096)
        self.register("in", inp, 64)
        bad = [shm_request("identity", 4, "unknown", 0),
               shm_request("identity", 4, "in", 56),
               shm_request("identity", 32, "in", 0)]
        q = shm_request("identity", 4, "in", 0)
        q.inputs[0].parameters["shared_memory_offset"].int64_param = -4
        bad.append(q)
        q = shm_request("identity", 4, "in", 0)
        del q.inputs[0].parameters["shared_memory_byte_size"]
        bad.append(q)
        q = shm_request("identity", 4, "in", 0, "out_unknown", 0)
        bad.append(q)
        for q in bad:
            self.rpc_error(SERVER.stub.ModelInfer, q, code=grpc.StatusCode.INVALID_ARGUMENT)
        self.assertTrue(SERVER.alive())

    def slow_request(self, req, ms):
        req.parameters["fault"].string_param = "sleep"
        req.parameters["sleep_ms"].int64_param = ms
        result = {}

        def call():
            try:
                result["response"] = SERVER.stub.ModelInfer(req, timeout=RPC_TIMEOUT_S)
            except grpc.RpcError as e:
                result["error"] = e
        thread = threading.Thread(target=call)
        thread.start()
        return thread, result

    def test_unregister_during_a_request(self):
        inp, out = self.region(4096), self.region(4096)
        self.register("in", inp, 4096)
        self.register("out", out, 4096)
        inp.put(0, [4.0, 5.0])
        thread, result = self.slow_request(shm_request("slow", 2, "in", 0, "out", 0), 800)
        time.sleep(0.3)
        SERVER.stub.SystemSharedMemoryUnregister(pb.SystemSharedMemoryUnregisterRequest(),
                                                 timeout=RPC_TIMEOUT_S)
        thread.join(RPC_TIMEOUT_S)
        self.assertNotIn("error", result, result.get("error") and result["error"].details())
        self.assertEqual(out.get(0, 2), [4.0, 5.0])
        self.rpc_error(SERVER.stub.ModelInfer, shm_request("identity", 2, "in", 0),
                       code=grpc.StatusCode.INVALID_ARGUMENT)

    def test_region_truncated_by_the_client(self):
        inp, out = self.region(4096), self.region(4096)
        self.register("in", inp, 4096)
        self.register("out", out, 4096)
        inp.put(0, [1.0, 2.0])
        thread, result = self.slow_request(shm_request("slow", 2, "in", 0, "out", 0), 800)
        time.sleep(0.3)
        inp.truncate()
        thread.join(RPC_TIMEOUT_S)
        self.assertIn("error", result)
        self.assertEqual(result["error"].code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("truncated", result["error"].details())
        self.assertTrue(SERVER.alive())
        self.assertTrue(SERVER.stub.ServerLive(pb.ServerLiveRequest(),
                                               timeout=RPC_TIMEOUT_S).live)
        self.rpc_error(SERVER.stub.ModelInfer, shm_request("identity", 2, "in", 0),
                       code=grpc.StatusCode.FAILED_PRECONDITION)

    def test_cuda_shared_memory_without_a_gpu(self):
        err = self.rpc_error(SERVER.stub.CudaSharedMemoryRegister,
                             pb.CudaSharedMemoryRegisterRequest(name="g", raw_handle=b"\0" * 64,
                                                                byte_size=64),
                             code=grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("GPUs not supported", err.details())
        SERVER.stub.CudaSharedMemoryStatus(pb.CudaSharedMemoryStatusRequest(),
                                           timeout=RPC_TIMEOUT_S)
        SERVER.stub.CudaSharedMemoryUnregister(pb.CudaSharedMemoryUnregisterRequest(),
                                               timeout=RPC_TIMEOUT_S)


class UnimplementedTest(Case):

    def test_unimplemented_rpcs_say_so(self):
        for rpc, req in ((SERVER.stub.TraceSetting, pb.TraceSettingRequest()),
                         (SERVER.stub.LogSettings, pb.LogSettingsRequest())):
            err = self.rpc_error(rpc, req, code=grpc.StatusCode.UNIMPLEMENTED)
            self.assertIn("not implemented by Torii", err.details())


def main():
    global ARGS, SERVER, grpc, pb, pb_grpc
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--stubs", required=True)
    parser.add_argument("--fault-runner", required=True)
    parser.add_argument("--python-runner", default="",
                        help="libtorii_python.so when the build has it")
    ARGS, rest = parser.parse_known_args()
    sys.path.insert(0, ARGS.stubs)
    import grpc as _grpc
    import inference_pb2
    import inference_pb2_grpc
    grpc, pb, pb_grpc = _grpc, inference_pb2, inference_pb2_grpc
    if ARGS.python_runner and not os.path.exists(ARGS.python_runner):
        ARGS.python_runner = ""

    def _terminate(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, _terminate)

    with tempfile.TemporaryDirectory(prefix="torii-triton-ext-") as work:
        SERVER = Server(work)
        ok = False
        try:
            SERVER.start()
            prog = unittest.main(argv=[sys.argv[0]] + rest, exit=False)
            ok = prog.result.wasSuccessful() and SERVER.alive()
        except (RuntimeError, OSError) as e:
            print("FAIL: %s" % e, file=sys.stderr)
        finally:
            code = SERVER.stop()
            if code != 0:
                print("FAIL: torii-server exit %s" % code, file=sys.stderr)
                ok = False
            leftover = SERVER.override_dirs()
            if leftover:
                print("FAIL: override directories left after exit: %s" % leftover,
                      file=sys.stderr)
                ok = False
            if not ok:
                print("---- torii-server log (tail) ----\n%s" % SERVER.log_tail(),
                      file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

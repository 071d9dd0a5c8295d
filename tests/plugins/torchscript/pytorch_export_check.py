#!/usr/bin/python3
"""Independent check of the TorchScript runner with models exported by PyTorch.

Models scripted and traced in Python (conv nets with batch norm and dropout,
one saved in training mode; a multi-input model with INT64 inputs, an
embedding and tuple outputs) are laid out as a Triton repository
(platform "pytorch_libtorch" / backend "pytorch", INPUT__i naming), served by
torii-server, queried with Python grpcio stubs generated from proto/, and
compared with PyTorch's own outputs to 1e-4. Wrong inner dimensions, batches
above max_batch_size and out-of-range ids must get INVALID_ARGUMENT.

Needs Debian's python3-torch, python3-grpcio, python3-protobuf, protoc and
grpc_python_plugin. Exits non-zero on any failure.

  pytorch_export_check.py --server build/bin/torii-server --proto-dir proto \
      --protoc /usr/bin/protoc --grpc-plugin /usr/bin/grpc_python_plugin
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

TOLERANCE = 1e-4


class ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.b1 = torch.nn.BatchNorm2d(8)
        self.c2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.b2 = torch.nn.BatchNorm2d(16)
        self.drop = torch.nn.Dropout(0.3)
        self.fc = torch.nn.Linear(16, 5)

    def forward(self, x):
        x = torch.relu(self.b1(self.c1(x)))
        x = torch.relu(self.b2(self.c2(x)))
        return self.fc(self.drop(x.mean([2, 3])))


class Multi(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(100, 6)
        self.fc = torch.nn.Linear(6 + 4, 3)

    def forward(self, feats: torch.Tensor, ids: torch.Tensor):
        y = self.fc(torch.cat([self.emb(ids).mean(1), feats], 1))
        return y, ids.sum(1, keepdim=True), torch.softmax(y, 1)


CONV_IO = """input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 3, 16, 16 ] } ]
output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 5 ] } ]"""
MULTI_IO = """input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 4 ] },
        { name: "INPUT__1" data_type: TYPE_INT64 dims: [ -1 ] } ]
output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 3 ] },
         { name: "OUTPUT__1" data_type: TYPE_INT64 dims: [ 1 ] },
         { name: "OUTPUT__2" data_type: TYPE_FP32 dims: [ 3 ] } ]"""


def build_repository(repo):
    torch.manual_seed(0)
    conv = ConvNet()
    with torch.no_grad():  # running statistics unlike any batch's
        for m in conv.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    conv.eval()
    training = ConvNet()
    training.load_state_dict(conv.state_dict())
    training.train()  # saved in training mode: the runner must evaluate
    multi = Multi().eval()
    models = {
        "conv_scripted": (torch.jit.script(conv), 'platform: "pytorch_libtorch"', CONV_IO),
        "conv_traced": (torch.jit.trace(conv, torch.randn(2, 3, 16, 16)), 'backend: "pytorch"', CONV_IO),
        "conv_saved_training": (torch.jit.script(training), 'platform: "pytorch_libtorch"', CONV_IO),
        "multi_scripted": (torch.jit.script(multi), 'platform: "pytorch_libtorch"', MULTI_IO),
    }
    for name, (module, selector, io) in models.items():
        os.makedirs(os.path.join(repo, name, "1"))
        module.save(os.path.join(repo, name, "1", "model.pt"))
        with open(os.path.join(repo, name, "config.pbtxt"), "w") as f:
            f.write(f'name: "{name}"\n{selector}\nmax_batch_size: 8\n{io}\n')
    return conv, multi


def generate_stubs(args, out):
    subprocess.run([args.protoc, f"-I{args.proto_dir}", f"--python_out={out}", f"--grpc_python_out={out}",
                    f"--plugin=protoc-gen-grpc_python={args.grpc_plugin}",
                    os.path.join(args.proto_dir, "inference.proto"),
                    os.path.join(args.proto_dir, "model_config.proto")], check=True)
    sys.path.insert(0, out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--proto-dir", required=True)
    parser.add_argument("--protoc", default="protoc")
    parser.add_argument("--grpc-plugin", default="/usr/bin/grpc_python_plugin")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="torii-pytorch-export-")
    server = None
    failures = []
    try:
        generate_stubs(args, work)
        import grpc
        import inference_pb2 as pb
        import inference_pb2_grpc as pbg

        repo = os.path.join(work, "repo")
        conv, multi = build_repository(repo)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        log = open(os.path.join(work, "server.log"), "w")
        server = subprocess.Popen([args.server, f"--model-repository={repo}", f"--grpc-port={port}",
                                   "--grpc-address=127.0.0.1", "--allow-http=false"], stderr=log, stdout=log)
        stub = pbg.GRPCInferenceServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        deadline = time.time() + 120
        while True:
            try:
                if stub.ServerReady(pb.ServerReadyRequest(), timeout=2).ready:
                    break
            except grpc.RpcError:
                pass
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError("torii-server did not become ready:\n" + open(log.name).read())
            time.sleep(0.25)

        dtypes = {np.float32: "FP32", np.int64: "INT64"}
        back = {"FP32": np.float32, "INT64": np.int64}

        def infer(model, inputs):
            request = pb.ModelInferRequest(model_name=model)
            for name, array in inputs:
                t = request.inputs.add()
                t.name, t.datatype = name, dtypes[array.dtype.type]
                t.shape.extend(array.shape)
                request.raw_input_contents.append(array.tobytes())
            response = stub.ModelInfer(request, timeout=30)
            return {o.name: np.frombuffer(raw, dtype=back[o.datatype]).reshape(o.shape)
                    for o, raw in zip(response.outputs, response.raw_output_contents)}

        def compare(label, got, want):
            diff = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())
            print(f"{label}: shape {list(got.shape)} max abs diff {diff:.3g}")
            if got.shape != want.shape or not diff <= TOLERANCE:
                failures.append(f"{label}: shape {got.shape} vs {want.shape}, diff {diff}")

        x = torch.randn(3, 3, 16, 16)
        with torch.no_grad():
            want = conv(x).numpy()
        for name in ("conv_scripted", "conv_traced", "conv_saved_training"):
            compare(name, infer(name, [("INPUT__0", x.numpy())])["OUTPUT__0"], want)

        feats, ids = torch.randn(4, 4), torch.randint(0, 100, (4, 7))
        with torch.no_grad():
            wants = [w.numpy() for w in multi(feats, ids)]
        got = infer("multi_scripted", [("INPUT__0", feats.numpy()), ("INPUT__1", ids.numpy())])
        for i, w in enumerate(wants):
            compare(f"multi_scripted OUTPUT__{i}", got[f"OUTPUT__{i}"], w)

        for label, model, inputs in [
            ("wrong inner dimension", "conv_scripted", [("INPUT__0", np.zeros((1, 3, 15, 16), np.float32))]),
            ("batch above max_batch_size", "conv_scripted", [("INPUT__0", np.zeros((9, 3, 16, 16), np.float32))]),
            ("ids out of range", "multi_scripted", [("INPUT__0", feats.numpy()), ("INPUT__1", (ids + 1000).numpy())]),
        ]:
            try:
                infer(model, inputs)
                failures.append(f"{label}: succeeded, expected INVALID_ARGUMENT")
            except grpc.RpcError as e:
                print(f"{label}: {e.code().name}: {e.details()}")
                if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
                    failures.append(f"{label}: {e.code().name}, expected INVALID_ARGUMENT")
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())

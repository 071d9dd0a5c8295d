#!/usr/bin/python3
"""End-to-end test of Triton's generate extension on torii-server:
POST /v2/models/{m}/generate and /generate_stream (server-sent events), with
Python's standard library as the client.

The real server binary runs on free 127.0.0.1 ports against a repository made
here: identity_bytes and add_sub (examples/model_repository, not decoupled),
the bundled C++ generator runner (examples/decoupled/generator), the
decoupled test runner 'stream' in process and isolated, and (with --models)
the Python model py_llm (tests/e2e/generate_models). It checks how members
become inputs and parameters, the answers' JSON, one response versus many,
events in order and as they are sent, an error mid-stream, bad bodies, an
unknown model (the same messages as /infer), statistics, and that a client
that disconnects mid-stream stops the runner. The server is always stopped.

    /usr/bin/python3 tests/e2e/generate_e2e_test.py --server build/bin/torii-server \\
        --examples examples --stream-runner build/lib/libtorii_stream.so \\
        [--models tests/e2e/generate_models] -v
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_e2e_test as h  # noqa: E402  (its Server, request and helpers)

ARGS = None
SERVER = None

STREAM_CONFIG = """
backend: "stream"
max_batch_size: 0
input [ { name: "COUNT" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "INDEX" data_type: TYPE_INT32 dims: [ 1 ] },
         { name: "PID" data_type: TYPE_INT64 dims: [ 1 ] } ]
model_transaction_policy { decoupled: true }
instance_group [ { count: 2 } ]
"""


def make_repository(root):
    repo = os.path.join(root, "repo")
    os.makedirs(repo)
    for m in ("identity_bytes", "add_sub"):
        shutil.copytree(os.path.join(ARGS.examples, "model_repository", m), os.path.join(repo, m))
    shutil.copytree(os.path.join(ARGS.examples, "decoupled", "generator"),
                    os.path.join(repo, "generator"))
    for m in ("stream", "stream_iso"):
        os.makedirs(os.path.join(repo, m, "1"))
        config = 'name: "%s"\n%s' % (m, STREAM_CONFIG)
        if m == "stream_iso":
            config += 'parameters { key: "isolation" value { string_value: "process" } }\n'
        with open(os.path.join(repo, m, "config.pbtxt"), "w") as f:
            f.write(config)
        shutil.copy(ARGS.stream_runner, os.path.join(repo, m, "libtorii_stream.so"))
    if ARGS.models:
        shutil.copytree(os.path.join(ARGS.models, "py_llm"), os.path.join(repo, "py_llm"))
    return repo


def generate(model, body, stream=False, timeout=30):
    """(response, body bytes) of /generate or /generate_stream."""
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return h.request(SERVER, "POST", "/v2/models/%s/%s" % (model, "generate_stream" if stream
                                                           else "generate"),
                     data, {"Content-Type": "application/json"}, timeout=timeout)


def events_of(data):
    """The events of a server-sent event body, checking its framing."""
    out = []
    for block in data.decode().split("\n\n"):
        if not block:
            continue
        assert block.startswith("data: ") and "\n" not in block, "not an SSE event: %r" % block
        out.append(json.loads(block[len("data: "):]))
    assert data.endswith(b"\n\n"), "the body does not end with an event: %r" % data[-20:]
    return out


def wait_log(needle, limit=20.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        log = SERVER.log()
        at = log.find(needle)
        if at >= 0:
            return log[log.rfind("\n", 0, at) + 1:log.find("\n", at)]
        time.sleep(0.05)
    return ""


class Generate(unittest.TestCase):
    def test_a_bytes_model(self):
        # identity_bytes: INPUT0 BYTES [-1] in a batching model: [-1,-1], so
        # two strings are [1,2] and one is [1,1], returned alone.
        r, d = generate("identity_bytes", {"INPUT0": ["hello", "world"], "id": "b1"})
        self.assertEqual(r.status, 200, d)
        self.assertEqual(r.getheader("Content-Type"), "application/json")
        self.assertEqual(json.loads(d), {"OUTPUT0": ["hello", "world"], "id": "b1",
                                         "model_name": "identity_bytes", "model_version": "1"})
        r, d = generate("identity_bytes", {"INPUT0": "solo"})
        self.assertEqual(json.loads(d)["OUTPUT0"], "solo")

    def test_a_numeric_model(self):
        a = [float(i) for i in range(16)]
        b = [1.0] * 16
        r, d = generate("add_sub", {"INPUT0": a, "INPUT1": b})
        self.assertEqual(r.status, 200, d)
        out = json.loads(d)
        self.assertEqual(out["OUTPUT0"], [x + 1 for x in a])
        self.assertEqual(out["OUTPUT1"], [x - 1 for x in a])

    def test_a_decoupled_model_with_one_response(self):
        r, d = generate("generator", {"PROMPT": "only", "MAX_TOKENS": 1})
        self.assertEqual(r.status, 200, d)
        self.assertEqual(json.loads(d)["TOKEN"], "only")

    def test_a_decoupled_model_with_several_responses_is_an_error(self):
        r, d = generate("generator", {"PROMPT": "a b c", "MAX_TOKENS": 1000000})
        self.assertEqual(r.status, 500, d)
        self.assertIn("generate expects model to produce exactly 1 response", h.error_of(d))
        r, d = generate("generator", {"PROMPT": "a", "MAX_TOKENS": 0})
        self.assertEqual(r.status, 500, d)
        self.assertIn("got none", h.error_of(d))

    def test_the_same_errors_as_infer(self):
        # Unknown model, and a missing input (the validator's message).
        r1, d1 = generate("nope", {"PROMPT": "x"})
        r2, d2 = h.post_json(SERVER, "/v2/models/nope/infer", {"inputs": []})
        self.assertEqual((r1.status, r2.status), (404, 404))
        self.assertEqual(h.error_of(d1), h.error_of(d2))
        r1, d1 = generate("add_sub", {"INPUT0": [0.0] * 16})
        r2, d2 = h.post_json(SERVER, "/v2/models/add_sub/infer", {"inputs": [
            {"name": "INPUT0", "datatype": "FP32", "shape": [1, 16], "data": [0.0] * 16}]})
        self.assertEqual((r1.status, r2.status), (400, 400))
        self.assertEqual(h.error_of(d1), h.error_of(d2))
        self.assertIn("INPUT1", h.error_of(d1))
        # Values that do not fit the model.
        r, d = generate("add_sub", {"INPUT0": [1.0] * 3, "INPUT1": [1.0] * 3})
        self.assertEqual(r.status, 400)
        self.assertIn("input 'INPUT0' has shape [-1,16]: 3 value(s) do not fill it", h.error_of(d))
        r, d = generate("generator", {"PROMPT": 5, "MAX_TOKENS": 1})
        self.assertEqual(r.status, 400)
        self.assertIn("must be a string for BYTES, got 5", h.error_of(d))

    def test_bad_bodies(self):
        for body, message, stream in [
                ("{not json", "not valid JSON", False),
                ("[1, 2]", "must be a JSON object", True),
                ('{"PROMPT": "a", "parameters": 3}', "expected a JSON object for 'parameters'", True),
                ('{"PROMPT": "a", "knobs": {"x": 1}}', "parameter 'knobs' has invalid type", False)]:
            r, d = generate("generator", body, stream=stream)
            self.assertEqual(r.status, 400, body)
            self.assertEqual(r.getheader("Content-Type"), "application/json")
            self.assertIn(message, h.error_of(d))
        r, d = h.request(SERVER, "GET", "/v2/models/generator/generate_stream")
        self.assertEqual(r.status, 405)

    def test_statistics_count_generate_requests(self):
        def count():
            r, d = h.request(SERVER, "GET", "/v2/models/identity_bytes/stats")
            return json.loads(d)["model_stats"][0]["inference_count"]
        before = count()
        for _ in range(3):
            self.assertEqual(generate("identity_bytes", {"INPUT0": "x"})[0].status, 200)
        self.assertEqual(count(), before + 3)


class GenerateStream(unittest.TestCase):
    def test_the_generator_streams_its_tokens(self):
        r, d = generate("generator", {"PROMPT": "one two three", "MAX_TOKENS": 7, "id": "g"},
                        stream=True)
        self.assertEqual(r.status, 200, d)
        self.assertEqual(r.getheader("Content-Type"), "text/event-stream; charset=utf-8")
        events = events_of(d)
        self.assertEqual([e["TOKEN"] for e in events],
                         ["one", "two", "three", "one", "two", "three", "one"])
        for e in events:
            self.assertEqual((e["id"], e["model_name"], e["model_version"]), ("g", "generator", "1"))

    def test_many_responses_in_order(self):
        for model in ("stream", "stream_iso"):
            r, d = generate(model, {"COUNT": 500}, stream=True)
            self.assertEqual(r.status, 200, d[:200])
            self.assertEqual([e["INDEX"] for e in events_of(d)], list(range(500)), model)

    def test_events_leave_as_they_are_sent(self):
        conn = http.client.HTTPConnection("127.0.0.1", SERVER.http_port, timeout=30)
        t0 = time.monotonic()
        conn.request("POST", "/v2/models/stream/generate_stream",
                     json.dumps({"COUNT": 3, "delay_us": 400000}))
        r = conn.getresponse()
        times = []
        while True:
            line = r.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                times.append(time.monotonic() - t0)
        conn.close()
        self.assertEqual(len(times), 3)
        # Buffered to the end, all three would arrive together.
        self.assertGreater(times[2] - times[0], 0.5, times)

    def test_a_request_that_fails_first_is_a_json_error(self):
        r, d = generate("generator", {"PROMPT": "", "MAX_TOKENS": 3}, stream=True)
        self.assertEqual(r.status, 400, d)
        self.assertEqual(r.getheader("Content-Type"), "application/json")
        self.assertIn("PROMPT needs at least one word", h.error_of(d))

    def test_zero_responses_is_an_empty_stream(self):
        r, d = generate("generator", {"PROMPT": "a", "MAX_TOKENS": 0}, stream=True)
        self.assertEqual((r.status, d), (200, b""))

    def test_an_error_mid_stream_is_an_error_event(self):
        if not ARGS.models:
            self.skipTest("needs the Python runner (--models)")
        r, d = generate("py_llm", {"PROMPT": "hi", "STREAM": True,
                                   "parameters": {"repetitions": 2, "fail_last": True}}, stream=True)
        self.assertEqual(r.status, 200, d)
        events = events_of(d)
        self.assertEqual(len(events), 3, events)
        self.assertEqual([e.get("TEXT") for e in events[:2]], ["hi", "hi"])
        self.assertIn("failed at the end", events[2]["error"])
        # Nothing but the error: a plain JSON error with its status (Triton
        # writes it as an event under that status).
        r, d = generate("py_llm", {"PROMPT": "hi", "STREAM": True,
                                   "parameters": {"repetitions": 0, "fail_last": True}}, stream=True)
        self.assertEqual(r.status, 500, d)
        self.assertEqual(r.getheader("Content-Type"), "application/json")
        self.assertIn("failed at the end", h.error_of(d))
        # STREAM false: one response, so /generate takes it too.
        r, d = generate("py_llm", {"PROMPT": "hi", "STREAM": False})
        self.assertEqual(r.status, 200, d)
        self.assertEqual(json.loads(d)["TEXT"], "hi")

    def test_a_client_that_disconnects_stops_the_runner(self):
        for model in ("stream", "stream_iso"):
            rid = "gone-http-" + model
            s = socket.create_connection(("127.0.0.1", SERVER.http_port), timeout=30)
            body = json.dumps({"COUNT": 1000000, "delay_us": 500, "id": rid}).encode()
            s.sendall(b"POST /v2/models/%s/generate_stream HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: %d\r\n\r\n" % (model.encode(), len(body)) + body)
            got = b""
            while got.count(b"data: ") < 20:
                chunk = s.recv(65536)
                self.assertTrue(chunk, "the stream ended early: %r" % got[-200:])
                got += chunk
            s.close()
            line = wait_log("stream: request '%s' ended after " % rid)
            self.assertTrue(line, "the runner did not stop:\n" + SERVER.log()[-3000:])
            self.assertTrue("(cancelled)" in line or "(send failed)" in line, line)
            self.assertIn("of 1000000 responses", line)
        # And the server goes on serving.
        r, d = generate("generator", {"PROMPT": "a", "MAX_TOKENS": 1})
        self.assertEqual(r.status, 200)


def main():
    global ARGS, SERVER
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--examples", required=True)
    parser.add_argument("--stream-runner", required=True)
    parser.add_argument("--models", default="")
    ARGS, rest = parser.parse_known_args()
    h.ARGS = ARGS
    work = tempfile.mkdtemp(prefix="torii-generate-e2e-")
    try:
        SERVER = h.Server(make_repository(work), ["--http-thread-count=2"])
        try:
            prog = unittest.main(argv=[sys.argv[0]] + rest, exit=False)
        finally:
            code = SERVER.stop()
        ok = prog.result.wasSuccessful()
        if code != 0:
            print("the server exited with %s after SIGTERM" % code)
            ok = False
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

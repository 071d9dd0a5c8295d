#!/usr/bin/python3
"""Drives a running Torii HTTP listener with Python's standard library only
(http.client and raw sockets): a client Torii did not write. Started by
http_server_test.cc against fakes; prints each failed check, exits 1 if any.

usage: http_client_check.py PORT
The server must run with: max body 64 KiB, idle timeout 500 ms, body timeout
1 s, and statistics restricted to the header stats-key: abc.
"""
import gzip
import http.client
import json
import socket
import struct
import sys
import time
import zlib

PORT = int(sys.argv[1])
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def request(method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r, data


def error_of(data):
    try:
        return json.loads(data)["error"]
    except Exception as e:  # noqa: BLE001
        return "<not an error body: %r (%s)>" % (data[:80], e)


def raw(payload, read_for=3.0):
    """Sends bytes on a fresh connection; returns what came back until close."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=read_for)
    s.sendall(payload)
    got = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        got += b"<timeout>"
    s.close()
    return got


# --- endpoints -------------------------------------------------------------
r, d = request("GET", "/v2/health/live")
check(r.status == 200 and d == b"", "live is 200 with an empty body")
r, d = request("GET", "/v2/health/ready")
check(r.status == 200, "ready is 200")
r, d = request("GET", "/v2")
check(r.status == 200 and json.loads(d)["name"] == "torii", "server metadata")
check(r.getheader("Content-Type") == "application/json", "metadata is application/json")
r, d = request("GET", "/v2/models/identity")
check(r.status == 200 and json.loads(d)["inputs"][0]["shape"] == [-1, 4], "model metadata")
r, d = request("GET", "/v2/models/identity/ready")
check(r.status == 200, "model ready")
r, d = request("GET", "/v2/models/identity/config")
check(r.status == 200 and json.loads(d)["max_batch_size"] == 8, "model config")
r, d = request("GET", "/v2/models/stats")
check(r.status == 403 and "stats-key" in error_of(d), "restricted statistics without header: 403")
r, d = request("GET", "/v2/models/identity/stats", headers={"Stats-Key": "abc"})
check(r.status == 200 and json.loads(d)["model_stats"][0]["inference_count"] == 3,
      "restricted statistics with header (any case)")
r, d = request("POST", "/v2/repository/index", body="")
check(r.status == 200 and json.loads(d)[0]["name"] == "identity", "repository index")
r, d = request("POST", "/v2/repository/models/identity/load", body="")
check(r.status == 200, "load")
r, d = request("POST", "/v2/repository/models/identity/unload",
               body=json.dumps({"parameters": {"unload_dependents": False}}))
check(r.status == 200, "unload as tritonclient sends it")

# --- inference ---------------------------------------------------------------
req = {"id": "a", "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [2, 2],
                              "data": [[1, 2], [3, 4.5]]}]}
r, d = request("POST", "/v2/models/identity/infer", body=json.dumps(req),
               headers={"Content-Type": "application/json"})
check(r.status == 200, "JSON infer status %d %r" % (r.status, d[:200]))
if r.status == 200:
    out = json.loads(d)
    check(out["id"] == "a" and out["outputs"][0]["data"] == [1, 2, 3, 4.5], "JSON infer output")

# Binary, as tritonclient.http builds it: JSON header, then the raw tensors.
header = json.dumps({"inputs": [
    {"name": "INPUT0", "datatype": "INT64", "shape": [3], "parameters": {"binary_data_size": 24}},
    {"name": "INPUT1", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": 13}}],
    "parameters": {"binary_data_output": True}}).encode()
ints = struct.pack("<3q", 1, -2, 3)
strs = struct.pack("<I", 5) + b"hello" + struct.pack("<I", 0)  # 13 bytes
r, d = request("POST", "/v2/models/identity/infer", body=header + ints + strs,
               headers={"Inference-Header-Content-Length": str(len(header)),
                        "Content-Type": "application/octet-stream"})
check(r.status == 200, "binary infer status %d" % r.status)
if r.status == 200:
    n = int(r.getheader("Inference-Header-Content-Length"))
    out = json.loads(d[:n])
    sizes = [o["parameters"]["binary_data_size"] for o in out["outputs"]]
    check(sizes == [24, 13], "binary output sizes %r" % sizes)
    check(d[n:] == ints + strs, "binary outputs are the inputs' bytes")

# Compression both ways.
r, d = request("POST", "/v2/models/identity/infer", body=gzip.compress(json.dumps(req).encode()),
               headers={"Content-Encoding": "gzip", "Accept-Encoding": "gzip"})
check(r.status == 200 and r.getheader("Content-Encoding") == "gzip", "gzip both ways")
if r.status == 200:
    check(json.loads(gzip.decompress(d))["outputs"][0]["data"][3] == 4.5, "gzip response decodes")
r, d = request("POST", "/v2/models/identity/infer", body=zlib.compress(json.dumps(req).encode()),
               headers={"Content-Encoding": "deflate", "Accept-Encoding": "deflate;q=1, gzip;q=0.5"})
check(r.status == 200 and r.getheader("Content-Encoding") == "deflate", "deflate both ways")
if r.status == 200:
    check(b'"id":"a"' in zlib.decompress(d), "deflate response decodes")

# Chunked request body.
got = raw(b"POST /v2/models/identity/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
          b"Connection: close\r\n\r\n" +
          b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in
                   [json.dumps(req).encode()[:10], json.dumps(req).encode()[10:]]) + b"0\r\n\r\n")
check(got.startswith(b"HTTP/1.1 200"), "chunked request body: %r" % got[:40])

# --- bad input: a clear answer, and the server keeps serving -----------------
r, d = request("GET", "/v2/nothing/here")
check(r.status == 404 and "no endpoint" in error_of(d), "unknown path 404")
r, d = request("PUT", "/v2/models/identity/infer", body="{}")
check(r.status == 405 and r.getheader("Allow") == "POST", "wrong method 405 with Allow")
r, d = request("POST", "/v2/models/identity/infer", body="{not json")
check(r.status == 400 and "not valid JSON" in error_of(d), "malformed JSON 400: %r" % d)
r, d = request("POST", "/v2/models/identity/infer", body=header + ints,
               headers={"Inference-Header-Content-Length": "x"})
check(r.status == 400 and "Inference-Header-Content-Length" in error_of(d), "bad header length 400")
r, d = request("POST", "/v2/models/identity/infer", body=header + ints,
               headers={"Inference-Header-Content-Length": str(len(header))})
check(r.status == 400 and "INPUT1" in error_of(d), "binary sizes that do not add up: 400 %r" % d)
r, d = request("POST", "/v2/models/identity/infer", body="{}", headers={"Content-Encoding": "br"})
check(r.status == 415 and r.getheader("Accept-Encoding") == "gzip, deflate", "unknown coding 415")
r, d = request("POST", "/v2/models/missing/infer", body=json.dumps(req))
check(r.status == 404, "unknown model 404")

big = b"x" * (100 * 1024)
got = raw(b"POST /v2/models/identity/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(big)
          + big)
check(got.startswith(b"HTTP/1.1 413") and b"--max-request-bytes" in got, "body over limit: %r" % got[:60])
# With Expect: 100-continue the refusal comes before the body is sent.
got = raw(b"POST /v2/models/identity/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n"
          b"Expect: 100-continue\r\n\r\n")
check(got.startswith(b"HTTP/1.1 413"), "over limit with Expect: 100-continue: %r" % got[:40])
got = raw(b"POST /v2/models/identity/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
          b"Expect: 100-continue\r\nConnection: close\r\n\r\n" % len(json.dumps(req)) +
          json.dumps(req).encode())
check(got.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200"), "100-continue: %r" % got[:60])
got = raw(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (80 * 1024) + b"\r\n\r\n")
check(got.startswith(b"HTTP/1.1 431"), "oversized headers 431: %r" % got[:40])
got = raw(b"HELLO THERE\r\n\r\n")
check(got.startswith(b"HTTP/1.1 400") and b"malformed HTTP request" in got, "garbage 400: %r" % got[:60])

# Pipelined requests on one connection are answered in order.
got = raw(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
          b"GET /v2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
check(got.count(b"HTTP/1.1 200") == 2 and b'"torii"' in got, "pipelining")

# Keep-alive: several requests on one connection.
conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
for _ in range(3):
    conn.request("GET", "/v2/health/live")
    check(conn.getresponse().read() == b"", "keep-alive request")
conn.close()

# --- generate and generate_stream (server-sent events) ---------------------------
r, d = request("POST", "/v2/models/text/generate", body=json.dumps({"PROMPT": "hi", "IDS": [1, 2]}))
check(r.status == 200 and json.loads(d) == {"OUTPUT0": "hi", "OUTPUT1": [1, 2], "model_name": "text",
                                            "model_version": "1"}, "generate: %r" % d)
# Each event leaves as the model sends it (the fake waits 300 ms before
# each), while other connections are served.
conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
t0 = time.monotonic()
conn.request("POST", "/v2/models/text/generate_stream",
             body=json.dumps({"PROMPT": "hi", "fake_responses": 3, "fake_delay_ms": 300}))
r = conn.getresponse()
check(r.status == 200 and r.getheader("Content-Type") == "text/event-stream; charset=utf-8"
      and r.getheader("Transfer-Encoding") == "chunked", "generate_stream head %r" % r.getheaders())
events, times, lines = [], [], []
while True:
    line = r.readline()
    if not line:
        break
    lines.append(line)
    if line.startswith(b"data: "):
        events.append(json.loads(line[6:]))
        times.append(time.monotonic() - t0)
        if len(events) == 1:
            r2, d2 = request("GET", "/v2/health/live")
            check(r2.status == 200, "another connection is served while a stream is open")
check([e.get("index") for e in events] == [0, 1, 2], "generate_stream events in order: %r" % events)
check(len(lines) == 6 and all(x == b"\n" for x in lines[1::2])
      and all(x.startswith(b"data: {") and x.endswith(b"}\n") for x in lines[0::2]),
      "each event is 'data: {json}' and a blank line: %r" % lines)
check(len(times) == 3 and times[2] - times[0] > 0.4, "events arrive as they are sent: %r" % times)
conn.request("GET", "/v2/health/live")  # the connection stays open after the stream
check(conn.getresponse().status == 200, "keep-alive after a stream")
conn.close()
# A client that leaves mid-stream: the server notices (http_server_test.cc
# checks that the model was stopped) and keeps serving.
s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
body = json.dumps({"PROMPT": "hi", "fake_responses": 100000, "fake_delay_ms": 1}).encode()
s.sendall(b"POST /v2/models/text/generate_stream HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
          % len(body) + body)
got = b""
while got.count(b"data: ") < 3:
    chunk = s.recv(4096)
    if not chunk:
        break
    got += chunk
check(got.count(b"data: ") >= 3, "a long stream starts: %r" % got[:100])
s.close()

# --- timeouts ------------------------------------------------------------------
for what, payload, limit in [
        ("idle connection", b"", 3.0),
        ("slow headers", b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n", 3.0),
        ("slow body", b"POST /v2/models/identity/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", 4.0)]:
    t0 = time.monotonic()
    got = raw(payload, read_for=limit + 2)
    took = time.monotonic() - t0
    check(b"<timeout>" not in got and took < limit, "%s closed by the server (%.2f s)" % (what, took))

r, d = request("GET", "/v2/health/ready")
check(r.status == 200, "still serving after all of the above")

print("http_client_check: %d failures" % len(failures))
sys.exit(1 if failures else 0)

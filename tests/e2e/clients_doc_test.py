#!/usr/bin/python3
"""Runs the curl examples of docs/clients.md ("HTTP/REST with curl") as written,
against the real torii-server, and checks what they print.

Every ```sh block of that section runs as one bash script (set -e, pipefail) in a
scratch directory, with localhost:8000 pointed at the server's free loopback
port. Its `# -> TEXT` lines are what it must print, line by line (whitespace runs
compare as one space; a TEXT ending in `...` only has to start the line). The
server serves a copy of examples/model_repository (without the TorchScript model,
whose runner a build may lack) with explicit model control, so the load and
unload examples work. The server is always stopped.

    /usr/bin/python3 tests/e2e/clients_doc_test.py --server build/bin/torii-server \
        --repo examples/model_repository --doc docs/clients.md
"""

import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from torii_server import die_with_parent, free_port

SECTION = "## HTTP/REST with curl"


def blocks(doc_path):
    """The ```sh blocks of the section, in order: [(first line number, text)]."""
    with open(doc_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    start = lines.index(SECTION)
    out, current, first = [], None, 0
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if current is None and line.startswith("## "):
            break
        if current is None and line.strip() == "```sh":
            current, first = [], i + 2
        elif current is not None and line.strip() == "```":
            out.append((first, "\n".join(current)))
            current = None
        elif current is not None:
            current.append(line)
    return out


def normal(line):
    return " ".join(line.replace("\r", "").split())


def matches(expected, got):
    expected = normal(expected)
    if expected.endswith("..."):
        return got.startswith(expected[:-3])
    return got == expected


def wait_ready(port, proc, log_path, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/v2/health/ready")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    with open(log_path, errors="replace") as f:
        raise RuntimeError("torii-server not ready:\n" + f.read())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--doc", required=True)
    args = parser.parse_args()

    examples = blocks(args.doc)
    if not examples:
        print("no sh blocks under '%s' in %s" % (SECTION, args.doc))
        return 1
    work = tempfile.mkdtemp(prefix="torii-clients-doc-")
    proc = None
    failures = 0
    try:
        repo = os.path.join(work, "repo")
        shutil.copytree(args.repo, repo)
        shutil.rmtree(os.path.join(repo, "mlp"), ignore_errors=True)
        scratch = os.path.join(work, "scratch")
        os.makedirs(scratch)
        port = free_port()
        log_path = os.path.join(work, "server.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [args.server, "--model-repository=" + repo,
                 "--grpc-address=127.0.0.1", "--grpc-port=%d" % free_port(),
                 "--http-address=127.0.0.1", "--http-port=%d" % port,
                 "--metrics-address=127.0.0.1", "--metrics-port=%d" % free_port(),
                 "--model-control-mode=explicit", "--load-model=*"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent)
        wait_ready(port, proc, log_path)

        for line_no, text in examples:
            script = text.replace("localhost:8000", "127.0.0.1:%d" % port)
            expected = [l.strip()[len("# -> "):] for l in text.split("\n")
                        if l.strip().startswith("# -> ")]
            p = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=scratch,
                               capture_output=True, text=True, timeout=60)
            got = [normal(l) for l in p.stdout.split("\n") if normal(l)]
            ok = p.returncode == 0 and len(got) == len(expected) and all(
                matches(e, g) for e, g in zip(expected, got))
            name = "%s line %d" % (os.path.basename(args.doc), line_no)
            if ok:
                print("PASS", name)
                continue
            failures += 1
            print("FAIL", name, "(exit %d)" % p.returncode)
            for i in range(max(len(expected), len(got))):
                e = expected[i] if i < len(expected) else "<nothing>"
                g = got[i] if i < len(got) else "<nothing>"
                mark = "  " if i < len(expected) and i < len(got) and matches(e, g) else "!!"
                print("  %s expected: %s\n  %s got:      %s" % (mark, e, mark, g))
            if p.stderr.strip():
                print("  stderr:", p.stderr.strip()[:500])
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    print("%d of %d examples failed" % (failures, len(examples)) if failures
          else "all %d examples ran as documented" % len(examples))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The instruction-count regression gate (docs/performance.md, "Regression
gate"). For each case, torii-server runs under valgrind's callgrind; the
client (torii-perf, concurrency 1, 1 KiB FP32) runs outside it. After a
warm-up on the same connection the counters are zeroed, a fixed number of
requests is sent, and the counters are dumped: user-space instructions per
request = total / requests. This repeats --repeat times in the same server
and the median is compared with bench/perf_budget.json.

  perf_gate.py --build DIR                  check: exit 1 if a case is over
                                            its budget by more than the
                                            tolerance (default 10 %)
  perf_gate.py --build DIR --update         measure and rewrite the budget
  perf_gate.py --build DIR --cases identity_grpc --repeat 5

CI runs it as `bash scripts/ci/perf-gate.sh build` (after bench-smoke).
Exit status: 0 within budget (or updated); 1 over budget or a setup error.
"""
import argparse
import datetime
import glob
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BUDGET = os.path.join(ROOT, "bench", "perf_budget.json")
SHIM = "libtorii_bench_one_cpu_abseil.so"
DEFAULT_TOLERANCE = 0.10
# What is measured. Changing any of these changes the numbers: re-baseline.
INPUT = "INPUT0:FP32:1,256"  # 1 KiB
CONCURRENCY = 1

# name -> (description, isolation parameter or None)
CASES = {
    "identity_grpc": (
        "identity over gRPC, in process: torii-server's instructions per "
        "request, 1 KiB FP32 in and out, unary ModelInfer, concurrency 1",
        None),
    "identity_isolated": (
        "identity with isolation: \"process\": torii-server plus its child "
        "torii-runner-host (followed with --trace-children=yes, counted "
        "together; the parts are recorded), same request",
        "process"),
}


class GateError(Exception):
    """A setup problem: the gate cannot measure (exit 1, not a verdict)."""


def log(msg):
    print(f"perf-gate: {msg}", flush=True)


def free_ports(n):
    """n distinct free loopback ports (all bound at once, so never the same)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def run_text(cmd, timeout=20):
    try:
        return subprocess.run(cmd, capture_output=True, text=True,
                              timeout=timeout).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# --- the environment the numbers depend on ---------------------------------

def cmake_cache(build):
    values = {}
    path = os.path.join(build, "CMakeCache.txt")
    if os.path.exists(path):
        with open(path, errors="replace") as f:
            for line in f:
                if "=" in line and ":" in line.split("=", 1)[0]:
                    key, value = line.rstrip("\n").split("=", 1)
                    values[key.split(":", 1)[0]] = value
    return values


def toolchain(build):
    """What, besides our code, moves the count: recorded with the budget and
    compared (a difference is reported, not failed)."""
    cache = cmake_cache(build)
    compiler = cache.get("CMAKE_CXX_COMPILER", "")
    info = {
        "build_type": cache.get("CMAKE_BUILD_TYPE", ""),
        "cxx_flags": " ".join(x for x in (
            cache.get("CMAKE_CXX_FLAGS", ""),
            cache.get("CMAKE_CXX_FLAGS_" + cache.get("CMAKE_BUILD_TYPE", "").upper(), ""))
            if x),
        "compiler": (os.path.basename(compiler) + " " +
                     run_text([compiler, "-dumpfullversion"])) if compiler else "",
        "valgrind": run_text(["valgrind", "--version"]),
        "nproc": os.cpu_count(),
    }
    for pkg in ("libgrpc++1.51", "libprotobuf32", "libabsl20220623", "libc6"):
        version = run_text(["dpkg-query", "-W", "-f", "${Version}", pkg])
        if version:
            info[pkg] = version
    return info


def git_commit():
    """HEAD, and which top-level folders have uncommitted changes (a budget
    measured with changes in server/ is not the commit's number)."""
    commit = run_text(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"])
    if not commit:
        return "unknown"
    changed = run_text(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])
    folders = sorted({line[3:].split("/", 1)[0] for line in changed.splitlines() if line[3:]})
    return commit + (f" (uncommitted changes in {', '.join(folders)})" if folders else "")


# --- one case ---------------------------------------------------------------

def make_repository(work, isolation):
    src = os.path.join(ROOT, "examples", "model_repository", "identity")
    if not os.path.exists(os.path.join(src, "config.pbtxt")):
        raise GateError(f"{src}/config.pbtxt is missing")
    repo = os.path.join(work, "repository")
    shutil.copytree(src, os.path.join(repo, "identity"))
    if isolation:
        with open(os.path.join(repo, "identity", "config.pbtxt"), "a") as f:
            f.write('parameters { key: "isolation" value { string_value: "%s" } }\n'
                    % isolation)
    return repo


def children_named(pid, name):
    """Live child processes of `pid` whose command line mentions `name`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid != pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if name.encode() in f.read():
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return sorted(found)


def callgrind_total(path):
    total = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith(("totals:", "summary:")):
                total = int(line.split()[1])
    if total is None:
        raise GateError(f"{path} has no totals line")
    return total


def self_costs(path):
    """Self cost per (function, object) of a callgrind file. Read directly:
    after a mid-run zero, callgrind_annotate reports the whole cost of a
    thread as the self cost of its root (clone, start_thread, ...)."""
    fn_names, ob_names, costs = {}, {}, {}
    fn = ob = None
    skip = False
    with open(path, errors="replace") as f:
        for line in f:
            if skip:  # the line after calls= is the call's inclusive cost
                skip = False
                continue
            if line[:1].isdigit() or line[:1] in "+-*":
                parts = line.split()
                if fn is not None and len(parts) >= 2:
                    costs[(fn, ob)] = costs.get((fn, ob), 0) + int(parts[1])
                continue
            if line.startswith("calls="):
                skip = True
                continue
            # fn=/ob= (or cfn=/cob=) "(id) name" the first time, "(id)" after;
            # ids are shared between fn and cfn, and between ob and cob.
            m = re.match(r"(c?)(fn|ob)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if m:
                table = fn_names if m.group(2) == "fn" else ob_names
                if m.group(4):
                    table[m.group(3)] = m.group(4)
                if not m.group(1):
                    name = table.get(m.group(3), m.group(3))
                    if m.group(2) == "fn":
                        fn = name
                    else:
                        ob = name
    return costs


def short_name(fn, ob):
    """'function [object]' without the parameter list, so tables stay readable."""
    fn = fn.replace("(anonymous namespace)", "{anon}")
    if "(" in fn and not fn.startswith("operator"):
        fn = fn.split("(", 1)[0]
    return f"{fn} [{os.path.basename(ob or '?')}]"


def function_costs(paths, requests):
    """Self cost per request by short_name(), summed over `paths` (one dump,
    or one file per thread)."""
    out = {}
    for path in paths:
        for (fn, ob), cost in self_costs(path).items():
            key = short_name(fn, ob)
            out[key] = out.get(key, 0) + cost / requests
    return out


def top(costs, limit):
    return sorted(costs.items(), key=lambda kv: -kv[1])[:limit]


class Server:
    """torii-server under callgrind; stopped (with its children) on exit."""

    def __init__(self, build, work, repo, trace_children, valgrind_args=()):
        self.work = work
        self.port, metrics_port = free_ports(2)
        env = dict(os.environ)
        shim = os.path.join(build, "lib", SHIM)
        env["LD_PRELOAD"] = shim + (":" + env["LD_PRELOAD"] if env.get("LD_PRELOAD") else "")
        cmd = ["valgrind", "--tool=callgrind", "--dump-line=no",
               f"--trace-children={'yes' if trace_children else 'no'}",
               f"--callgrind-out-file={work}/callgrind.out.%p", *valgrind_args,
               os.path.join(build, "bin", "torii-server"),
               f"--model-repository={repo}", "--grpc-address=127.0.0.1",
               f"--grpc-port={self.port}", "--metrics-address=127.0.0.1",
               f"--metrics-port={metrics_port}",
               # gRPC is what the gate measures; no HTTP listener on port 8000.
               "--allow-http=false"]
        self.log_path = os.path.join(work, "server.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        self.children = []

    def url(self):
        return f"127.0.0.1:{self.port}"

    def log_tail(self, lines=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.children:  # PR_SET_PDEATHSIG should have done it
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.log.close()


def perf(args, server, extra, out_json, timeout):
    """Runs torii-perf against `server`; a server that dies meanwhile ends it."""
    cmd = [os.path.join(args.build, "bin", "torii-perf"), "-u", server.url(),
           "-m", "identity", "--input", INPUT, "--concurrency-range", str(CONCURRENCY),
           "--output-json", out_json] + extra
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True)
        deadline = time.time() + timeout
        try:
            while p.poll() is None:
                if server.proc.poll() is not None:
                    raise GateError(f"torii-server exited ({server.proc.returncode}) during "
                                    f"{shlex.join(cmd)}\n--- server log:\n{server.log_tail()}")
                if time.time() > deadline:
                    raise GateError(f"torii-perf did not finish within {timeout} s: "
                                    f"{shlex.join(cmd)}")
                time.sleep(0.2)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        err.seek(0)
        stderr = err.read()
    if p.returncode != 0:
        hint = ""
        if "callgrind_control" in stderr:
            hint = ("\n(callgrind_control reaches an idle process through vgdb, which needs "
                    "ptrace: /proc/sys/kernel/yama/ptrace_scope must be 0 or 1, and a container "
                    "must allow ptrace)")
        raise GateError(f"torii-perf exited {p.returncode}: {shlex.join(cmd)}\n"
                        f"{stderr.strip()}{hint}\n--- server log:\n{server.log_tail()}")


def measure_case(args, name):
    description, isolation = CASES[name]
    work = os.path.join(args.results, name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    repo = make_repository(work, isolation)
    server = Server(args.build, work, repo, trace_children=bool(isolation),
                    valgrind_args=args.valgrind_arg)
    try:
        # Ready (the model loaded, under valgrind: seconds), one request.
        perf(args, server, ["--wait-ready", "300000", "--request-count", "1"],
             os.path.join(work, "ready.json"), 330)
        pids = {"torii-server": server.proc.pid}
        if isolation:
            hosts = children_named(server.proc.pid, "torii-runner-host")
            if len(hosts) != 1:
                raise GateError(f"expected one torii-runner-host child of "
                                f"{server.proc.pid}, found {hosts}")
            server.children = hosts
            pids["torii-runner-host"] = hosts[0]
        runs = []
        for k in range(1, args.repeat + 1):
            # The pause lets the previous call's clean-up (after its response
            # left) finish before zeroing, and this run's before dumping.
            # callgrind_control talks to valgrind through vgdb, which wakes a
            # process blocked in a system call with ptrace; bounded, so a
            # machine that forbids ptrace fails with a reason instead of hanging.
            zero = " && ".join(f"timeout 60 callgrind_control -z {p} >/dev/null"
                               for p in pids.values())
            dump = " && ".join(f"timeout 60 callgrind_control --dump=perf-gate-{k} {p} >/dev/null"
                               for p in pids.values())
            perf(args, server,
                 ["--request-count", str(args.requests), "--warmup-count", str(args.warmup),
                  "--on-count-start", f"sleep 0.2 && {zero}",
                  "--on-count-end", f"sleep 0.2 && {dump}"],
                 os.path.join(work, f"perf_{k}.json"), args.timeout)
            parts, files = {}, {}
            for who, pid in pids.items():
                # One file per dump, or one per thread with --separate-threads=yes.
                path = os.path.join(work, f"callgrind.out.{pid}.{k}")
                for _ in range(50):  # the dump is synchronous; be lenient
                    found = sorted(glob.glob(path) + glob.glob(path + "-*"))
                    if found:
                        break
                    time.sleep(0.1)
                if not found:
                    raise GateError(f"callgrind wrote no {path}")
                parts[who] = sum(callgrind_total(p) for p in found) / args.requests
                files[who] = found
            total = sum(parts.values())
            runs.append({"instructions_per_request": total, "parts": parts, "files": files})
            log(f"  {name} run {k}/{args.repeat}: {total:,.0f} instructions per request"
                + ("" if len(parts) == 1 else
                   " (" + ", ".join(f"{w} {v:,.0f}" for w, v in parts.items()) + ")"))
    finally:
        server.stop()
    values = [r["instructions_per_request"] for r in runs]
    median = statistics.median(values)
    median_run = min(runs, key=lambda r: abs(r["instructions_per_request"] - median))
    return {
        "description": description,
        "instructions_per_request": round(median),
        "runs": [round(v) for v in values],
        "spread_percent": round(100 * (max(values) - min(values)) / median, 2),
        "parts": {w: round(v) for w, v in median_run["parts"].items()},
        "profile": median_run["files"],
        # Where the median run's instructions go: the budget keeps the top
        # of it, so a failure can name what grew.
        "functions": {w: function_costs(paths, args.requests)
                      for w, paths in median_run["files"].items()},
    }


# --- the verdict ------------------------------------------------------------

def load_budget(path):
    if not os.path.exists(path):
        return {"cases": {}}
    with open(path) as f:
        return json.load(f)


def shown(path):
    """`path` relative to the source tree when inside it (as a reader types it)."""
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def update_command(args, names):
    cmd = f"bash scripts/ci/perf-gate.sh {shown(args.build)} --update"
    if set(names) != set(CASES):
        cmd += " --cases " + ",".join(names)
    return cmd


def verdict(args, budget, measured, tc):
    """Prints the table; returns False if a case is over its budget (in
    --update mode only the table and notes are printed)."""
    tolerance = budget.get("tolerance", DEFAULT_TOLERANCE)
    failed = []
    print()
    print(f"{'case':<20} {'measured':>10} {'budget':>10} {'ratio':>7}  {'limit':>7}  "
          f"{'runs (spread)':<34} verdict")
    for name, m in measured.items():
        b = budget.get("cases", {}).get(name)
        runs = " ".join(f"{v:,}" for v in m["runs"]) + f" ({m['spread_percent']:.2f} %)"
        if not b:
            print(f"{name:<20} {m['instructions_per_request']:>10,} {'-':>10} {'-':>7}  "
                  f"{'-':>7}  {runs:<34} NO BUDGET")
            failed.append((name, m, None))
            continue
        ratio = m["instructions_per_request"] / b["instructions_per_request"]
        over = ratio > 1 + tolerance
        print(f"{name:<20} {m['instructions_per_request']:>10,} "
              f"{b['instructions_per_request']:>10,} {ratio:>7.3f}  {1 + tolerance:>7.2f}  "
              f"{runs:<34} {'FAIL' if over else 'ok'}")
        if over:
            failed.append((name, m, b))
        elif ratio < 1 - tolerance and not args.update:
            log(f"note: {name} is {100 * (1 - ratio):.1f} % under its budget; lock the "
                f"gain in with: {update_command(args, [name])}")
    spread = [n for n, m in measured.items() if m["spread_percent"] > 3]
    if spread:
        log(f"warning: runs of {', '.join(spread)} differ by more than 3 % (0.1-1.8 % on a "
            f"loaded 2-vCPU VM): is {SHIM} preloaded, and is the machine swapping?")
    differs = {k: (budget.get("toolchain", {}).get(k), v) for k, v in tc.items()
               if k in budget.get("toolchain", {}) and budget["toolchain"][k] != v}
    if differs:
        log("note: measured with a different toolchain than the budget's; a difference "
            "may come from there:")
        for k, (was, now) in differs.items():
            log(f"  {k}: budget {was!r}, now {now!r}")
    print()
    if args.update:
        return True
    for name, m, b in failed:
        if b is None:
            log(f"FAIL {name}: no budget in {shown(args.budget)}. "
                f"Add one with: {update_command(args, [name])}")
            continue
        limit = b["instructions_per_request"] * (1 + tolerance)
        log(f"FAIL {name}: {m['instructions_per_request']:,} instructions per request, "
            f"budget {b['instructions_per_request']:,} (ratio "
            f"{m['instructions_per_request'] / b['instructions_per_request']:.3f}, more than "
            f"+{100 * tolerance:.0f} %: limit {limit:,.0f}). The budget was measured on "
            f"{b.get('date', '?')} at commit {b.get('commit', '?')}.")
        if len(m["parts"]) > 1:
            log("  parts: " + ", ".join(
                f"{who} {v:,} (budget {b.get('parts', {}).get(who, 0):,})"
                for who, v in m["parts"].items()))
        for who, paths in m["profile"].items():
            was_part = b.get("parts", {}).get(who)
            if len(m["parts"]) > 1 and was_part and m["parts"][who] <= was_part * 1.02:
                print(f"  {who}: {m['parts'][who]:,} per request against {was_part:,} in the "
                      "budget: not where it grew")
                continue
            now = m["functions"][who]
            base = b.get("top_self", {}).get(who, {})
            if base:
                # A function outside the budget's top list cost less than its
                # last entry then: the increase shown is a lower bound.
                floor = min(base.values())
                grew = top({n: v - base.get(n, floor) for n, v in now.items()
                            if v - base.get(n, floor) > 0}, 8)
                print(f"  {who}: largest increases against the budget's profile (self "
                      f"cost per request; the budget lists its top {len(base)}, down to "
                      f"{floor:,.0f}):")
                for name, delta in grew:
                    was = f"{base[name]:,.0f}" if name in base else f"< {floor:,.0f}"
                    print(f"    {delta:>+9,.0f}{' ' if name in base else '+'} {name[:110]}  "
                          f"({was} -> {now[name]:,.0f})")
            print(f"  {who}: where the instructions go now (self cost per request, top 12; "
                  f"full profile: callgrind_annotate --inclusive=yes {' '.join(paths)}):")
            for name, per_request in top(now, 12):
                print(f"    {per_request:>9,.0f}  {name[:120]}")
    if failed:
        print()
        log("if the increase is intended (a feature that costs what it costs), re-baseline "
            "on purpose and commit the budget with the change that caused it, saying why:")
        log(f"    {update_command(args, [n for n, _, _ in failed])}")
        log(f"    git add {shown(args.budget)}")
        log("otherwise find the regression: the profile above, or "
            "`bench/run.sh callgrind` for the inclusive breakdown.")
    return not failed


def write_budget(args, budget, measured, tc):
    budget.setdefault("about", (
        "User-space instructions per request (valgrind callgrind) of torii-server on the "
        "cases of bench/perf_gate.py. scripts/ci/perf-gate.sh fails when a case exceeds "
        "its budget by more than the tolerance. Re-baseline on purpose with "
        "`bash scripts/ci/perf-gate.sh build --update` and commit this file. "
        "docs/performance.md, \"Regression gate\", explains the method."))
    budget["update"] = ("bash scripts/ci/perf-gate.sh build --update [--cases NAME]: "
                        "measures and rewrites this file; commit it with the change that "
                        "moved the numbers and say why")
    budget.setdefault("tolerance", DEFAULT_TOLERANCE)
    budget["method"] = {
        "client": f"torii-perf -m identity --input {INPUT} --concurrency-range {CONCURRENCY} "
                  f"--warmup-count {args.warmup} --request-count {args.requests}, "
                  f"outside valgrind, one connection",
        "measured": "counters zeroed after the warm-up and dumped after the last response; "
                    f"median of {args.repeat} runs in one server process",
        "server": f"valgrind --tool=callgrind, LD_PRELOAD={SHIM}; identity model only",
    }
    budget["toolchain"] = tc
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    commit = git_commit()
    command = os.environ.get("PERF_GATE_COMMAND") or "python3 " + " ".join(
        [os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] +
        [os.path.relpath(a, ROOT) if os.path.isabs(a) and a.startswith(ROOT) else a
         for a in sys.argv[1:]])
    cases = budget.setdefault("cases", {})
    for name, m in measured.items():
        cases[name] = {
            "instructions_per_request": m["instructions_per_request"],
            "runs": m["runs"],
            "spread_percent": m["spread_percent"],
            "parts": m["parts"],
            "description": m["description"],
            "top_self": {w: {n: round(v) for n, v in top(f, 40)}
                         for w, f in m["functions"].items()},
            "date": now,
            "commit": commit,
            "command": command,
        }
    ordered = {k: budget[k] for k in ("about", "update", "tolerance", "method", "toolchain")}
    ordered["cases"] = {k: cases[k] for k in sorted(cases)}
    text = json.dumps(ordered, indent=1)
    # Lists of numbers on one line each: a diff of the budget reads better.
    text = re.sub(r"\[\s+([-\d.,\s]+?)\s+\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    with open(args.budget, "w") as f:
        f.write(text + "\n")
    log(f"wrote {shown(args.budget)} ({', '.join(measured)}); commit it "
        "with the change that moved the numbers, and say why")


def check_setup(args):
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if shutil.which(tool) is None:
            raise GateError(f"{tool} is not installed (scripts/install-deps.sh installs "
                            "valgrind)")
    for rel in ("bin/torii-server", "bin/torii-perf", "bin/torii-runner-host",
                "lib/torii/libtorii_identity.so", f"lib/{SHIM}"):
        if not os.path.exists(os.path.join(args.build, rel)):
            raise GateError(f"{args.build}/{rel} is missing (build torii-server torii-perf "
                            "torii-runner-host identity torii_bench_one_cpu_abseil, with "
                            "-DTORII_BUILD_BENCH=ON)")


def main():
    # `timeout` (scripts/ci/perf-gate.sh) sends SIGTERM: unwind, so the
    # servers are stopped by the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", required=True, help="build directory (Release)")
    parser.add_argument("--budget", default=DEFAULT_BUDGET)
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated, of: {', '.join(CASES)}")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (median)")
    parser.add_argument("--requests", type=int, default=2000, help="counted requests per run")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up requests per run")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per run")
    parser.add_argument("--results", help="where profiles go (default BUILD/perf-gate)")
    parser.add_argument("--valgrind-arg", action="append", default=[],
                        help="extra valgrind option (experiments; the budget "
                        "assumes none)")
    parser.add_argument("--update", action="store_true",
                        help="write the measured numbers into the budget file")
    args = parser.parse_args()
    args.build = os.path.abspath(args.build)
    args.budget = os.path.abspath(args.budget)
    args.results = os.path.abspath(args.results or os.path.join(args.build, "perf-gate"))
    names = [n for n in args.cases.split(",") if n]
    unknown = [n for n in names if n not in CASES]
    if unknown or not names or args.repeat < 1 or args.requests < 1:
        parser.error(f"--cases takes {', '.join(CASES)}; --repeat and --requests >= 1 "
                     f"(unknown: {', '.join(unknown)})")
    try:
        check_setup(args)
        tc = toolchain(args.build)
        budget = load_budget(args.budget)
        want = budget.get("toolchain", {}).get("build_type")
        if not args.update and want and tc["build_type"] != want:
            raise GateError(f"the budget was measured on a {want} build; {args.build} is "
                            f"'{tc['build_type']}' (configure with -DCMAKE_BUILD_TYPE={want})")
        os.makedirs(args.results, exist_ok=True)
        log(f"{args.repeat} run(s) per case of {args.requests} requests after "
            f"{args.warmup} warm-up requests; profiles in {args.results}")
        t0 = time.time()
        measured = {}
        for name in names:
            measured[name] = measure_case(args, name)
        log(f"measured in {time.time() - t0:.0f} s")
        with open(os.path.join(args.results, "perf_gate.json"), "w") as f:
            json.dump({"measured": {n: {k: v for k, v in m.items() if k != "functions"}
                                    for n, m in measured.items()},
                       "toolchain": tc, "commit": git_commit()}, f, indent=1)
        if args.update:
            verdict(args, budget, measured, tc)
            write_budget(args, budget, measured, tc)
            return 0
        return 0 if verdict(args, budget, measured, tc) else 1
    except GateError as e:
        log(f"error: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())

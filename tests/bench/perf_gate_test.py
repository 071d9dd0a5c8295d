#!/usr/bin/env python3
"""Tests of bench/perf_gate.py's logic that need no valgrind: reading a
callgrind file, the verdict against a budget, writing the budget. (The
measurement itself runs in CI: scripts/ci/perf-gate.sh.)"""
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import types
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import perf_gate  # noqa: E402

# A callgrind file in the format valgrind 3.19 writes with --dump-line=no:
# names compressed as "(id) name" the first time, calls= followed by the
# call's inclusive cost (which is not self cost).
CALLGRIND = """\
# callgrind format
version: 1
creator: callgrind-3.19.0
positions: line
events: Ir
summary: 1000

ob=(1) /usr/lib/x86_64-linux-gnu/libc.so.6
fl=(1) ./misc/clone.S
fn=(1) clone
cob=(2) /build/bin/torii-server
cfi=(2) ???
cfn=(2) torii::Scheduler::WorkerLoop(unsigned long)
calls=0 0
0 900

ob=(2)
fl=(2)
fn=(2)
0 300
cob=(1)
cfi=(1)
cfn=(3) malloc
calls=10 0
0 500
0 100

ob=(1)
fl=(1)
fn=(3)
0 500
fn=(4) (anonymous namespace)::Helper(int)
0 100

totals: 1000
"""


def args_for(tmp, **extra):
    a = types.SimpleNamespace(build=os.path.join(tmp, "build"), requests=1000, update=False,
                              budget=os.path.join(tmp, "budget.json"), warmup=200, repeat=3)
    for k, v in extra.items():
        setattr(a, k, v)
    return a


def measured_case(value, functions=None):
    return {"description": "test case", "instructions_per_request": value,
            "runs": [value - 10, value, value + 10], "spread_percent": 0.2,
            "parts": {"torii-server": value}, "profile": {"torii-server": ["/nonexistent"]},
            "functions": {"torii-server": functions or {"f [x]": value}}}


def budget_with(value, top=None):
    return {"tolerance": 0.10, "cases": {"identity_grpc": {
        "instructions_per_request": value, "parts": {"torii-server": value},
        "date": "2026-01-01T00:00:00+00:00", "commit": "abc123",
        "top_self": {"torii-server": top or {"f [x]": value}}}}}


class CallgrindFileTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.path = os.path.join(self.tmp, "callgrind.out.1.1")
        with open(self.path, "w") as f:
            f.write(CALLGRIND)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_total(self):
        self.assertEqual(perf_gate.callgrind_total(self.path), 1000)

    def test_self_costs_skip_call_costs_and_add_up_to_the_total(self):
        costs = perf_gate.self_costs(self.path)
        libc, server = "/usr/lib/x86_64-linux-gnu/libc.so.6", "/build/bin/torii-server"
        self.assertEqual(costs[("torii::Scheduler::WorkerLoop(unsigned long)", server)], 400)
        self.assertEqual(costs[("malloc", libc)], 500)
        self.assertNotIn(("clone", libc), costs)  # only a call: no self cost
        self.assertEqual(sum(costs.values()), 1000)

    def test_function_costs_use_short_names_per_request(self):
        costs = perf_gate.function_costs([self.path], 100)
        self.assertEqual(costs["torii::Scheduler::WorkerLoop [torii-server]"], 4.0)
        self.assertEqual(costs["{anon}::Helper [libc.so.6]"], 1.0)
        self.assertEqual(perf_gate.top(costs, 1), [("malloc [libc.so.6]", 5.0)])

    def test_no_totals_is_an_error(self):
        with open(self.path, "w") as f:
            f.write("events: Ir\n")
        with self.assertRaises(perf_gate.GateError):
            perf_gate.callgrind_total(self.path)


class VerdictTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def run_verdict(self, budget, value, functions=None, **extra):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            ok = perf_gate.verdict(args_for(self.tmp, **extra), budget,
                                   {"identity_grpc": measured_case(value, functions)}, {})
        return ok, out.getvalue()

    def test_within_tolerance_passes(self):
        ok, out = self.run_verdict(budget_with(100000), 109999)
        self.assertTrue(ok)
        self.assertIn("ok", out)
        self.assertNotIn("FAIL", out)

    def test_over_tolerance_fails_with_both_numbers_the_ratio_and_the_update_command(self):
        ok, out = self.run_verdict(
            budget_with(100000, {"f [x]": 90000, "g [x]": 10000}), 111000,
            {"f [x]": 90000, "g [x]": 10000, "busy_loop [torii-server]": 11000})
        self.assertFalse(ok)
        self.assertIn("FAIL identity_grpc: 111,000 instructions per request, budget 100,000 "
                      "(ratio 1.110", out)
        self.assertIn("limit 110,000", out)
        self.assertIn("at commit abc123", out)
        self.assertIn(f"bash scripts/ci/perf-gate.sh {self.tmp}/build --update --cases "
                      "identity_grpc", out)
        # What grew, against the budget's profile: the new function, by at
        # least its cost minus the budget list's smallest entry.
        self.assertIn("+1,000+ busy_loop [torii-server]  (< 10,000 -> 11,000)", out)

    def test_a_case_without_budget_fails_and_says_how_to_add_it(self):
        ok, out = self.run_verdict({"cases": {}}, 100000)
        self.assertFalse(ok)
        self.assertIn("NO BUDGET", out)
        self.assertIn("--update --cases identity_grpc", out)

    def test_far_under_budget_suggests_locking_the_gain_in(self):
        ok, out = self.run_verdict(budget_with(100000), 80000)
        self.assertTrue(ok)
        self.assertIn("20.0 % under its budget", out)

    def test_update_mode_prints_no_failure(self):
        ok, out = self.run_verdict(budget_with(100000), 150000, update=True)
        self.assertTrue(ok)
        self.assertNotIn("FAIL identity_grpc:", out)


class WriteBudgetTest(unittest.TestCase):
    def test_budget_round_trip(self):
        tmp = tempfile.mkdtemp()
        try:
            a = args_for(tmp)
            budget = budget_with(1)
            budget["cases"]["identity_isolated"] = {"instructions_per_request": 7}
            with contextlib.redirect_stdout(io.StringIO()):
                perf_gate.write_budget(a, budget, {"identity_grpc": measured_case(123456)},
                                       {"build_type": "Release"})
            with open(a.budget) as f:
                text = f.read()
            doc = json.loads(text)
            case = doc["cases"]["identity_grpc"]
            self.assertEqual(case["instructions_per_request"], 123456)
            self.assertEqual(case["runs"], [123446, 123456, 123466])
            self.assertIn("[123446, 123456, 123466]", text)  # one line: diffs read well
            self.assertTrue(case["date"])
            self.assertTrue(case["commit"])
            self.assertTrue(case["command"])
            self.assertEqual(case["top_self"], {"torii-server": {"f [x]": 123456}})
            self.assertEqual(doc["toolchain"], {"build_type": "Release"})
            # Cases not measured keep their budget.
            self.assertEqual(doc["cases"]["identity_isolated"]["instructions_per_request"], 7)
            self.assertIn("--update", doc["update"])
        finally:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""Tests of bench/compare.py: the identity table reads torii-perf's JSON
(p50, p90, p99, p99.9), pairs echo and Torii per round, and prints the
docs/performance.md table; the http table pairs HTTP with gRPC per round and
checks the 0.7 x target."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

COMPARE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench",
                       "compare.py")


def perf_json(throughput, p50, p90, p99, p999=None):
    latency = {"avg": p50, "stddev": 1, "min": 1, "p50": p50, "p90": p90, "p95": p90,
               "p99": p99, "max": 5000}
    if p999 is not None:
        latency["p99.9"] = p999
    return {"tool": "torii-perf", "run": {}, "results": [{
        "mode": "concurrency", "concurrency": 1, "request_rate": 0, "throughput": throughput,
        "latency_us": latency, "requests": 1000, "error_count": 0, "errors": {},
        "first_error": "", "skipped": 0, "peak_inflight": 1, "stable": True,
        "duration_s": 1, "windows": [{"throughput": throughput, "latency_us": p50}],
        "client_cpu": {"cores": 0.2, "us_per_request": 20},
        "server_cpu": {"cores": 0.5, "us_per_request": 40, "system_us_per_request": 10}}]}


class RunDirTest(unittest.TestCase):
    """A run directory of torii-perf files, removed afterwards."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.run_dir = os.path.join(self.tmp, "run")
        os.makedirs(self.run_dir)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def write(self, name, doc):
        with open(os.path.join(self.run_dir, name), "w") as f:
            json.dump(doc, f)


class IdentityTableTest(RunDirTest):
    def compare(self):
        out_json = os.path.join(self.tmp, "out.json")
        p = subprocess.run([sys.executable, "-B", COMPARE, "identity", self.run_dir, out_json],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out_json) as f:
            return p.stdout, json.load(f)

    def test_percentiles_are_medians_over_rounds_and_reach_the_table(self):
        # Three rounds of echo and Torii at 1 KiB, c=1.
        for r, (e50, t50, t999) in enumerate([(70, 90, 400), (72, 95, 500), (71, 99, 900)], 1):
            self.write(f"echo_256_c1_r{r}.json", perf_json(10000, e50, e50 + 10, e50 + 50, 300))
            self.write(f"torii_256_c1_r{r}.json", perf_json(8000, t50, t50 + 20, t50 + 100, t999))
        stdout, doc = self.compare()
        point = doc["points"][0]
        self.assertEqual(point["torii"]["p50_us"], 95)
        self.assertEqual(point["torii"]["p90_us"], 115)
        self.assertEqual(point["torii"]["p99_us"], 195)
        self.assertEqual(point["torii"]["p99_9_us"], 500)
        self.assertEqual(point["echo"]["p99_9_us"], 300)
        self.assertEqual(point["rounds"][2]["torii"]["p99_9_us"], 900)
        self.assertAlmostEqual(point["p50_diff_us"], 23)  # paired: 20, 23, 28
        self.assertIn("| echo µs p50 / p90 / p99 / p99.9 | Torii µs p50 / p90 / p99 / p99.9 |",
                      stdout)
        self.assertIn("| 1 KiB | 1 | 10 000 | 8 000 | 0.80 | 71 / 81 / 121 / 300 | "
                      "95 / 115 / 195 / 500 | +23.0 | 40 / 40 | 10 / 10 |", stdout)

    def test_docs_table_uses_spaces_for_thousands_and_a_true_minus(self):
        self.write("echo_16384_c64_r1.json", perf_json(3000, 17533, 39733, 62832, 109194))
        self.write("torii_16384_c64_r1.json", perf_json(3400, 15755, 27563, 55504, 67142))
        stdout, _ = self.compare()
        self.assertIn("| 64 KiB | 64 | 3 000 | 3 400 | 1.13 | 17 533 / 39 733 / 62 832 / 109 194 | "
                      "15 755 / 27 563 / 55 504 / 67 142 | −1 778.0 | 40 / 40 | 10 / 10 |", stdout)

    def test_files_without_p99_9_still_compare(self):
        self.write("echo_256_c1_r1.json", perf_json(10000, 70, 80, 120))
        self.write("torii_256_c1_r1.json", perf_json(8000, 90, 110, 190))
        stdout, doc = self.compare()
        self.assertIsNone(doc["points"][0]["torii"]["p99_9_us"])
        self.assertIn("90 / 110 / 190 / - |", stdout)


class HttpTableTest(RunDirTest):
    def compare_http(self):
        out_json = os.path.join(self.tmp, "out.json")
        p = subprocess.run([sys.executable, "-B", COMPARE, "http", self.run_dir, out_json],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out_json) as f:
            return p.stdout, json.load(f)

    def test_http_against_grpc_paired_per_round_with_the_target(self):
        # gRPC, HTTP binary and HTTP JSON at 1 KiB, c=16, three rounds.
        for r, (g, b, j) in enumerate([(10000, 8000, 5000), (8000, 6000, 4000),
                                       (12000, 6000, 6000)], 1):
            self.write(f"grpc_256_c16_r{r}.json", perf_json(g, 900, 1500, 3000, 9000))
            self.write(f"httpbin_256_c16_r{r}.json", perf_json(b, 800, 1400, 2900, 8000))
            self.write(f"httpjson_256_c16_r{r}.json", perf_json(j, 1500, 2500, 4000, 9900))
        stdout, doc = self.compare_http()
        point = doc["points"][0]
        self.assertEqual(point["grpc"]["throughput"], 10000)
        self.assertEqual(point["httpbin"]["throughput"], 6000)
        # Paired ratios 0.8, 0.75, 0.5: median 0.75 (not 6000 / 10000).
        self.assertAlmostEqual(point["httpbin_to_grpc"], 0.75)
        self.assertAlmostEqual(point["httpjson_to_grpc"], 0.5)
        target = doc["targets"][0]
        self.assertTrue(target["met"])
        self.assertEqual(target["value"], 0.75)
        self.assertIn("| 1 KiB | 16 | HTTP binary | 6 000 | 0.75 | 800 / 1 400 / 2 900 / 8 000 "
                      "| 40 (10) | 20 |", stdout)

    def test_http_target_missed_says_by_how_much(self):
        self.write("grpc_256_c16_r1.json", perf_json(10000, 900, 1500, 3000))
        self.write("httpbin_256_c16_r1.json", perf_json(6000, 800, 1400, 2900))
        self.write("httpjson_256_c16_r1.json", perf_json(3000, 800, 1400, 2900))
        stdout, doc = self.compare_http()
        self.assertFalse(doc["targets"][0]["met"])
        self.assertEqual(doc["targets"][0]["missed_by"], 0.1)
        self.assertIn("MISSED by 0.1", stdout)


if __name__ == "__main__":
    unittest.main()

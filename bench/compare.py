#!/usr/bin/env python3
"""Turns the torii-perf JSON files of one bench/run.sh run into a table and a
results file (bench/results/<name>.json): Torii against the echo ceiling
measured in the same run, and the targets of issue 4 (met or missed, by how
much). Never fails on timings: exit status 0 unless the inputs are unreadable.

  compare.py identity  RUN_DIR OUT.json [--config FILE]
  compare.py batching  RUN_DIR OUT.json [--config FILE] [--note TEXT]
  compare.py instances RUN_DIR OUT.json [--config FILE] [--note TEXT]
  compare.py callgrind RUN_DIR OUT.json --requests N
  compare.py http      RUN_DIR OUT.json [--config FILE]
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import subprocess
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def first(run):
    results = run.get("results") or []
    return results[0] if results else None


def host():
    info = {"nproc": os.cpu_count(), "machine": platform.machine()}
    try:
        with open("/proc/loadavg") as f:
            info["loadavg_at_end"] = f.read().split()[:3]
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def git_revision(root):
    try:
        return subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def header(name, args):
    doc = {
        "benchmark": name,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": host(),
        "revision": git_revision(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    }
    if getattr(args, "config", None) and os.path.exists(args.config):
        with open(args.config) as f:
            doc["model_config"] = f.read()
    if getattr(args, "note", None):
        doc["note"] = args.note
    return doc


def fmt(v, spec="{:.1f}"):
    return "-" if v is None else spec.format(v)


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def identity(args):
    doc = header(args.kind, args)
    # <label>_<elements>_c<concurrency>_r<round>.json; "echo" is the ceiling,
    # "torii" this build, any other label a server or model measured in the
    # same rounds (e.g. "before": the build of TORII_BEFORE).
    files = {}
    for path in sorted(glob.glob(os.path.join(args.run_dir, "*_c*.json"))):
        m = re.match(r"(.+)_(\d+)_c(\d+)(?:_r(\d+))?\.json$", os.path.basename(path))
        if not m:
            continue
        label, n, c, rnd = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4) or 1)
        files.setdefault((n, c), {}).setdefault(rnd, {})[label] = path
    runs = {}
    labels = []
    for point in files.values():
        for by_label in point.values():
            for label in by_label:
                if label != "echo" and label not in labels:
                    labels.append(label)
    order = ["before", "torii"]
    labels.sort(key=lambda l: (order.index(l) if l in order else len(order), l))
    points = []
    for (n, c), by_round in sorted(files.items()):
        rounds = []
        for rnd in sorted(by_round):
            paths = by_round[rnd]
            r = {}
            for label, path in paths.items():
                runs[os.path.basename(path)] = load(path)
                r[label] = summary(first(runs[os.path.basename(path)]))
            e = r.get("echo")
            for label in labels:
                t = r.get(label)
                if t and e and e["throughput"] > 0:
                    r.setdefault("ratios", {})[label] = t["throughput"] / e["throughput"]
                    r.setdefault("p50_diffs_us", {})[label] = t["p50_us"] - e["p50_us"]
            rounds.append(r)

        def side(label):
            values = [r.get(label) for r in rounds]
            out = {k: median([(v or {}).get(k) for v in values]) for k in SUMMARY_KEYS}
            out["errors"] = sum((v or {}).get("errors", 0) for v in values)
            out["stable"] = all((v or {}).get("stable") for v in values)
            return out

        p = {"payload_bytes": n * 4, "concurrency": c, "rounds": rounds, "echo": side("echo")}
        # Paired per round (echo and Torii measured back to back), then the
        # median over rounds: robust to a noisy neighbour hitting one run.
        for label in labels:
            s = side(label)
            s["throughput_ratio"] = median([r.get("ratios", {}).get(label) for r in rounds])
            s["p50_diff_us"] = median([r.get("p50_diffs_us", {}).get(label) for r in rounds])
            s["per_round_ratio"] = [r.get("ratios", {}).get(label) for r in rounds]
            if label == "torii":
                p["torii"] = s
                p["throughput_ratio"] = s["throughput_ratio"]
                p["p50_diff_us"] = s["p50_diff_us"]
            else:
                p.setdefault("variants", {})[label] = s
        if "before" in labels and "torii" in labels:
            # This build against the "before" build, paired per round.
            after_before = []
            for r in rounds:
                a, b = r.get("torii"), r.get("before")
                if a and b and b["throughput"] > 0:
                    after_before.append(a["throughput"] / b["throughput"])
            p["torii_over_before"] = median(after_before)
        points.append(p)
    doc["labels"] = labels
    doc["points"] = points

    targets = []
    for p in points:
        if "torii" not in p:
            continue
        if p["concurrency"] in (1, 4, 16, 64) and p["payload_bytes"] == 1024 and \
                p["throughput_ratio"] is not None:
            r = p["throughput_ratio"]
            targets.append({
                "target": f"identity throughput >= 0.85 x echo at c={p['concurrency']} (1 KiB)",
                "value": round(r, 3), "met": r >= 0.85,
                "missed_by": None if r >= 0.85 else round(0.85 - r, 3)})
        if p["concurrency"] == 16 and p["payload_bytes"] == 65536 and \
                p["throughput_ratio"] is not None:
            r = p["throughput_ratio"]
            targets.append({
                "target": "identity throughput >= 1.0 x echo at c=16 (64 KiB)",
                "value": round(r, 3), "met": r >= 1.0,
                "missed_by": None if r >= 1.0 else round(1.0 - r, 3)})
        if p["concurrency"] == 1 and p["payload_bytes"] == 1024 and p["p50_diff_us"] is not None:
            d = p["p50_diff_us"]
            targets.append({
                "target": "identity p50 within 20 us of echo at c=1 (1 KiB)",
                "value": round(d, 1), "met": d <= 20,
                "missed_by": None if d <= 20 else round(d - 20, 1)})
    def sides(p):
        for label in labels:
            t = p.get("torii") if label == "torii" else p.get("variants", {}).get(label)
            if t is not None:
                yield label, t

    errors = sum(p["echo"]["errors"] + sum(t["errors"] for _, t in sides(p)) for p in points)
    targets.append({"target": "zero errors", "value": errors, "met": errors == 0})
    doc["targets"] = targets
    doc["runs"] = runs

    print()
    print(f"medians over {max((len(p['rounds']) for p in points), default=0)} round(s); "
          "ratio and diff are paired per round (against the echo of the same round)")
    print(f"{'payload':>8} {'c':>3} {'server':>14} | {'req/s':>9} {'ratio':>6} | "
          f"{'p50/p90/p99/p99.9 us':>27} | {'p50 diff':>8} | {'srv us/req':>10} | "
          f"{'sys':>4} | {'cs/req':>6} | {'cli cores':>9} | err | stable")
    for p in points:
        rows = [("echo", p["echo"])] + list(sides(p))
        for label, t in rows:
            print(f"{p['payload_bytes']:>7}B {p['concurrency']:>3} {label:>14} | "
                  f"{fmt(t.get('throughput')):>9} "
                  f"{fmt(t.get('throughput_ratio'), '{:.3f}'):>6} | "
                  f"{percentiles(t):>27} | "
                  f"{fmt(t.get('p50_diff_us'), '{:+.1f}'):>8} | "
                  f"{fmt(t.get('server_cpu_us_per_request'), '{:.0f}'):>10} | "
                  f"{fmt(t.get('server_sys_us_per_request'), '{:.0f}'):>4} | "
                  f"{fmt(t.get('server_cs_per_request'), '{:.2f}'):>6} | "
                  f"{fmt(t.get('client_cores'), '{:.2f}'):>9} | "
                  f"{t.get('errors', '-')} | {'y' if t.get('stable') else 'n'}")
        if p.get("torii_over_before") is not None:
            print(f"{'':>13} torii / before: {p['torii_over_before']:.3f} (throughput, paired)")
    for label in labels:
        print()
        print(f"'{label}' as a docs/performance.md table (medians over rounds):")
        print("| payload | c | echo req/s | Torii req/s | Torii / echo | echo µs p50 / p90 / p99 / "
              "p99.9 | Torii µs p50 / p90 / p99 / p99.9 | Δ p50 µs | srv µs/req echo / Torii "
              "| sys µs echo / Torii | ctx sw / req echo / Torii |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for p in points:
            e = p["echo"]
            t = p.get("torii") if label == "torii" else p.get("variants", {}).get(label)
            if t is None:
                continue
            size = p["payload_bytes"]
            size = f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"
            print(f"| {size} | {p['concurrency']} | {doc_num(e.get('throughput'))} | "
                  f"{doc_num(t.get('throughput'))} | {fmt(t.get('throughput_ratio'), '{:.2f}')} | "
                  f"{percentiles(e, ' / ', doc_num)} | {percentiles(t, ' / ', doc_num)} | "
                  f"{doc_num(t.get('p50_diff_us'), '{:+,.1f}')} | "
                  f"{doc_num(e.get('server_cpu_us_per_request'))} / "
                  f"{doc_num(t.get('server_cpu_us_per_request'))} | "
                  f"{doc_num(e.get('server_sys_us_per_request'))} / "
                  f"{doc_num(t.get('server_sys_us_per_request'))} | "
                  f"{fmt(e.get('server_cs_per_request'), '{:.1f}')} / "
                  f"{fmt(t.get('server_cs_per_request'), '{:.1f}')} |")
    print_targets(targets)
    write(args.out, doc)


SUMMARY_KEYS = ("throughput", "p50_us", "p90_us", "p95_us", "p99_us", "p99_9_us", "avg_us",
                "client_cores", "client_cpu_us_per_request", "server_cores",
                "server_cpu_us_per_request", "server_sys_us_per_request",
                "server_cs_per_request")


HTTP_VARIANTS = (("grpc", "gRPC"), ("httpbin", "HTTP binary"), ("httpjson", "HTTP JSON"))


def http(args):
    """grpc_/httpbin_/httpjson_<elements>_c<c>_r<round>.json: the same server,
    measured back to back per round. Ratios to gRPC are paired per round, then
    the median over rounds is taken."""
    doc = header(args.kind, args)
    groups, runs = {}, {}
    for path in sorted(glob.glob(os.path.join(args.run_dir, "*_c*_r*.json"))):
        m = re.match(r"(grpc|httpbin|httpjson)_(\d+)_c(\d+)_r(\d+)\.json", os.path.basename(path))
        if not m:
            continue
        variant, n, c, r = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
        run = load(path)
        runs[os.path.basename(path)] = run
        groups.setdefault((n, c), {}).setdefault(r, {})[variant] = summary(first(run))
    points = []
    for (n, c), by_round in sorted(groups.items()):
        rounds = [by_round[r] for r in sorted(by_round)]
        p = {"payload_bytes": n * 4, "concurrency": c, "rounds": rounds}
        for variant, _ in HTTP_VARIANTS:
            p[variant] = {k: median([(r.get(variant) or {}).get(k) for r in rounds])
                          for k in SUMMARY_KEYS}
            p[variant]["errors"] = sum((r.get(variant) or {}).get("errors", 0) for r in rounds)
            p[variant]["stable"] = all((r.get(variant) or {}).get("stable") for r in rounds)
        for variant in ("httpbin", "httpjson"):
            ratios = []
            for r in rounds:
                g, h = r.get("grpc"), r.get(variant)
                if g and h and g["throughput"] > 0:
                    ratios.append(h["throughput"] / g["throughput"])
            p[variant + "_to_grpc"] = median(ratios)
        points.append(p)
    doc["points"] = points

    targets = []
    for p in points:
        if p["payload_bytes"] == 1024 and p["concurrency"] == 16 and p["httpbin_to_grpc"] is not None:
            r = p["httpbin_to_grpc"]
            targets.append({
                "target": "HTTP binary identity throughput >= 0.7 x gRPC at 1 KiB, c=16",
                "value": round(r, 3), "met": r >= 0.7,
                "missed_by": None if r >= 0.7 else round(0.7 - r, 3)})
    errors = sum(p[v]["errors"] for p in points for v, _ in HTTP_VARIANTS)
    targets.append({"target": "zero errors", "value": errors, "met": errors == 0})
    doc["targets"] = targets
    doc["runs"] = runs

    print()
    print(f"medians over {max((len(p['rounds']) for p in points), default=0)} round(s); "
          "ratios to gRPC are paired per round")
    print(f"{'payload':>8} {'c':>3} | {'variant':<11} | {'req/s':>9} {'/gRPC':>6} | "
          f"{'p50/p90/p99/p99.9 us':>27} | {'srv us/req':>10} | {'sys us':>6} | "
          f"{'cli us/req':>10} | err | stable")
    for p in points:
        for variant, label in HTTP_VARIANTS:
            s = p[variant]
            ratio = p.get(variant + "_to_grpc") if variant != "grpc" else 1.0
            print(f"{p['payload_bytes']:>7}B {p['concurrency']:>3} | {label:<11} | "
                  f"{fmt(s.get('throughput')):>9} {fmt(ratio, '{:.3f}'):>6} | "
                  f"{percentiles(s):>27} | "
                  f"{fmt(s.get('server_cpu_us_per_request'), '{:.0f}'):>10} | "
                  f"{fmt(s.get('server_sys_us_per_request'), '{:.0f}'):>6} | "
                  f"{fmt(s.get('client_cpu_us_per_request'), '{:.0f}'):>10} | "
                  f"{s.get('errors', '-'):>3} | {'y' if s.get('stable') else 'n'}")
    print()
    print("The same as a docs/performance.md table (medians over rounds):")
    print("| payload | c | protocol | req/s | / gRPC | µs p50 / p90 / p99 / p99.9 "
          "| server µs/req (sys) | client µs/req |")
    print("|---|---|---|---|---|---|---|---|")
    for p in points:
        size = p["payload_bytes"]
        size = f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"
        for variant, label in HTTP_VARIANTS:
            s = p[variant]
            ratio = p.get(variant + "_to_grpc") if variant != "grpc" else 1.0
            print(f"| {size} | {p['concurrency']} | {label} | {doc_num(s.get('throughput'))} | "
                  f"{fmt(ratio, '{:.2f}')} | {percentiles(s, ' / ', doc_num)} | "
                  f"{doc_num(s.get('server_cpu_us_per_request'))} "
                  f"({doc_num(s.get('server_sys_us_per_request'))}) | "
                  f"{doc_num(s.get('client_cpu_us_per_request'))} |")
    print_targets(targets)
    write(args.out, doc)


def doc_num(v, spec="{:,.0f}"):
    """The docs' style: thousands separated by a space, a true minus sign."""
    return "-" if v is None else spec.format(v).replace(",", " ").replace("-", "−")


def percentiles(side, sep="/", number=None):
    """'p50/p90/p99/p99.9' of one side of a point, in microseconds."""
    side = side or {}
    number = number or (lambda v: fmt(v, "{:.0f}"))
    return sep.join(number(side.get(k)) for k in ("p50_us", "p90_us", "p99_us", "p99_9_us"))


def summary(r):
    if not r:
        return None
    return {
        "throughput": r["throughput"],
        "p50_us": r["latency_us"]["p50"], "p90_us": r["latency_us"]["p90"],
        "p95_us": r["latency_us"]["p95"], "p99_us": r["latency_us"]["p99"],
        # Files from torii-perf before p99.9 was reported have none.
        "p99_9_us": r["latency_us"].get("p99.9"),
        "avg_us": r["latency_us"]["avg"],
        "requests": r["requests"], "errors": r["error_count"],
        "errors_by_code": r["errors"], "stable": r["stable"],
        "windows": len(r["windows"]),
        "client_cores": r["client_cpu"]["cores"],
        "client_cpu_us_per_request": r["client_cpu"]["us_per_request"],
        "server_cores": (r["server_cpu"] or {}).get("cores"),
        "server_cpu_us_per_request": (r["server_cpu"] or {}).get("us_per_request"),
        "server_sys_us_per_request": (r["server_cpu"] or {}).get("system_us_per_request"),
        # Files from torii-perf before context switches were counted have none.
        "server_cs_per_request": (r["server_cpu"] or {}).get("context_switches_per_request"),
    }


def mlp(args, name):
    doc = header(name, args)
    runs, by_round = {}, {}
    for path in sorted(glob.glob(os.path.join(args.run_dir, "*.json"))):
        base = os.path.basename(path)[:-5]
        m = re.match(r"(.+?)(?:_r(\d+))?$", base)
        label, rnd = m.group(1), int(m.group(2) or 1)
        runs[base] = load(path)
        by_round.setdefault(rnd, {})[label] = summary(first(runs[base]))
    labels = []
    for rnd in sorted(by_round):
        for label in by_round[rnd]:
            if label not in labels:
                labels.append(label)
    order = ["echo", "before_mlp", "mlp", "before_mlp_batching", "mlp_batching", "mlp_2inst",
             "mlp_batching_2inst"]
    labels.sort(key=lambda l: order.index(l) if l in order else len(order))

    def values(label, key):
        return [(by_round[r].get(label) or {}).get(key) for r in sorted(by_round)]

    def paired(a, b):
        """Median over rounds of throughput(a) / throughput(b), same round."""
        ratios = []
        for r in sorted(by_round):
            ta = (by_round[r].get(a) or {}).get("throughput")
            tb = (by_round[r].get(b) or {}).get("throughput")
            if ta and tb:
                ratios.append(ta / tb)
        return median(ratios), ratios

    rows = {}
    for label in labels:
        row = {k: median(values(label, k)) for k in SUMMARY_KEYS}
        row["errors"] = sum(v or 0 for v in values(label, "errors"))
        row["stable"] = all(values(label, "stable"))
        row["per_round_throughput"] = values(label, "throughput")
        rows[label] = row
    doc["rounds"] = len(by_round)
    doc["points"] = rows
    print()
    print(f"medians over {len(by_round)} round(s); 'x mlp' and '/ echo' are paired per round")
    print(f"{'model':>20} | {'infer/s':>9} {'x mlp':>7} {'/ echo':>7} | "
          f"{'p50/p90/p99/p99.9 us':>24} | {'srv cores':>9} {'srv us/req':>10} | err | stable | "
          f"per round")
    for label, r in rows.items():
        vs_base, _ = paired(label, "mlp")
        vs_echo, _ = paired(label, "echo")
        print(f"{label:>20} | {fmt(r['throughput']):>9} {fmt(vs_base, '{:.2f}'):>7} "
              f"{fmt(vs_echo, '{:.3f}'):>7} | {percentiles(r):>24} | "
              f"{fmt(r['server_cores'], '{:.2f}'):>9} "
              f"{fmt(r['server_cpu_us_per_request'], '{:.0f}'):>10} | {r['errors']} | "
              f"{'y' if r['stable'] else 'n'} | "
              + " ".join(fmt(v, "{:.0f}") for v in r["per_round_throughput"]))
    targets = []
    ratio, ratios = paired("mlp_batching", "mlp")
    before_ratio, before_ratios = paired("before_mlp_batching", "before_mlp")
    if before_ratio is not None:
        doc["batching_speedup_before"] = {"median": round(before_ratio, 3),
                                          "per_round": [round(x, 3) for x in before_ratios]}
        print(f"batching / none, before: {before_ratio:.2f}x "
              f"(rounds: {', '.join(f'{x:.2f}' for x in before_ratios)})")
    if ratio is not None:
        print(f"batching / none: {ratio:.2f}x (rounds: {', '.join(f'{x:.2f}' for x in ratios)})")
        doc["batching_speedup"] = {"median": round(ratio, 3),
                                   "per_round": [round(x, 3) for x in ratios]}
        targets.append({"target": "dynamic batching >= 4 x no batching on the MLP at c=32",
                        "value": round(ratio, 2), "met": ratio >= 4,
                        "missed_by": None if ratio >= 4 else round(4 - ratio, 2)})
    for one, two in (("mlp", "mlp_2inst"), ("mlp_batching", "mlp_batching_2inst")):
        ratio, ratios = paired(two, one)
        if ratio is not None:
            doc.setdefault("instance_speedup", {})[f"{two} / {one}"] = {
                "median": round(ratio, 3), "per_round": [round(x, 3) for x in ratios]}
            print(f"two instances / one ({one}): {ratio:.2f}x "
                  f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})")
    errors = sum(r["errors"] for r in rows.values())
    targets.append({"target": "zero errors", "value": errors, "met": errors == 0})
    doc["targets"] = targets
    doc["runs"] = runs
    print_targets(targets)
    write(args.out, doc)


def callgrind_total(path):
    """Total Ir of a callgrind output file (the 'summary:' or 'totals:' line)."""
    total = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
    return total


def top_functions(annotate_path, total, limit=25):
    """Top rows of a callgrind_annotate listing. Rows carrying the whole total
    (thread roots: clone, start_thread, gRPC's thread trampoline) are an
    artifact of zeroing the counters mid-run and are skipped."""
    rows = []
    if not os.path.exists(annotate_path):
        return rows
    with open(annotate_path, errors="replace") as f:
        for line in f:
            m = re.match(r"\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(.+?)\s*$", line)
            if not m or ":" not in m.group(2):
                continue
            ir = int(m.group(1).replace(",", ""))
            if total and ir >= total:
                continue
            rows.append({"ir": ir, "function": m.group(2)})
            if len(rows) >= limit:
                break
    return rows


def callgrind(args):
    doc = header("callgrind", args)
    doc["requests"] = args.requests
    results = os.path.dirname(args.out)
    per_request = {}
    labels = sorted(os.path.basename(p)[:-6]
                    for p in glob.glob(os.path.join(args.run_dir, "*.final")))
    for label in labels:
        path = os.path.join(args.run_dir, f"{label}.final")
        total = callgrind_total(path)
        per_request[label] = total / args.requests if total else None
        doc[label] = {
            "total_ir": total,
            "ir_per_request": per_request[label],
            "top_self": [dict(r, ir_per_request=r["ir"] / args.requests)
                         for r in top_functions(os.path.join(results, f"callgrind_{label}_self.txt"), total)],
            "top_inclusive": [dict(r, ir_per_request=r["ir"] / args.requests)
                              for r in top_functions(os.path.join(results, f"callgrind_{label}_inclusive.txt"), total, 40)],
        }
    print()
    for label, v in per_request.items():
        print(f"{label:>28}: {fmt(v, '{:,.0f}')} instructions per request (server, c=1, 1 KiB)")
    pairs = [("torii", "echo"), ("torii", "echo_deadlock_detection"),
             ("torii_no_deadlock_detection", "echo"),
             ("echo_deadlock_detection", "echo"), ("torii", "torii_no_deadlock_detection")]
    doc["differences"] = {}
    for a, b in pairs:
        if per_request.get(a) and per_request.get(b):
            d = per_request[a] - per_request[b]
            doc["differences"][f"{a} - {b}"] = {"ir_per_request": round(d),
                                               "ratio": round(per_request[a] / per_request[b], 3)}
            print(f"{a} - {b}: {d:+,.0f} instructions per request "
                  f"({per_request[a] / per_request[b]:.2f}x)")
    write(args.out, doc)


def print_targets(targets):
    print()
    for t in targets:
        status = "met" if t["met"] else f"MISSED by {t.get('missed_by')}"
        print(f"target: {t['target']}: {t['value']} -> {status}")


def write(path, doc):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    print(f"results: {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", help="identity*, smoke*, http*, batching, instances or callgrind; "
                        "also the benchmark name recorded in the file")
    parser.add_argument("run_dir")
    parser.add_argument("out")
    parser.add_argument("--config")
    parser.add_argument("--note")
    parser.add_argument("--requests", type=int, default=1)
    args = parser.parse_args()
    if args.kind == "callgrind":
        callgrind(args)
    elif args.kind in ("batching", "instances"):
        mlp(args, args.kind)
    elif args.kind.startswith(("identity", "smoke")):
        identity(args)
    elif args.kind.startswith("http"):
        http(args)
    else:
        parser.error(f"unknown kind {args.kind}")


if __name__ == "__main__":
    sys.exit(main())

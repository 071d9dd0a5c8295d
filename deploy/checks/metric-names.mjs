// Compares the metric names that deploy/prometheus rules and deploy/grafana
// dashboards read with what a running torii-server actually exports:
//
//   node metric-names.mjs --root REPO --scrape metrics.txt
//
// metrics.txt is a scrape of /metrics (Prometheus text format); families are
// read from its "# TYPE" lines, which prometheus-cpp prints even for a family
// without series (an empty model repository). Prints PASS/FAIL/SKIP lines like
// check.mjs and exits 1 on a failure.

import fs from "node:fs";
import { usedMetricNames } from "./observability.mjs";

// Metrics the dashboard is written for that torii-server does not export yet
// (process metrics, Prometheus' standard names). While a name is missing from
// the scrape and listed here, its check is SKIPPED, not failed; once the server
// exports it, it is checked like any other.
export const PENDING = new Set(["process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"]);

const SUFFIXES = { histogram: ["_bucket", "_sum", "_count"], summary: ["_sum", "_count"] };

// Series names a scrape can contain, with each one's family type.
export function scrapedNames(text) {
  const names = new Map();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, family, type] = m;
    names.set(family, type);
    for (const s of SUFFIXES[type] || []) names.set(family + s, type);
  }
  return names;
}

export function compare(root, text) {
  const have = scrapedNames(text);
  const used = usedMetricNames(root);
  const missing = [];
  const pending = [];
  for (const [name, where] of used) {
    if (have.has(name)) continue;
    (PENDING.has(name) ? pending : missing).push(`${name} (used by ${[...where].slice(0, 2).join("; ")}${where.size > 2 ? "; ..." : ""})`);
  }
  return { used, missing, pending };
}

if (process.argv[1] && process.argv[1].endsWith("metric-names.mjs")) {
  const arg = (k) => {
    const i = process.argv.indexOf(k);
    return i > 0 ? process.argv[i + 1] : null;
  };
  const root = arg("--root");
  const scrape = arg("--scrape");
  if (!root || !scrape) {
    console.error("usage: node metric-names.mjs --root REPO --scrape metrics.txt");
    process.exit(2);
  }
  const { used, missing, pending } = compare(root, fs.readFileSync(scrape, "utf8"));
  if (missing.length) console.log(`FAIL metric names: rules and dashboards read series torii-server does not export: ${missing.join(", ")}`);
  else console.log(`PASS metric names: the ${used.size - pending.length} series the rules and dashboards read are exported by torii-server`);
  if (pending.length) console.log(`SKIP metric names not exported yet (expected from the server's process metrics): ${pending.join(", ")}`);
  process.exit(missing.length ? 1 : 0);
}

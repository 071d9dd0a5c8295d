// Checks of Torii's observability files, run by check.mjs:
//   deploy/prometheus/*.rules.yml  - recording rules producing Triton's nv_* series
//   deploy/prometheus/*.test.yml   - their promtool unit tests
//   deploy/grafana/*.json          - the Grafana dashboard of Torii's own metrics
// The metric names they use are compared with a real scrape of torii-server by
// metric-names.mjs (scripts/ci/deploy-checks.sh, live section).

import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));

export const RULES_DIR = "deploy/prometheus";
export const DASHBOARD_DIR = "deploy/grafana";

// Triton's per-model inference series (docs/user_guide/metrics.md of Triton's
// server repository) that the rules must produce, with the unit each is in.
export const TRITON_SERIES = {
  nv_inference_request_success: "count",
  nv_inference_request_failure: "count",
  nv_inference_count: "count",
  nv_inference_exec_count: "count",
  nv_inference_request_duration_us: "us",
  nv_inference_queue_duration_us: "us",
  nv_inference_compute_input_duration_us: "us",
  nv_inference_compute_infer_duration_us: "us",
  nv_inference_compute_output_duration_us: "us",
  nv_inference_pending_request_count: "gauge",
};

// What the dashboard must show (the issue's list), as metric names that must
// appear in some panel's query.
export const DASHBOARD_MUST_USE = [
  "torii_inference_request_success_total",
  "torii_inference_request_failure_total",
  "torii_inference_request_duration_seconds_bucket",
  "torii_inference_queue_duration_seconds_total",
  "torii_inference_pending_requests",
  "torii_runner_instances_stuck",
  "torii_runner_restarts_total",
  "torii_model_ready",
  "process_resident_memory_bytes",
  "process_cpu_seconds_total",
  "process_open_fds",
];

// Metric names in a PromQL expression: the ones of Torii, Triton and the
// standard process collector (function names, labels and keywords never start
// with these prefixes).
export function metricNames(expr) {
  return [...new Set([...expr.matchAll(/\b((?:torii|nv|process)_[a-zA-Z0-9_]+)\b/g)].map((m) => m[1]))];
}

export function listFiles(root, dir, re) {
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) return [];
  return fs.readdirSync(abs).filter((f) => re.test(f)).sort().map((f) => path.join(dir, f));
}

export function loadRules(root, rel) {
  const doc = parseYaml(fs.readFileSync(path.join(root, rel), "utf8"));
  return (doc && doc.groups ? doc.groups : []).flatMap((g) => (g.rules || []).map((r) => ({ group: g.name, ...r })));
}

export function loadDashboard(root, rel) {
  return JSON.parse(fs.readFileSync(path.join(root, rel), "utf8"));
}

// Panels, rows' nested panels included.
export function allPanels(dash) {
  const out = [];
  for (const p of dash.panels || []) {
    out.push(p);
    if (p.type === "row") out.push(...(p.panels || []));
  }
  return out;
}

// Every Prometheus query of the dashboard: {panel, target, expr}.
export function dashboardQueries(dash) {
  const out = [];
  for (const p of allPanels(dash)) for (const t of p.targets || []) out.push({ panel: p, target: t, expr: t.expr });
  for (const v of (dash.templating && dash.templating.list) || []) {
    if (v.type === "query" && typeof v.query === "string") out.push({ variable: v, expr: v.query });
  }
  return out;
}

// Every metric name the rules and dashboards read, with where it is used.
export function usedMetricNames(root) {
  const used = new Map();
  const add = (name, where) => {
    if (!used.has(name)) used.set(name, new Set());
    used.get(name).add(where);
  };
  for (const rel of listFiles(root, RULES_DIR, /\.rules\.ya?ml$/)) {
    for (const r of loadRules(root, rel)) for (const n of metricNames(String(r.expr))) add(n, `${rel} (${r.record})`);
  }
  for (const rel of listFiles(root, DASHBOARD_DIR, /\.json$/)) {
    for (const q of dashboardQueries(loadDashboard(root, rel))) {
      const where = q.panel ? `${rel} panel "${q.panel.title}"` : `${rel} variable $${q.variable.name}`;
      for (const n of metricNames(String(q.expr))) add(n, where);
    }
  }
  // Names the rules produce are not read from the server.
  for (const n of Object.keys(TRITON_SERIES)) used.delete(n);
  return used;
}

// Grafana's variables in an expression replaced by values PromQL accepts, so
// promtool can parse what Grafana would send.
const BUILTIN_VARS = { __rate_interval: "5m", __interval: "1m", __range: "1h", __interval_ms: "60000", __range_s: "3600" };
export function expandGrafanaVars(expr, defined) {
  const unknown = [];
  const out = expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (m, a, b) => {
    const name = a || b;
    if (name in BUILTIN_VARS) return BUILTIN_VARS[name];
    if (!defined.has(name)) unknown.push(name);
    return ".*";
  });
  return { expr: out, unknown };
}

function promtool(args, input) {
  const r = spawnSync("promtool", args, { encoding: "utf8", input, timeout: 60000 });
  if (r.error) return { ok: false, out: `promtool: ${r.error.message}` };
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}`.trim() };
}

// ------------------------------------------------------------------ TypeScript
// Type-checks `source` (a virtual file in deploy/checks, so that imports resolve
// to deploy/checks/node_modules) and returns the diagnostics as text.
// TORII_CHECK_CACHE_DIR (set by selftest.mjs, which runs this check on ~80
// copies of the same dashboard) keeps the result per source text.
async function typecheck(source) {
  const cacheDir = process.env.TORII_CHECK_CACHE_DIR;
  const cacheFile = cacheDir && path.join(cacheDir, `ts-${createHash("sha256").update(source).digest("hex")}.json`);
  if (cacheFile && fs.existsSync(cacheFile)) return JSON.parse(fs.readFileSync(cacheFile, "utf8"));
  // Loaded only when needed: parsing the compiler alone takes about 0.4 s.
  const ts = (await import("typescript")).default;
  const result = typecheckUncached(ts, source);
  if (cacheFile) fs.writeFileSync(cacheFile, JSON.stringify(result));
  return result;
}
function typecheckUncached(ts, source) {
  const fileName = path.join(here, "__dashboard_check__.ts");
  const options = {
    noEmit: true,
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    types: [],
    // No DOM: the dashboard types need none, and lib.dom is most of the time.
    lib: ["lib.es2020.d.ts"],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (f, lang, ...rest) => (path.resolve(f) === fileName ? ts.createSourceFile(f, source, lang) : getSourceFile.call(host, f, lang, ...rest));
  host.fileExists = (f) => path.resolve(f) === fileName || fileExists.call(host, f);
  host.readFile = (f) => (path.resolve(f) === fileName ? source : readFile.call(host, f));
  const program = ts.createProgram([fileName], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const pos = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : null;
    return { line: pos ? pos.line + 1 : 0, file: d.file ? d.file.fileName : "", text: ts.flattenDiagnosticMessageText(d.messageText, " ") };
  });
}

// The panel types the dashboards may use, with the TypeScript types of their
// options and field config in @grafana/schema.
const PANEL_TYPES = {
  timeseries: { module: "timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen", options: true, custom: true },
  stat: { module: "stat/panelcfg/x/StatPanelCfg_types.gen", options: true, custom: false },
};
// Keys of a Prometheus query target that Grafana's Prometheus data source reads.
const TARGET_KEYS = new Set(["datasource", "refId", "expr", "legendFormat", "range", "instant", "interval", "format", "hide", "exemplar", "intervalFactor", "editorMode"]);

async function dashboardTypeProblems(dash) {
  // Grafana's enums are TypeScript string enums, which a JSON string literal
  // does not satisfy; Loose<T> turns each into the union of its values and
  // keeps every property list, so misspelt or unknown fields are still errors.
  const lines = [
    'import type { Dashboard } from "@grafana/schema";',
    ...Object.entries(PANEL_TYPES).map(([t, v]) => `import type * as ${t}Cfg from "@grafana/schema/dist/esm/raw/composable/${v.module}";`),
    "type Loose<T> = T extends string ? `${T}` : T extends (infer E)[] ? Loose<E>[] : T extends object ? { [K in keyof T]: Loose<T[K]> } : T;",
  ];
  const owners = [];
  const emit = (owner, text) => {
    const start = lines.length + 1;
    lines.push(...text.split("\n"));
    owners.push({ owner, start, end: lines.length });
  };
  emit("dashboard", `export const dashboard: Loose<Dashboard> = ${JSON.stringify(dash, null, 1)};`);
  const problems = [];
  for (const p of allPanels(dash)) {
    if (p.type === "row") continue;
    const spec = PANEL_TYPES[p.type];
    const who = `panel ${p.id} "${p.title}"`;
    if (!spec) {
      problems.push(`${who}: panel type '${p.type}' is not one the check knows (${Object.keys(PANEL_TYPES).join(", ")})`);
      continue;
    }
    emit(`${who} options`, `export const options_${p.id}: Loose<${p.type}Cfg.Options> = ${JSON.stringify(p.options || {}, null, 1)};`);
    const custom = p.fieldConfig && p.fieldConfig.defaults && p.fieldConfig.defaults.custom;
    if (spec.custom && custom !== undefined) emit(`${who} fieldConfig.defaults.custom`, `export const custom_${p.id}: Loose<${p.type}Cfg.FieldConfig> = ${JSON.stringify(custom, null, 1)};`);
  }
  for (const d of await typecheck(lines.join("\n"))) {
    const o = owners.find((x) => d.line >= x.start && d.line <= x.end);
    problems.push(`${o ? o.owner : path.basename(d.file)}${o ? ` (line ${d.line - o.start + 1})` : ""}: ${d.text}`);
  }
  return problems;
}

// ------------------------------------------------------------------ checks
export async function checkObservability({ root, check, fail, skip }) {
  const havePromtool = !spawnSync("promtool", ["--version"], { encoding: "utf8" }).error;

  // ---- recording rules
  const ruleFiles = listFiles(root, RULES_DIR, /\.rules\.ya?ml$/);
  const testFiles = listFiles(root, RULES_DIR, /\.test\.ya?ml$/);
  check("prometheus: rule files and unit tests exist", () => {
    const p = [];
    if (!ruleFiles.length) p.push(`no ${RULES_DIR}/*.rules.yml`);
    if (!testFiles.length) p.push(`no ${RULES_DIR}/*.test.yml (promtool test rules)`);
    return p;
  });
  for (const rel of ruleFiles) {
    if (!havePromtool) skip(`prometheus: promtool check rules ${rel}`, "promtool is not installed (Debian package prometheus)");
    else
      check(`prometheus: promtool check rules ${rel}`, () => {
        const r = promtool(["check", "rules", path.join(root, rel)]);
        return r.ok ? [] : [r.out.replace(/\s+/g, " ")];
      });
  }
  for (const rel of testFiles) {
    if (!havePromtool) skip(`prometheus: promtool test rules ${rel}`, "promtool is not installed");
    else
      check(`prometheus: promtool test rules ${rel}`, () => {
        // promtool resolves rule_files relative to the test file.
        const r = promtool(["test", "rules", path.join(root, rel)]);
        return r.ok ? [] : [r.out.replace(/\s+/g, " ").slice(0, 1500)];
      });
  }
  if (ruleFiles.length)
    check("prometheus: rules produce every Triton nv_inference_* series, in Triton's units, keeping model/version", () => {
      const p = [];
      const rules = ruleFiles.flatMap((f) => loadRules(root, f));
      const byRecord = new Map();
      for (const r of rules) {
        if (!r.record) continue;
        if (byRecord.has(r.record)) p.push(`${r.record} is recorded twice`);
        byRecord.set(r.record, r);
      }
      for (const [name, unit] of Object.entries(TRITON_SERIES)) {
        const r = byRecord.get(name);
        if (!r) {
          p.push(`no rule records ${name}`);
          continue;
        }
        const expr = String(r.expr);
        const sources = metricNames(expr).filter((n) => n.startsWith("torii_"));
        if (sources.length !== 1) p.push(`${name}: expected one torii_* source series, found ${sources.join(", ") || "none"}`);
        // Aggregation or label manipulation would lose model/version (or merge pods).
        // The one exception is Triton's failure `reason`: Torii's finer reasons
        // are summed away (`sum without (reason)`) and the sum is labelled with
        // Triton's (`label_replace(..., "reason", "REJECTED", "", "")`).
        const relabels = (expr.match(/\blabel_replace\s*\(/g) || []).length;
        const reasonRelabels = (expr.match(/,\s*"reason"\s*,\s*"[A-Z]+"\s*,\s*""\s*,\s*""\s*\)/g) || []).length;
        if (relabels !== reasonRelabels) p.push(`${name}: '${expr}' relabels something other than Triton's failure reason`);
        const kept = expr
          .replace(/\bsum\s+without\s*\(\s*reason\s*\)/g, "(")
          .replace(/\blabel_replace\s*\(/g, "(");
        if (/\b(sum|avg|min|max|count|topk|bottomk|group|stddev|stdvar|quantile|label_replace|label_join)\b\s*(\(|by|without)/.test(kept) || /\b(by|without)\s*\(/.test(kept)) p.push(`${name}: '${expr}' aggregates or relabels; Triton's series are per model and version`);
        if (/\b(rate|irate|increase|delta|deriv)\s*\(/.test(expr)) p.push(`${name}: '${expr}' is a rate; Triton's series are cumulative counters or gauges`);
        const src = sources[0] || "";
        if (unit === "us") {
          if (!/_seconds(_total|_sum)$/.test(src)) p.push(`${name}: source ${src} is not a duration in seconds`);
          if (!/\*\s*1e6\b|\b1e6\s*\*|\*\s*1000000\b|\b1000000\s*\*/.test(expr)) p.push(`${name}: '${expr}' does not convert seconds to microseconds (* 1e6)`);
        } else {
          if (/[*/]/.test(expr)) p.push(`${name}: '${expr}' scales a ${unit}; it must pass the value through`);
          if (unit === "count" && !/_total$/.test(src)) p.push(`${name}: source ${src} is not a counter (_total)`);
          if (unit === "gauge" && /_total$/.test(src)) p.push(`${name}: source ${src} is a counter, Triton's series is a gauge`);
        }
      }
      return p;
    });

  // ---- dashboards
  const dashFiles = listFiles(root, DASHBOARD_DIR, /\.json$/);
  check("grafana: a dashboard exists", () => (dashFiles.length ? [] : [`no ${DASHBOARD_DIR}/*.json`]));
  for (const rel of dashFiles) {
    let dash;
    check(`grafana: ${rel} is JSON`, () => {
      dash = loadDashboard(root, rel);
      return [];
    });
    if (!dash) continue;

    let typeProblems;
    try {
      typeProblems = await dashboardTypeProblems(dash);
    } catch (e) {
      typeProblems = [`cannot be type-checked: ${e.message}`];
    }
    check(`grafana: ${rel} matches Grafana's schema (@grafana/schema: Dashboard, panel options, field config)`, () => typeProblems);

    check(`grafana: ${rel} layout, ids, variables, data source`, () => {
      const p = [];
      const ids = new Set();
      for (const panel of allPanels(dash)) {
        if (ids.has(panel.id)) p.push(`panel id ${panel.id} is used twice`);
        ids.add(panel.id);
        const g = panel.gridPos;
        if (!g) p.push(`panel ${panel.id} has no gridPos`);
        else if (g.x < 0 || g.w < 1 || g.x + g.w > 24 || g.h < 1) p.push(`panel ${panel.id} gridPos ${JSON.stringify(g)} is outside Grafana's 24 columns`);
        if (panel.type !== "row" && !(panel.targets || []).length) p.push(`panel ${panel.id} "${panel.title}" has no query`);
        if (panel.type !== "row" && !panel.title) p.push(`panel ${panel.id} has no title`);
      }
      // Overlapping panels are silently moved by Grafana; catch them here.
      const boxes = allPanels(dash).filter((x) => x.gridPos);
      for (let i = 0; i < boxes.length; i++)
        for (let j = i + 1; j < boxes.length; j++) {
          const a = boxes[i].gridPos;
          const b = boxes[j].gridPos;
          if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h) p.push(`panels ${boxes[i].id} and ${boxes[j].id} overlap`);
        }
      const vars = new Set(((dash.templating && dash.templating.list) || []).map((v) => v.name));
      const dsVar = ((dash.templating && dash.templating.list) || []).find((v) => v.type === "datasource");
      if (!dsVar || dsVar.query !== "prometheus") p.push("no data source variable of type prometheus (a hard-coded data source uid breaks on import)");
      for (const q of dashboardQueries(dash)) {
        const who = q.panel ? `panel ${q.panel.id} "${q.panel.title}" ${q.target.refId}` : `variable $${q.variable.name}`;
        const { unknown } = expandGrafanaVars(String(q.expr), vars);
        for (const u of unknown) p.push(`${who}: uses $${u}, which is not a dashboard variable`);
        if (q.target) {
          for (const k of Object.keys(q.target)) if (!TARGET_KEYS.has(k)) p.push(`${who}: '${k}' is not a Prometheus query field`);
          if (!q.target.refId) p.push(`${who}: no refId`);
          const ds = q.target.datasource || q.panel.datasource;
          if (!ds || ds.type !== "prometheus" || (dsVar && ds.uid !== `\${${dsVar.name}}`)) p.push(`${who}: data source ${JSON.stringify(ds)} is not the $${dsVar ? dsVar.name : "datasource"} variable`);
        }
        if (q.variable) {
          const ds = q.variable.datasource;
          if (!ds || ds.type !== "prometheus" || (dsVar && ds.uid !== `\${${dsVar.name}}`)) p.push(`${who}: data source ${JSON.stringify(ds)} is not the $${dsVar ? dsVar.name : "datasource"} variable`);
        }
        for (const n of metricNames(String(q.expr))) if (n.startsWith("nv_")) p.push(`${who}: uses Triton's ${n}; this dashboard shows Torii's own metrics`);
      }
      return p;
    });

    if (!havePromtool) skip(`grafana: ${rel} queries parse as PromQL (promtool)`, "promtool is not installed");
    else
      check(`grafana: ${rel} queries parse as PromQL (promtool)`, () => {
        // Each query (Grafana variables expanded) as a recording rule: promtool
        // then parses it exactly as Prometheus would.
        const vars = new Set(((dash.templating && dash.templating.list) || []).map((v) => v.name));
        const queries = dashboardQueries(dash).filter((q) => q.panel);
        const rules = queries.map((q, i) => ({ record: `torii_dashboard_query_${i}`, expr: expandGrafanaVars(String(q.expr), vars).expr }));
        const file = path.join(fs.mkdtempSync(path.join(process.env.TMPDIR || "/tmp", "torii-dash-")), "queries.rules.yml");
        try {
          fs.writeFileSync(file, stringifyYaml({ groups: [{ name: "dashboard", rules }] }));
          const r = promtool(["check", "rules", file]);
          if (r.ok) return [];
          // Name the panel of each failing query.
          const p = [];
          for (const m of r.out.matchAll(/torii_dashboard_query_(\d+)[^\n]*?:\s*([^\n]*)/g)) {
            const q = queries[Number(m[1])];
            p.push(`panel ${q.panel.id} "${q.panel.title}" ${q.target.refId}: ${m[2]}`);
          }
          return p.length ? p : [r.out.replace(/\s+/g, " ").slice(0, 800)];
        } finally {
          fs.rmSync(path.dirname(file), { recursive: true, force: true });
        }
      });

    check(`grafana: ${rel} shows traffic, failures by reason, latency quantiles, queue, instances, readiness, process`, () => {
      const queries = dashboardQueries(dash).filter((q) => q.panel).map((q) => String(q.expr));
      const p = DASHBOARD_MUST_USE.filter((n) => !queries.some((e) => metricNames(e).includes(n))).map((n) => `no panel queries ${n}`);
      if (!queries.some((e) => /histogram_quantile\s*\(/.test(e) && e.includes("torii_inference_request_duration_seconds_bucket"))) p.push("no latency quantile from the request duration histogram");
      if (!queries.some((e) => e.includes("torii_inference_request_failure_total") && /by\s*\([^)]*\breason\b/.test(e))) p.push("failures are never broken down by reason");
      return p;
    });
  }
}

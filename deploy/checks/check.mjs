// Offline checks of Torii's deploy files. Run through scripts/ci/deploy-checks.sh,
// which renders the kustomizations and collects torii-server's and torii-health's
// --help first:
//
//   node check.mjs --root REPO --k8s NAME=rendered.yaml ... \
//       [--server-help FILE] [--health-help FILE] [--facts OUT.json]
//
// Prints one line per check: "PASS <name>", "FAIL <name>: <why>" or
// "SKIP <name>: <why>", and exits 1 if any check failed.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { DockerfileParser } from "dockerfile-ast";
import { validate as validateDockerfile } from "dockerfile-utils";
import dockerfilelint from "dockerfilelint";
import { checkObservability } from "./observability.mjs";
import { checkKserve } from "./kserve.mjs";

// ---------------------------------------------------------------- arguments
const opts = { k8s: [], root: null, serverHelp: null, healthHelp: null, facts: null };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const next = () => process.argv[++i];
  if (a === "--root") opts.root = next();
  else if (a === "--k8s") {
    const [name, file] = next().split("=");
    opts.k8s.push({ name, file });
  } else if (a === "--server-help") opts.serverHelp = next();
  else if (a === "--health-help") opts.healthHelp = next();
  else if (a === "--facts") opts.facts = next();
  else {
    console.error(`check.mjs: unknown argument ${a}`);
    process.exit(2);
  }
}
if (!opts.root) {
  console.error("check.mjs: --root is required");
  process.exit(2);
}

// ---------------------------------------------------------------- reporting
const counts = { pass: 0, fail: 0, skip: 0 };
function pass(name) {
  counts.pass++;
  console.log(`PASS ${name}`);
}
function fail(name, why) {
  counts.fail++;
  console.log(`FAIL ${name}: ${why}`);
}
function skip(name, why) {
  counts.skip++;
  console.log(`SKIP ${name}: ${why}`);
}
// Runs fn, which returns a list of problems (or throws); no problems = PASS.
function check(name, fn) {
  let problems;
  try {
    problems = fn();
  } catch (e) {
    problems = [`${e && e.message ? e.message : e}`];
  }
  if (problems === SKIPPED) return;
  if (problems && problems.length) fail(name, problems.join("; "));
  else pass(name);
}
const SKIPPED = Symbol("skipped");

// ---------------------------------------------------------------- helpers
const read = (rel) => fs.readFileSync(path.join(opts.root, rel), "utf8");
const exists = (rel) => fs.existsSync(path.join(opts.root, rel));

// The paths the image installs to (cmake --install build --prefix /opt/torii).
const PREFIX = "/opt/torii";
const SERVER_BIN = `${PREFIX}/bin/torii-server`;
const HEALTH_BIN = `${PREFIX}/bin/torii-health`;
// torii-server's documented defaults, used when a manifest leaves a flag out.
const DEFAULT_HTTP_PORT = 8000;
const DEFAULT_GRPC_PORT = 8001;
const DEFAULT_METRICS_PORT = 8002;
const DEFAULT_EXIT_TIMEOUT = 30;
// The load balancers' HTTP health check (Triton's and KServe's readiness path).
const HTTP_READY_PATH = "/v2/health/ready";

// Parses ["--a=b", "--c", ...] into Map(name -> value|true). Torii uses the
// --flag=value form; a bare --flag is a boolean.
function parseFlags(args) {
  const flags = new Map();
  const problems = [];
  for (const a of args || []) {
    const m = /^--([A-Za-z0-9][A-Za-z0-9_-]*)(?:=(.*))?$/s.exec(a);
    if (!m) {
      problems.push(`'${a}' is not a --flag=value argument`);
      continue;
    }
    flags.set(m[1], m[2] === undefined ? true : m[2]);
  }
  return { flags, problems };
}

// Flag names a program's --help lists ("--name" tokens at a word start).
function helpFlags(file) {
  if (!file || !fs.existsSync(file)) return null;
  const text = fs.readFileSync(file, "utf8");
  const names = new Set();
  for (const m of text.matchAll(/(?:^|[\s[(,])--([A-Za-z0-9][A-Za-z0-9_-]*)/g)) names.add(m[1]);
  return names.size ? names : null;
}
const serverFlags = helpFlags(opts.serverHelp);
const healthFlags = helpFlags(opts.healthHelp);

function portFlag(flags, name, dflt) {
  if (!flags.has(name)) return dflt;
  const v = Number(flags.get(name));
  if (!Number.isInteger(v) || v < 1 || v > 65535) throw new Error(`--${name}=${flags.get(name)} is not a port`);
  return v;
}
function exitTimeout(flags) {
  if (!flags.has("exit-timeout-secs")) return DEFAULT_EXIT_TIMEOUT;
  const v = Number(flags.get("exit-timeout-secs"));
  if (!Number.isInteger(v) || v < 0) throw new Error(`--exit-timeout-secs=${flags.get("exit-timeout-secs")} is not a number of seconds`);
  return v;
}
// HTTP/REST flags (Triton's names) that the deploy files may use before the
// torii-server being checked has them (the HTTP frontend is built in parallel).
// Missing from --help, they are reported once as SKIP instead of failing; once
// --help lists any HTTP flag they are checked like every other flag.
const PENDING_FLAGS = new Set(["http-port", "http-address", "allow-http", "http-thread-count"]);
const pendingFlagUses = new Set();
function unknownServerFlags(flags, where) {
  if (!serverFlags) return [];
  const httpBuilt = [...PENDING_FLAGS].some((f) => serverFlags.has(f));
  const unknown = [...flags.keys()].filter((f) => !serverFlags.has(f));
  for (const f of unknown) if (!httpBuilt && PENDING_FLAGS.has(f)) pendingFlagUses.add(`--${f} (${where})`);
  return unknown.filter((f) => httpBuilt || !PENDING_FLAGS.has(f)).map((f) => `${where}: --${f} is not a torii-server flag (torii-server --help)`);
}
// The HTTP port a flag set serves, or null with --allow-http=false.
function httpPortOf(flags) {
  if (["false", "0"].includes(String(flags.get("allow-http")))) return null;
  return portFlag(flags, "http-port", DEFAULT_HTTP_PORT);
}

// Everything the manifests, the task definition and the Dockerfile must agree on.
const facts = {};

// ================================================================= Dockerfile
const dockerfileText = exists("deploy/Dockerfile") ? read("deploy/Dockerfile") : null;
const dockerfile = dockerfileText ? DockerfileParser.parse(dockerfileText) : null;
const stages = [];
if (dockerfile) {
  let current = null;
  for (const ins of dockerfile.getInstructions()) {
    if (ins.getKeyword() === "FROM") {
      current = { from: ins, image: ins.getImage(), name: ins.getBuildStage(), instructions: [] };
      stages.push(current);
    } else if (current) current.instructions.push(ins);
  }
}
const finalStage = stages[stages.length - 1];
const stageRuns = (stage) => stage.instructions.filter((i) => i.getKeyword() === "RUN").map((i) => i.getArgumentsContent().replace(/\\\n/g, " "));
const lastOf = (stage, kw) => [...stage.instructions].reverse().find((i) => i.getKeyword() === kw);
const jsonArgs = (ins) => {
  try {
    const v = JSON.parse(ins.getArgumentsContent());
    return Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
};

check("dockerfile: exists", () => (dockerfile ? [] : ["deploy/Dockerfile is missing"]));

if (dockerfile) {
  check("dockerfile: lint (dockerfile-utils)", () =>
    validateDockerfile(dockerfileText, {}).map((d) => `line ${d.range.start.line + 1}: ${d.message}`));

  check("dockerfile: lint (dockerfilelint)", () => {
    const items = dockerfilelint.run(path.join(opts.root, "deploy"), dockerfileText);
    // dockerfilelint 1.8.0 matches HEALTHCHECK options with /--\w+/, so it
    // reads the valid --start-period as "--start" and reports it. Only that
    // exact false positive is ignored; dockerfile-utils checks the flags properly.
    const lines = dockerfileText.split(/\r?\n/);
    return items
      .map((it) => ({ ...it, text: (lines[it.line - 1] || "").trim() }))
      .filter((it) => !(it.rule === "invalid_format" && /^HEALTHCHECK\s/.test(it.text) && /--start-period=/.test(it.text)))
      .map((it) => `line ${it.line}: ${it.title} [${it.rule}] (${it.text})`);
  });

  check("dockerfile: multi-stage, runtime is debian:bookworm-slim", () => {
    const p = [];
    if (stages.length < 2) p.push(`${stages.length} stage(s); want a build stage and a runtime stage`);
    if (finalStage && finalStage.image !== "debian:bookworm-slim") p.push(`final stage is FROM ${finalStage.image}`);
    const copies = finalStage ? finalStage.instructions.filter((i) => i.getKeyword() === "COPY") : [];
    const fromBuild = copies.filter((c) => c.getFlags().some((f) => f.getName() === "from"));
    if (!fromBuild.some((c) => c.getArgumentsContent().split(/\s+/)[0] === PREFIX)) p.push(`final stage does not COPY --from=<build> ${PREFIX}`);
    // Nothing but runtime libraries: no compilers or -dev packages in the final stage.
    for (const r of finalStage ? stageRuns(finalStage) : []) {
      // An invocation starts a command (after &&, ; or the line start); `rm .../install-deps.sh` is not one.
      if (/(?:^|&&|;|\|\|)\s*(?:bash\s+|sh\s+)?\S*install-deps\.sh(?![^&;|]*--runtime)/m.test(r)) p.push("final stage runs install-deps.sh without --runtime");
      if (/apt-get\s+install/.test(r)) p.push("final stage installs packages itself; use scripts/install-deps.sh --runtime");
    }
    return p;
  });

  check("dockerfile: build stage runs the project's scripts", () => {
    const p = [];
    const build = stages.slice(0, -1);
    const runs = build.flatMap(stageRuns).join("\n");
    if (!/(^|[\s/])scripts\/install-deps\.sh(?!\s+--runtime)/m.test(runs)) p.push("no RUN of scripts/install-deps.sh (build dependencies)");
    if (!/(^|[\s/])scripts\/build\.sh\b/m.test(runs)) p.push("no RUN of scripts/build.sh");
    if (!/cmake\s+--install\s+build\s+--prefix\s+\/opt\/torii\b/.test(runs)) p.push(`no RUN of 'cmake --install build --prefix ${PREFIX}'`);
    if (/\bcmake\s+(-S|--build)\b/.test(runs)) p.push("the build stage calls cmake configure/build itself instead of scripts/build.sh");
    const finalRuns = finalStage ? stageRuns(finalStage).join("\n") : "";
    if (!/install-deps\.sh\s+--runtime/.test(finalRuns)) p.push("runtime stage does not run install-deps.sh --runtime");
    return p;
  });

  check("dockerfile: non-root USER, ports, entrypoint, healthcheck", () => {
    const p = [];
    const user = lastOf(finalStage, "USER");
    if (!user) p.push("final stage has no USER");
    else {
      const [u, g] = user.getArgumentsContent().trim().split(":");
      if (!/^\d+$/.test(u) || Number(u) === 0) p.push(`USER ${u} must be a numeric non-zero uid (runAsNonRoot verifies it)`);
      else facts.imageUid = Number(u);
      if (g !== undefined && /^\d+$/.test(g)) facts.imageGid = Number(g);
    }
    const exposed = finalStage.instructions.filter((i) => i.getKeyword() === "EXPOSE").flatMap((i) => i.getArgumentsContent().trim().split(/\s+/)).map((x) => Number(x.split("/")[0]));
    facts.exposed = exposed;
    for (const port of [DEFAULT_HTTP_PORT, DEFAULT_GRPC_PORT, DEFAULT_METRICS_PORT]) if (!exposed.includes(port)) p.push(`EXPOSE lacks ${port}`);
    const ep = lastOf(finalStage, "ENTRYPOINT");
    const cmd = lastOf(finalStage, "CMD");
    const epArgs = ep ? jsonArgs(ep) : null;
    const cmdArgs = cmd ? jsonArgs(cmd) : null;
    if (!epArgs) p.push("ENTRYPOINT must be exec form (JSON), so torii-server is PID 1 and gets SIGTERM");
    else if (epArgs[0] !== SERVER_BIN) p.push(`ENTRYPOINT runs ${epArgs[0]}, want ${SERVER_BIN}`);
    if (!cmdArgs) p.push("CMD must be exec form (JSON)");
    else {
      const all = [...(epArgs || []).slice(1), ...cmdArgs];
      const { flags, problems } = parseFlags(all);
      p.push(...problems);
      if (flags.get("model-repository") !== "/models") p.push("image does not start torii-server --model-repository=/models");
      p.push(...unknownServerFlags(flags, "Dockerfile CMD"));
    }
    const hc = lastOf(finalStage, "HEALTHCHECK");
    if (!hc) p.push("no HEALTHCHECK");
    else {
      const text = hc.getArgumentsContent();
      const m = /CMD\s+(\[.*\])\s*$/s.exec(text);
      const hcArgs = m ? JSON.parse(m[1]) : null;
      if (!hcArgs) p.push("HEALTHCHECK must be 'CMD [exec form]'");
      else {
        facts.dockerHealth = hcArgs;
        if (hcArgs[0] !== HEALTH_BIN) p.push(`HEALTHCHECK runs ${hcArgs[0]}, want ${HEALTH_BIN}`);
        p.push(...healthCommandProblems(hcArgs.slice(1), DEFAULT_GRPC_PORT, "HEALTHCHECK"));
      }
    }
    return p;
  });
}

// Problems with a torii-health argument list, given the gRPC port it must ask.
function healthCommandProblems(args, grpcPort, where) {
  const p = [];
  const { flags, problems } = parseFlags(args);
  p.push(...problems.map((x) => `${where}: ${x}`));
  if (healthFlags) for (const f of flags.keys()) if (!healthFlags.has(f)) p.push(`${where}: --${f} is not a torii-health flag (torii-health --help)`);
  const address = flags.has("address") ? String(flags.get("address")) : "127.0.0.1:8001";
  const m = /^(?:127\.0\.0\.1|localhost|\[::1\]):(\d+)$/.exec(address);
  if (!m) p.push(`${where}: --address=${address} is not a loopback address`);
  else if (Number(m[1]) !== grpcPort) p.push(`${where}: asks port ${m[1]} but the server's gRPC port is ${grpcPort}`);
  return p;
}

check(".dockerignore keeps build trees, node_modules and .git out of the context", () => {
  if (!exists(".dockerignore")) return [".dockerignore is missing"];
  const lines = read(".dockerignore").split("\n").map((l) => l.trim());
  return ["build", ".git", "deploy/checks/node_modules"].filter((x) => !lines.includes(x) && !(x.endsWith("node_modules") && lines.includes("**/node_modules"))).map((x) => `${x} not ignored`);
});

// ================================================================= build steps
// The image must build the way README.md and CI build: the same scripts.
check("build steps: scripts/build.sh configures into build/ and passes extra args", () => {
  if (!exists("scripts/build.sh")) return ["scripts/build.sh is missing (the Dockerfile runs it)"];
  const s = read("scripts/build.sh");
  const p = [];
  // The build directory may be a variable, as long as it defaults to build/
  // (the Dockerfile runs `cmake --install build`).
  const isBuildDir = (word) => {
    if (word === undefined) return false;
    const w = word.replace(/^"|"$/g, "");
    if (w === "build" || w === "./build") return true;
    const v = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(w);
    return !!v && new RegExp(`(^|\\s)${v[1]}="?(build|\\$\\{[A-Za-z_][A-Za-z0-9_]*:-build\\})"?\\s*$`, "m").test(s);
  };
  const configure = /cmake\s+-S\s+\S+\s+-B\s+(\S+)/.exec(s);
  if (!configure || !isBuildDir(configure[1])) p.push("scripts/build.sh does not configure into build/ by default (the Dockerfile installs from build/)");
  const build = /cmake\s+--build\s+(\S+)/.exec(s);
  if (!build || !isBuildDir(build[1])) p.push("scripts/build.sh does not run 'cmake --build' on build/ by default");
  if (!/"\$@"/.test(s)) p.push("scripts/build.sh does not pass \"$@\" (the Dockerfile passes configure arguments)");
  if (dockerfileText && /TORII_BUILD_DIR/.test(dockerfileText)) p.push("the Dockerfile sets TORII_BUILD_DIR, so `cmake --install build` would install something else");
  return p;
});
check("build steps: scripts/install-deps.sh has a --runtime mode", () => {
  if (!exists("scripts/install-deps.sh")) return ["scripts/install-deps.sh is missing"];
  return /--runtime/.test(read("scripts/install-deps.sh")) ? [] : ["scripts/install-deps.sh has no --runtime mode"];
});
for (const file of [".ci/run", "README.md"]) {
  check(`build steps: ${file} uses the Dockerfile's scripts`, () => {
    if (!exists(file)) {
      skip(`build steps: ${file} uses the Dockerfile's scripts`, `${file} does not exist yet`);
      return SKIPPED;
    }
    const s = read(file);
    const p = [];
    for (const script of ["scripts/install-deps.sh", "scripts/build.sh"]) if (!s.includes(script)) p.push(`${file} never mentions ${script}`);
    if (file === ".ci/run" && !s.includes("deploy-checks")) p.push(".ci/run does not run scripts/ci/deploy-checks.sh");
    return p;
  });
}

// ================================================================= Kubernetes
async function loadModel(apiVersion, kind) {
  // kubernetes-models mirrors apiVersion/kind as module paths: v1/Service, apps/v1/Deployment.
  const mod = await import(`kubernetes-models/${apiVersion}/${kind}`);
  return mod[kind];
}

// kubernetes-models' validate() accepts unknown fields, and a misspelt field
// (`readinesProbe`, `topologySpreadConstraint`) would be silently ignored by a
// lenient client or rejected by `kubectl apply` (strict field validation). So
// walk each object against the property lists of the package's type
// declarations (.d.ts), which are generated from the same OpenAPI schema.
const nodeModules = path.join(path.dirname(fileURLToPath(import.meta.url)), "node_modules");
const interfaceCache = new Map();
function loadInterface(dtsFile) {
  if (interfaceCache.has(dtsFile)) return interfaceCache.get(dtsFile);
  let result = null;
  if (fs.existsSync(dtsFile)) {
    const text = fs.readFileSync(dtsFile, "utf8").replace(/\/\*[\s\S]*?\*\//g, "");
    const imports = new Map();
    for (const m of text.matchAll(/import\s*\{\s*([^}]+)\}\s*from\s*"([^"]+)"/g)) {
      for (const name of m[1].split(",").map((x) => x.trim().split(/\s+as\s+/).pop())) {
        const spec = m[2];
        const file = spec.startsWith(".") ? path.resolve(path.dirname(dtsFile), `${spec}.d.ts`) : path.join(nodeModules, `${spec}.d.ts`);
        imports.set(name, file);
      }
    }
    const start = /export interface I\w+(?:\s+extends\s+[^{]+)?\s*\{/.exec(text);
    if (start) {
      // Scan the interface body: "name"?: <type up to ';' at brace/angle depth 0>
      const props = new Map();
      let i = start.index + start[0].length;
      let depth = 0;
      while (i < text.length) {
        const rest = text.slice(i);
        const m = /^\s*"([^"]+)"\??:\s*/.exec(rest);
        if (!m) {
          if (/^\s*\}/.test(rest)) break;
          i++;
          continue;
        }
        i += m[0].length;
        let type = "";
        depth = 0;
        for (; i < text.length; i++) {
          const c = text[i];
          if (c === "{" || c === "<" || c === "(") depth++;
          if (c === "}" || c === ">" || c === ")") depth--;
          if (c === ";" && depth === 0) {
            i++;
            break;
          }
          type += c;
        }
        props.set(m[1], type.trim());
      }
      result = { props, imports };
    }
  }
  interfaceCache.set(dtsFile, result);
  return result;
}
function unknownFields(value, dtsFile, where, out) {
  const iface = loadInterface(dtsFile);
  if (!iface || value === null || typeof value !== "object" || Array.isArray(value)) return out;
  for (const [key, v] of Object.entries(value)) {
    if (!iface.props.has(key)) {
      out.push(`${where}.${key} is not a field of ${path.basename(dtsFile, ".d.ts")}`);
      continue;
    }
    const type = iface.props.get(key);
    if (type.startsWith("{")) continue; // a map: keys are free-form
    const ref = /\b(I[A-Z]\w*)\b/.exec(type);
    if (!ref || !iface.imports.has(ref[1])) continue;
    const file = iface.imports.get(ref[1]);
    if (type.startsWith("Array<") && Array.isArray(v)) v.forEach((e, n) => unknownFields(e, file, `${where}.${key}[${n}]`, out));
    else unknownFields(v, file, `${where}.${key}`, out);
  }
  return out;
}

// Kubernetes' schema and field names for an object (used for the core types
// inside KServe's objects); returns the problems.
async function validateK8s(obj, where) {
  let Model;
  try {
    Model = await loadModel(obj.apiVersion, obj.kind);
  } catch {
    return [`${where}: no schema for ${obj.apiVersion} ${obj.kind}`];
  }
  const p = [];
  try {
    new Model(obj).validate();
  } catch (e) {
    p.push(`${where}: ${e.message}`);
  }
  const dts = path.join(nodeModules, "kubernetes-models", obj.apiVersion, `${obj.kind}.d.ts`);
  p.push(...unknownFields(obj, dts, where, []));
  return p;
}

const selects = (selector, labels) => selector && Object.entries(selector).every(([k, v]) => labels && labels[k] === v);

async function checkK8s({ name, file }) {
  const tag = `k8s[${name}]`;
  let objs;
  try {
    const docs = parseAllDocuments(fs.readFileSync(file, "utf8"));
    const errs = docs.flatMap((d) => d.errors.map((e) => e.message));
    if (errs.length) throw new Error(errs.join("; "));
    objs = docs.map((d) => d.toJS()).filter(Boolean);
  } catch (e) {
    fail(`${tag}: render parses`, e.message);
    return;
  }
  pass(`${tag}: rendered ${objs.length} objects`);

  for (const obj of objs) {
    const id = `${obj.kind}/${obj.metadata && obj.metadata.name}`;
    let Model;
    try {
      Model = await loadModel(obj.apiVersion, obj.kind);
    } catch {
      fail(`${tag}: schema ${id}`, `no schema for ${obj.apiVersion} ${obj.kind}`);
      continue;
    }
    check(`${tag}: schema ${id}`, () => {
      new Model(obj).validate();
      const dts = path.join(nodeModules, "kubernetes-models", obj.apiVersion, `${obj.kind}.d.ts`);
      if (!loadInterface(dts)) return [`no type declarations for ${obj.apiVersion} ${obj.kind}`];
      return unknownFields(obj, dts, obj.kind, []);
    });
  }

  const byKind = (k) => objs.filter((o) => o.kind === k);
  const deployments = byKind("Deployment");
  check(`${tag}: has Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget`, () =>
    ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"].filter((k) => !byKind(k).length).map((k) => `no ${k}`));
  const dep = deployments[0];
  if (!dep) return;
  const pod = dep.spec?.template?.spec || {};
  const podLabels = dep.spec?.template?.metadata?.labels || {};
  const torii = (pod.containers || []).find((c) => c.command && c.command[0] === SERVER_BIN) || (pod.containers || [])[0];
  if (!torii) {
    fail(`${tag}: torii-server container`, "the Deployment has no containers");
    return;
  }
  const { flags, problems: flagProblems } = parseFlags(torii.args);
  let grpcPort, metricsPort, exitSecs, httpPort;
  const view = {};
  facts.k8s = facts.k8s || {};
  facts.k8s[name] = view;

  check(`${tag}: torii-server command and flags`, () => {
    const p = [...flagProblems];
    if (!torii.command || torii.command[0] !== SERVER_BIN) p.push(`container ${torii.name} runs ${JSON.stringify(torii.command)}, want ${SERVER_BIN} (the image's install path)`);
    p.push(...unknownServerFlags(flags, `container ${torii.name} args`));
    grpcPort = portFlag(flags, "grpc-port", DEFAULT_GRPC_PORT);
    metricsPort = portFlag(flags, "metrics-port", DEFAULT_METRICS_PORT);
    httpPort = httpPortOf(flags);
    exitSecs = exitTimeout(flags);
    if (new Set([grpcPort, metricsPort, httpPort ?? -1]).size !== 3) p.push(`HTTP, gRPC and metrics ports must differ (${httpPort}, ${grpcPort}, ${metricsPort})`);
    if (facts.exposed) for (const port of [httpPort, grpcPort, metricsPort]) if (port !== null && !facts.exposed.includes(port)) p.push(`port ${port} is not EXPOSEd by the Dockerfile`);
    return p;
  });
  if (grpcPort === undefined) return;

  check(`${tag}: container ports match --http-port/--grpc-port/--metrics-port`, () => {
    const ports = Object.fromEntries((torii.ports || []).map((p) => [p.name, p.containerPort]));
    const p = [];
    if (httpPort === null && ports.http !== undefined) p.push(`containerPort 'http' is ${ports.http}, but --allow-http=false`);
    if (httpPort !== null && ports.http !== httpPort) p.push(`containerPort 'http' is ${ports.http}, server listens for HTTP on ${httpPort} (--http-port, default ${DEFAULT_HTTP_PORT})`);
    if (ports.grpc !== grpcPort) p.push(`containerPort 'grpc' is ${ports.grpc}, server listens on ${grpcPort}`);
    if (ports.metrics !== metricsPort) p.push(`containerPort 'metrics' is ${ports.metrics}, server serves metrics on ${metricsPort}`);
    return p;
  });

  check(`${tag}: gRPC probes (startup, liveness, readiness) on the gRPC port`, () => {
    const p = [];
    const probes = { startupProbe: torii.startupProbe, livenessProbe: torii.livenessProbe, readinessProbe: torii.readinessProbe };
    for (const [k, probe] of Object.entries(probes)) {
      if (!probe) {
        p.push(`no ${k}`);
        continue;
      }
      if (!probe.grpc) p.push(`${k} is not a grpc probe`);
      else if (probe.grpc.port !== grpcPort) p.push(`${k} asks port ${probe.grpc.port}, server's gRPC port is ${grpcPort}`);
    }
    if (p.length) return p;
    const live = torii.livenessProbe.grpc.service || "";
    const ready = torii.readinessProbe.grpc.service || "";
    // protocol.md: "" = ready to take traffic; liveness must not depend on a
    // model that is still loading, so it must ask a different service name.
    if (ready !== "") p.push(`readinessProbe asks service '${ready}'; readiness is service ""`);
    if (live === "") p.push(`livenessProbe asks service "" (readiness): a slow or failed model load would restart the pod`);
    if ((torii.startupProbe.grpc.service || "") !== live) p.push("startupProbe should ask the same service as livenessProbe (it guards liveness)");
    const budget = (torii.startupProbe.periodSeconds || 10) * (torii.startupProbe.failureThreshold || 3);
    if (budget < 300) p.push(`startupProbe allows only ${budget}s for start-up and model loading; want >= 300s`);
    view.livenessService = live;
    view.readinessService = ready;
    facts.livenessService = facts.livenessService ?? live;
    facts.readinessService = facts.readinessService ?? ready;
    return p;
  });

  check(`${tag}: terminationGracePeriodSeconds fits preStop + --exit-timeout-secs`, () => {
    const p = [];
    const grace = pod.terminationGracePeriodSeconds ?? 30;
    const pre = torii.lifecycle && torii.lifecycle.preStop;
    let preSecs = 0;
    if (!pre) p.push("no preStop hook (endpoints may still route new requests while the server drains)");
    else if (pre.sleep) preSecs = pre.sleep.seconds;
    else if (pre.exec) {
      const c = pre.exec.command || [];
      const m = /(?:^|\/)sleep$/.test(c[0] || "") ? Number(c[1]) : NaN;
      if (Number.isNaN(m)) p.push(`cannot read the preStop delay from ${JSON.stringify(c)}`);
      else preSecs = m;
    }
    const need = preSecs + exitSecs + 5;
    if (grace < need) p.push(`terminationGracePeriodSeconds ${grace} < preStop ${preSecs}s + --exit-timeout-secs ${exitSecs}s + 5s margin`);
    facts.k8sTiming = { grace, preStop: preSecs, exitTimeout: exitSecs };
    return p;
  });

  check(`${tag}: resources, non-root, read-only root filesystem`, () => {
    const p = [];
    const psc = pod.securityContext || {};
    for (const c of [...(pod.initContainers || []), ...(pod.containers || [])]) {
      const sc = c.securityContext || {};
      const r = c.resources || {};
      if (!(r.requests && r.requests.cpu && r.requests.memory)) p.push(`${c.name}: no cpu/memory requests`);
      if (!(r.limits && r.limits.memory)) p.push(`${c.name}: no memory limit`);
      if (!(sc.runAsNonRoot ?? psc.runAsNonRoot)) p.push(`${c.name}: runAsNonRoot is not set`);
      if (sc.readOnlyRootFilesystem !== true) p.push(`${c.name}: readOnlyRootFilesystem is not true`);
      if (sc.allowPrivilegeEscalation !== false) p.push(`${c.name}: allowPrivilegeEscalation is not false`);
    }
    const uid = (torii.securityContext || {}).runAsUser ?? psc.runAsUser;
    if (facts.imageUid !== undefined && uid !== undefined && uid !== facts.imageUid) p.push(`runAsUser ${uid} differs from the image's USER ${facts.imageUid}`);
    return p;
  });

  check(`${tag}: model repository volume filled by an init container`, () => {
    const p = [];
    const repo = flags.get("model-repository");
    if (!repo) return ["--model-repository is not set"];
    const mount = (torii.volumeMounts || []).find((m) => m.mountPath === repo);
    if (!mount) return [`no volumeMount at --model-repository=${repo}`];
    if (!(pod.volumes || []).some((v) => v.name === mount.name)) p.push(`volume ${mount.name} is not defined`);
    if (!(pod.initContainers || []).some((c) => (c.volumeMounts || []).some((m) => m.name === mount.name && !m.readOnly))) p.push(`no init container writes volume ${mount.name}`);
    if (pod.containers.some((c) => (c.volumeMounts || []).some((m) => m.mountPath === "/tmp")) === false) p.push("no writable /tmp (the root filesystem is read-only)");
    return p;
  });

  check(`${tag}: Services route to the HTTP, gRPC and metrics ports, with scrape annotations`, () => {
    const p = [];
    const named = Object.fromEntries((torii.ports || []).map((x) => [x.name, x.containerPort]));
    const services = byKind("Service");
    for (const s of services) {
      if (!selects(s.spec.selector, podLabels)) p.push(`Service ${s.metadata.name} selector ${JSON.stringify(s.spec.selector)} does not match the pods`);
      for (const port of s.spec.ports || []) {
        const target = typeof port.targetPort === "string" ? named[port.targetPort] : port.targetPort ?? port.port;
        if (![httpPort, grpcPort, metricsPort].includes(target)) p.push(`Service ${s.metadata.name} port ${port.name} targets ${port.targetPort}, which is neither HTTP, gRPC nor metrics`);
      }
    }
    const main = services.find((s) => (s.spec.ports || []).some((x) => x.port === metricsPort || named[x.targetPort] === metricsPort));
    if (!main) p.push("no Service exposes the metrics port");
    else {
      const a = main.metadata.annotations || {};
      if (a["prometheus.io/scrape"] !== "true") p.push(`Service ${main.metadata.name} lacks prometheus.io/scrape: "true"`);
      if (a["prometheus.io/port"] !== String(metricsPort)) p.push(`Service ${main.metadata.name} prometheus.io/port is ${a["prometheus.io/port"]}, metrics port is ${metricsPort}`);
      if (a["prometheus.io/path"] !== "/metrics") p.push(`Service ${main.metadata.name} prometheus.io/path is not /metrics`);
    }
    if (!services.some((s) => (s.spec.ports || []).some((x) => named[x.targetPort] === grpcPort || x.targetPort === grpcPort))) p.push("no Service exposes the gRPC port");
    if (httpPort !== null && !services.some((s) => s.metadata.name === main?.metadata.name && (s.spec.ports || []).some((x) => named[x.targetPort] === httpPort || x.targetPort === httpPort))) p.push("the main Service does not expose the HTTP port");
    const pa = dep.spec.template.metadata.annotations || {};
    if (pa["prometheus.io/port"] !== undefined && pa["prometheus.io/port"] !== String(metricsPort)) p.push(`pod prometheus.io/port ${pa["prometheus.io/port"]} != ${metricsPort}`);
    return p;
  });

  check(`${tag}: selectors, HorizontalPodAutoscaler and PodDisruptionBudget agree`, () => {
    const p = [];
    if (!selects(dep.spec.selector.matchLabels, podLabels)) p.push("Deployment selector does not match its own pod labels");
    const hpa = byKind("HorizontalPodAutoscaler")[0];
    const pdb = byKind("PodDisruptionBudget")[0];
    if (hpa) {
      if (hpa.spec.scaleTargetRef.kind !== "Deployment" || hpa.spec.scaleTargetRef.name !== dep.metadata.name) p.push(`HPA targets ${hpa.spec.scaleTargetRef.kind}/${hpa.spec.scaleTargetRef.name}`);
      if ((hpa.spec.minReplicas ?? 1) < 2) p.push("HPA minReplicas < 2: a single pod cannot be drained without downtime");
      const cpu = (hpa.spec.metrics || []).some((m) => m.type === "Resource" && m.resource.name === "cpu");
      if (cpu && !(torii.resources && torii.resources.requests && torii.resources.requests.cpu)) p.push("HPA scales on CPU utilisation but the server has no CPU request");
      if (dep.spec.replicas !== undefined) p.push("Deployment sets replicas while an HPA owns the count (every apply would reset it)");
    }
    if (pdb) {
      if (!selects(pdb.spec.selector.matchLabels, podLabels)) p.push("PDB selector does not match the pods");
      const min = hpa ? hpa.spec.minReplicas ?? 1 : 1;
      if (pdb.spec.minAvailable !== undefined && Number(pdb.spec.minAvailable) >= min) p.push(`PDB minAvailable ${pdb.spec.minAvailable} >= minReplicas ${min} blocks every drain`);
      if (pdb.spec.maxUnavailable !== undefined && (pdb.spec.maxUnavailable === 0 || pdb.spec.maxUnavailable === "0%")) p.push("PDB maxUnavailable 0 blocks every drain");
    }
    return p;
  });

  Object.assign(view, { httpPort, grpcPort, metricsPort, args: torii.args });
}

// ================================================================= ECS
const FARGATE_MEMORY = {
  256: [512, 1024, 2048],
  512: range(1024, 4096, 1024),
  1024: range(2048, 8192, 1024),
  2048: range(4096, 16384, 1024),
  4096: range(8192, 30720, 1024),
  8192: range(16384, 61440, 4096),
  16384: range(32768, 122880, 8192),
};
function range(a, b, step) {
  const r = [];
  for (let x = a; x <= b; x += step) r.push(x);
  return r;
}
// Parameters of elbv2 CreateTargetGroup.
const TARGET_GROUP_KEYS = new Set(["Name", "Protocol", "ProtocolVersion", "Port", "VpcId", "HealthCheckProtocol", "HealthCheckPort", "HealthCheckEnabled", "HealthCheckPath", "HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds", "HealthyThresholdCount", "UnhealthyThresholdCount", "Matcher", "TargetType", "Tags", "IpAddressType"]);
// Parameters of RegisterTaskDefinition / ContainerDefinition, to catch typos
// (AWS rejects unknown keys).
const TASK_KEYS = new Set(["family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions", "volumes", "placementConstraints", "requiresCompatibilities", "cpu", "memory", "tags", "pidMode", "ipcMode", "proxyConfiguration", "inferenceAccelerators", "ephemeralStorage", "runtimePlatform", "enableFaultInjection"]);
const CONTAINER_KEYS = new Set(["name", "image", "repositoryCredentials", "cpu", "memory", "memoryReservation", "links", "portMappings", "essential", "restartPolicy", "entryPoint", "command", "environment", "environmentFiles", "mountPoints", "volumesFrom", "linuxParameters", "secrets", "dependsOn", "startTimeout", "stopTimeout", "versionConsistency", "hostname", "user", "workingDirectory", "disableNetworking", "privileged", "readonlyRootFilesystem", "dnsServers", "dnsSearchDomains", "extraHosts", "dockerSecurityOptions", "interactive", "pseudoTerminal", "dockerLabels", "ulimits", "logConfiguration", "healthCheck", "systemControls", "resourceRequirements", "firelensConfiguration", "credentialSpecs"]);

function checkEcs() {
  const tdFile = "deploy/ecs/task-definition.json";
  let td;
  check("ecs: task definition is JSON", () => {
    td = JSON.parse(read(tdFile));
    return [];
  });
  if (!td) return;
  check("ecs: task definition structure (Fargate, awsvpc, cpu/memory, known keys)", () => {
    const p = [];
    for (const k of Object.keys(td)) if (!TASK_KEYS.has(k)) p.push(`unknown task definition key '${k}'`);
    if (!td.family) p.push("no family");
    if (!Array.isArray(td.requiresCompatibilities) || !td.requiresCompatibilities.includes("FARGATE")) p.push("requiresCompatibilities lacks FARGATE");
    if (td.networkMode !== "awsvpc") p.push(`networkMode is ${td.networkMode}; Fargate needs awsvpc`);
    const cpu = Number(td.cpu);
    const mem = Number(td.memory);
    if (typeof td.cpu !== "string" || typeof td.memory !== "string") p.push("cpu and memory must be strings at task level");
    if (!FARGATE_MEMORY[cpu]) p.push(`cpu ${td.cpu} is not a Fargate size`);
    else if (!FARGATE_MEMORY[cpu].includes(mem)) p.push(`memory ${td.memory} is not valid with cpu ${td.cpu} on Fargate`);
    if (!td.executionRoleArn) p.push("no executionRoleArn (needed to pull from ECR and write awslogs)");
    if (!Array.isArray(td.containerDefinitions) || !td.containerDefinitions.length) p.push("no containerDefinitions");
    const names = new Set();
    for (const c of td.containerDefinitions || []) {
      for (const k of Object.keys(c)) if (!CONTAINER_KEYS.has(k)) p.push(`container ${c.name}: unknown key '${k}'`);
      if (!c.name || !c.image) p.push("a container lacks name or image");
      if (names.has(c.name)) p.push(`duplicate container ${c.name}`);
      names.add(c.name);
      const lc = c.logConfiguration;
      if (!lc || lc.logDriver !== "awslogs") p.push(`container ${c.name}: no awslogs logConfiguration`);
      else for (const o of ["awslogs-group", "awslogs-region", "awslogs-stream-prefix"]) if (!lc.options || !lc.options[o]) p.push(`container ${c.name}: awslogs lacks ${o}`);
      for (const pm of c.portMappings || []) if (pm.hostPort !== undefined && pm.hostPort !== pm.containerPort) p.push(`container ${c.name}: awsvpc needs hostPort == containerPort`);
      for (const m of c.mountPoints || []) if (!(td.volumes || []).some((v) => v.name === m.sourceVolume)) p.push(`container ${c.name}: mount of undefined volume ${m.sourceVolume}`);
      for (const d of c.dependsOn || []) if (!(td.containerDefinitions || []).some((o) => o.name === d.containerName)) p.push(`container ${c.name}: dependsOn unknown ${d.containerName}`);
      if (c.stopTimeout !== undefined && (c.stopTimeout < 2 || c.stopTimeout > 120)) p.push(`container ${c.name}: stopTimeout must be 2..120 on Fargate`);
    }
    if (!(td.containerDefinitions || []).some((c) => c.essential !== false)) p.push("no essential container");
    return p;
  });

  const torii = (td.containerDefinitions || []).find((c) => (c.entryPoint || [])[0] === SERVER_BIN) || (td.containerDefinitions || []).find((c) => c.essential !== false);
  if (!torii) return;
  const all = [...(torii.entryPoint || []).slice(1), ...(torii.command || [])];
  const { flags, problems } = parseFlags(all);
  let grpcPort, metricsPort, exitSecs, httpPort;
  check("ecs: torii-server entry point, flags and ports", () => {
    const p = [...problems];
    if ((torii.entryPoint || [])[0] !== SERVER_BIN) p.push(`entryPoint is ${JSON.stringify(torii.entryPoint)}, want ${SERVER_BIN}`);
    p.push(...unknownServerFlags(flags, "torii container command"));
    grpcPort = portFlag(flags, "grpc-port", DEFAULT_GRPC_PORT);
    metricsPort = portFlag(flags, "metrics-port", DEFAULT_METRICS_PORT);
    httpPort = httpPortOf(flags);
    exitSecs = exitTimeout(flags);
    const mapped = (torii.portMappings || []).map((x) => x.containerPort);
    for (const port of [httpPort, grpcPort, metricsPort]) if (port !== null && !mapped.includes(port)) p.push(`portMappings lack ${port}`);
    if (torii.user === undefined || /^(0|root)(:|$)/.test(String(torii.user))) {
      if (facts.imageUid === undefined) p.push("torii container sets no non-root user and the image USER is unknown");
    } else if (facts.imageUid !== undefined && Number(String(torii.user).split(":")[0]) !== facts.imageUid) p.push(`user ${torii.user} differs from the image's USER ${facts.imageUid}`);
    if (torii.readonlyRootFilesystem !== true) p.push("readonlyRootFilesystem is not true");
    const repo = flags.get("model-repository");
    if (!(torii.mountPoints || []).some((m) => m.containerPath === repo)) p.push(`no mountPoint at --model-repository=${repo}`);
    return p;
  });
  if (grpcPort === undefined) return;

  check("ecs: healthCheck runs torii-health against the gRPC port", () => {
    const hc = torii.healthCheck;
    if (!hc) return ["torii container has no healthCheck"];
    const p = [];
    const cmd = hc.command || [];
    if (cmd[0] !== "CMD") p.push(`healthCheck command must start with "CMD" (exec form), got ${cmd[0]}`);
    if (cmd[1] !== HEALTH_BIN) p.push(`healthCheck runs ${cmd[1]}, want ${HEALTH_BIN}`);
    p.push(...healthCommandProblems(cmd.slice(2), grpcPort, "healthCheck"));
    const within = (k, lo, hi, dflt) => {
      const v = hc[k] ?? dflt;
      if (!(v >= lo && v <= hi)) p.push(`healthCheck.${k} ${v} outside ${lo}..${hi}`);
      return v;
    };
    const timeout = within("timeout", 2, 60, 5);
    within("interval", 5, 300, 30);
    within("retries", 1, 10, 3);
    const start = within("startPeriod", 0, 300, 0);
    if (start < 60) p.push(`healthCheck.startPeriod ${start}s leaves no time for model loading`);
    const { flags: hf } = parseFlags(cmd.slice(2));
    const ms = Number(hf.get("timeout-ms") ?? 2000);
    if (ms >= timeout * 1000) p.push(`--timeout-ms=${ms} is not below healthCheck.timeout ${timeout}s`);
    facts.ecsHealth = cmd.slice(1);
    return p;
  });

  check("ecs: stopTimeout fits --exit-timeout-secs", () => {
    const stop = torii.stopTimeout ?? 30;
    return stop >= exitSecs + 5 ? [] : [`stopTimeout ${stop}s < --exit-timeout-secs ${exitSecs}s + 5s: ECS would SIGKILL a draining server`];
  });

  check("ecs: model fetch container runs first and may exit", () => {
    const repo = flags.get("model-repository");
    const vol = (torii.mountPoints || []).find((m) => m.containerPath === repo);
    const fetchers = (td.containerDefinitions || []).filter((c) => c !== torii && (c.mountPoints || []).some((m) => vol && m.sourceVolume === vol.sourceVolume && !m.readOnly));
    if (!fetchers.length) return ["no container fills the model repository volume"];
    const p = [];
    for (const f of fetchers) {
      if (f.essential !== false) p.push(`${f.name} must be essential: false (it exits when done)`);
      if (!(torii.dependsOn || []).some((d) => d.containerName === f.name && ["SUCCESS", "COMPLETE"].includes(d.condition))) p.push(`torii does not wait for ${f.name} (dependsOn SUCCESS)`);
    }
    return p;
  });

  // Target groups (elbv2 create-target-group --cli-input-json), by name.
  const targetGroups = new Map();
  for (const f of fs.readdirSync(path.join(opts.root, "deploy/ecs")).filter((x) => /^target-group.*\.json$/.test(x)).sort()) {
    const rel = `deploy/ecs/${f}`;
    check(`ecs: ${rel} (target group and its health check)`, () => {
      const tg = JSON.parse(read(rel));
      const p = [];
      for (const k of Object.keys(tg)) if (!TARGET_GROUP_KEYS.has(k)) p.push(`unknown CreateTargetGroup parameter '${k}'`);
      if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$/.test(tg.Name || "")) p.push(`Name ${JSON.stringify(tg.Name)} is not 1-32 letters, digits or inner hyphens`);
      if (tg.TargetType !== "ip") p.push(`TargetType ${tg.TargetType}; awsvpc tasks register by IP (ip)`);
      if (!["HTTP", "HTTPS"].includes(tg.Protocol)) p.push(`Protocol ${tg.Protocol}; an ALB target group is HTTP or HTTPS`);
      const interval = tg.HealthCheckIntervalSeconds ?? 30;
      const timeout = tg.HealthCheckTimeoutSeconds ?? 5;
      if (!(interval >= 5 && interval <= 300)) p.push(`HealthCheckIntervalSeconds ${interval} outside 5..300`);
      if (!(timeout >= 2 && timeout <= 120 && timeout < interval)) p.push(`HealthCheckTimeoutSeconds ${timeout} must be 2..120 and below the interval`);
      for (const k of ["HealthyThresholdCount", "UnhealthyThresholdCount"]) if (tg[k] !== undefined && !(tg[k] >= 2 && tg[k] <= 10)) p.push(`${k} ${tg[k]} outside 2..10`);
      if (tg.HealthCheckPort !== undefined && tg.HealthCheckPort !== "traffic-port" && Number(tg.HealthCheckPort) !== tg.Port) p.push(`HealthCheckPort ${tg.HealthCheckPort} is not the traffic port ${tg.Port}`);
      const matcher = tg.Matcher || {};
      if (tg.ProtocolVersion === "GRPC") {
        if (tg.Port !== grpcPort) p.push(`gRPC target group on port ${tg.Port}, the server's gRPC port is ${grpcPort}`);
        if (tg.HealthCheckPath !== "/grpc.health.v1.Health/Check") p.push(`HealthCheckPath ${tg.HealthCheckPath}; a gRPC target group checks /grpc.health.v1.Health/Check`);
        if (String(matcher.GrpcCode) !== "0") p.push(`Matcher.GrpcCode ${matcher.GrpcCode}; SERVING is gRPC status 0`);
      } else {
        if (httpPort === null) p.push("an HTTP target group, but the task runs torii-server with --allow-http=false");
        else if (tg.Port !== httpPort) p.push(`HTTP target group on port ${tg.Port}, the server's HTTP port is ${httpPort}`);
        if ((tg.HealthCheckProtocol ?? tg.Protocol) !== "HTTP") p.push(`HealthCheckProtocol ${tg.HealthCheckProtocol}; torii-server's HTTP port is plain HTTP`);
        if (tg.HealthCheckPath !== HTTP_READY_PATH) p.push(`HealthCheckPath ${tg.HealthCheckPath}, want ${HTTP_READY_PATH} (ready: every model loaded)`);
        if (String(matcher.HttpCode) !== "200") p.push(`Matcher.HttpCode ${matcher.HttpCode}; ready is 200, not ready is 400`);
      }
      targetGroups.set(tg.Name, tg);
      return p;
    });
  }

  const sdFile = "deploy/ecs/service-definition.json";
  check("ecs: service definition matches the task definition", () => {
    if (!exists(sdFile)) return [`${sdFile} is missing`];
    const sd = JSON.parse(read(sdFile));
    const p = [];
    if (sd.launchType !== "FARGATE" && !(sd.capacityProviderStrategy || []).some((c) => /FARGATE/.test(c.capacityProvider))) p.push("service does not run on Fargate");
    if (!sd.networkConfiguration || !sd.networkConfiguration.awsvpcConfiguration) p.push("no awsvpcConfiguration");
    if (String(sd.taskDefinition).split(":")[0] !== td.family) p.push(`taskDefinition ${sd.taskDefinition} is not family ${td.family}`);
    for (const lb of sd.loadBalancers || []) {
      if (lb.containerName !== torii.name) p.push(`loadBalancer container ${lb.containerName} is not ${torii.name}`);
      if (![httpPort, grpcPort].includes(lb.containerPort)) p.push(`loadBalancer port ${lb.containerPort} is neither the HTTP port ${httpPort} nor the gRPC port ${grpcPort}`);
      const name = (/:targetgroup\/([^/]+)\//.exec(lb.targetGroupArn || "") || [])[1];
      const tg = targetGroups.get(name);
      if (!tg) p.push(`loadBalancer target group ${name} has no deploy/ecs/target-group-*.json`);
      else if (tg.Port !== lb.containerPort) p.push(`loadBalancer sends target group ${name} (port ${tg.Port}) to container port ${lb.containerPort}`);
    }
    if (httpPort !== null && !(sd.loadBalancers || []).some((lb) => lb.containerPort === httpPort)) p.push(`no load balancer on the HTTP port ${httpPort} (the ALB health check on ${HTTP_READY_PATH})`);
    if ((sd.desiredCount ?? 1) < 2) p.push("desiredCount < 2");
    const dc = sd.deploymentConfiguration || {};
    if ((dc.minimumHealthyPercent ?? 100) < 100) p.push("minimumHealthyPercent < 100 drops capacity during deploys");
    if (sd.loadBalancers && (sd.healthCheckGracePeriodSeconds ?? 0) < ((torii.healthCheck || {}).startPeriod ?? 0)) p.push("healthCheckGracePeriodSeconds is shorter than the container's startPeriod");
    return p;
  });
  facts.ecs = { httpPort, grpcPort, metricsPort, command: all };
}

// ================================================================= run
// A malformed file must end as a FAIL line, not as a stack trace.
for (const k of opts.k8s) {
  try {
    await checkK8s(k);
  } catch (e) {
    fail(`k8s[${k.name}]: manifests`, `cannot be checked: ${e.message}`);
  }
}
if (!opts.k8s.length) fail("k8s: rendered manifests", "none given");
try {
  checkEcs();
} catch (e) {
  fail("ecs: definitions", `cannot be checked: ${e.message}`);
}
try {
  await checkKserve({
    root: opts.root, check, fail, exists, read, parseFlags, unknownServerFlags, portFlag, exitTimeout, validateK8s, facts,
    SERVER_BIN, DEFAULTS: { http: DEFAULT_HTTP_PORT, grpc: DEFAULT_GRPC_PORT, metrics: DEFAULT_METRICS_PORT },
  });
} catch (e) {
  fail("kserve: manifests", `cannot be checked: ${e.message}`);
}
try {
  await checkObservability({ root: opts.root, check, fail, skip });
} catch (e) {
  fail("observability: rules and dashboards", `cannot be checked: ${e.message}`);
}

check("k8s: base and overlays agree on ports and health service names", () => {
  const views = Object.entries(facts.k8s || {});
  const p = [];
  for (const [name, v] of views.slice(1)) {
    const [baseName, b] = views[0];
    for (const k of ["httpPort", "grpcPort", "metricsPort", "livenessService", "readinessService"]) if (v[k] !== b[k]) p.push(`${name}.${k}=${v[k]} but ${baseName}.${k}=${b[k]}`);
  }
  if (facts.ecs && views.length && facts.ecs.grpcPort !== views[0][1].grpcPort) p.push(`ECS gRPC port ${facts.ecs.grpcPort} != Kubernetes ${views[0][1].grpcPort}`);
  if (facts.ecs && views.length && facts.ecs.httpPort !== views[0][1].httpPort) p.push(`ECS HTTP port ${facts.ecs.httpPort} != Kubernetes ${views[0][1].httpPort}`);
  return p;
});

// The flags every deploy file relies on must exist in the built binaries.
// (Each file's own flags were compared with --help in the checks above.)
const RELIED_ON = ["model-repository", "grpc-port", "metrics-port", "exit-timeout-secs", "strict-readiness", "model-control-mode"];
if (!serverFlags) skip("torii-server --help lists the flags deploy files rely on", "torii-server is not built; flags were checked for form only");
else check("torii-server --help lists the flags deploy files rely on", () => RELIED_ON.filter((f) => !serverFlags.has(f)).map((f) => `--${f} missing from torii-server --help`));
if (!healthFlags) skip("torii-health --help lists --address and --timeout-ms", "torii-health is not built");
else check("torii-health --help lists --address and --timeout-ms", () => ["address", "service", "timeout-ms"].filter((f) => !healthFlags.has(f)).map((f) => `--${f} missing from torii-health --help`));

if (pendingFlagUses.size) skip("torii-server HTTP flags", `not in this torii-server's --help yet (the HTTP frontend); checked once they are: ${[...pendingFlagUses].join(", ")}`);
facts.httpFlagsBuilt = !!serverFlags && [...PENDING_FLAGS].some((f) => serverFlags.has(f));
if (opts.facts) fs.writeFileSync(opts.facts, JSON.stringify(facts, null, 2));
console.log(`check.mjs totals: pass ${counts.pass}, fail ${counts.fail}, skip ${counts.skip}`);
process.exit(counts.fail ? 1 : 0);

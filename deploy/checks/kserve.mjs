// Checks of deploy/kserve/ (run by check.mjs): the ServingRuntime and the
// example InferenceServices.
//
// No cluster and no KServe CRD here (fetched files may not be committed), so:
//   1. each object is validated against our own JSON schema of the KServe
//      fields (deploy/checks/schemas/*.schema.json, written from KServe's
//      documented API);
//   2. the Kubernetes parts inside them (containers, volumes) are validated
//      against the Kubernetes schema, as the other manifests are;
//   3. the runtime's flags, ports, probes and formats are checked against
//      torii-server and against the InferenceServices that use it.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import Ajv from "ajv";

const here = path.dirname(fileURLToPath(import.meta.url));
export const KSERVE_DIR = "deploy/kserve";

// KServe's storage initializer downloads storageUri here and mounts it into
// the container named kserve-container.
const MODEL_MOUNT = "/mnt/models";
const MAIN_CONTAINER = "kserve-container";
// Kubernetes' default when terminationGracePeriodSeconds is not set; a
// ServingRuntime cannot set it.
const DEFAULT_GRACE = 30;
// Formats the runtime must offer (Triton style).
const REQUIRED_FORMATS = ["triton", "pytorch", "python", "ensemble"];

function loadSchema(name) {
  return JSON.parse(fs.readFileSync(path.join(here, "schemas", name), "utf8"));
}

function ajvErrors(validate, where) {
  return (validate.errors || []).map((e) => {
    const at = e.instancePath || "";
    const extra = e.params && e.params.additionalProperty ? ` '${e.params.additionalProperty}'` : e.params && e.params.allowedValues ? ` (${e.params.allowedValues.join(", ")})` : "";
    return `${where}${at}: ${e.message}${extra}`;
  });
}

export async function checkKserve(ctx) {
  const { root, check, fail, exists, read, parseFlags, unknownServerFlags, portFlag, exitTimeout, validateK8s, facts, SERVER_BIN, DEFAULTS } = ctx;
  if (!exists(KSERVE_DIR)) {
    fail("kserve: manifests", `${KSERVE_DIR} is missing`);
    return;
  }
  const objs = [];
  for (const f of fs.readdirSync(path.join(root, KSERVE_DIR)).filter((x) => /\.ya?ml$/.test(x)).sort()) {
    const rel = `${KSERVE_DIR}/${f}`;
    const docs = parseAllDocuments(read(rel));
    const errs = docs.flatMap((d) => d.errors.map((e) => e.message));
    if (errs.length) {
      fail(`kserve: ${rel} parses`, errs.join("; "));
      continue;
    }
    for (const d of docs) {
      const o = d.toJS();
      if (o) objs.push({ rel, obj: o });
    }
  }
  const ajv = new Ajv({ allErrors: true, strict: true });
  const validateRuntime = ajv.compile(loadSchema("kserve-servingruntime.schema.json"));
  const validateIsvc = ajv.compile(loadSchema("kserve-inferenceservice.schema.json"));

  const runtimes = objs.filter((x) => ["ServingRuntime", "ClusterServingRuntime"].includes(x.obj.kind));
  const isvcs = objs.filter((x) => x.obj.kind === "InferenceService");
  check("kserve: a ServingRuntime and an example InferenceService", () => {
    const p = [];
    if (runtimes.length !== 1) p.push(`${runtimes.length} ServingRuntime objects in ${KSERVE_DIR}; want one`);
    if (!isvcs.length) p.push(`no InferenceService in ${KSERVE_DIR}`);
    for (const x of objs) if (![...runtimes, ...isvcs].includes(x)) p.push(`${x.rel}: unexpected kind ${x.obj.kind}`);
    return p;
  });

  // Schema: ours for the KServe fields, Kubernetes' for the core types inside.
  // (validateK8s is async: the problems are gathered first, then reported.)
  for (const { rel, obj } of runtimes) {
    const id = `${obj.kind}/${obj.metadata && obj.metadata.name}`;
    const p = validateRuntime(obj) ? [] : ajvErrors(validateRuntime, obj.kind);
    const spec = obj.spec || {};
    if (Array.isArray(spec.containers)) {
      const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "servingruntime" }, spec: { containers: spec.containers } };
      if (spec.volumes) pod.spec.volumes = spec.volumes;
      p.push(...(await validateK8s(pod, `${obj.kind} (as a Pod)`)));
    }
    check(`kserve: schema ${id} (${rel})`, () => p);
  }
  for (const { rel, obj } of isvcs) {
    const id = `InferenceService/${obj.metadata && obj.metadata.name}`;
    const p = validateIsvc(obj) ? [] : ajvErrors(validateIsvc, "InferenceService");
    const model = ((obj.spec || {}).predictor || {}).model;
    if (model && typeof model === "object") {
      // The container part of the model spec: Kubernetes' Container.
      const container = { name: MAIN_CONTAINER };
      for (const [k, v] of Object.entries(model)) if (!["modelFormat", "runtime", "runtimeVersion", "protocolVersion", "storageUri", "storage", "confidential"].includes(k)) container[k] = v;
      const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "predictor" }, spec: { containers: [container] } };
      p.push(...(await validateK8s(pod, "InferenceService predictor.model (as a Pod container)")));
    }
    check(`kserve: schema ${id} (${rel})`, () => p);
  }
  if (runtimes.length !== 1) return;

  const sr = runtimes[0].obj;
  const spec = sr.spec || {};
  const main = (spec.containers || []).find((c) => c.name === MAIN_CONTAINER);
  const all = [...((main && main.command) || []).slice(1), ...((main && main.args) || [])];
  const { flags, problems } = parseFlags(all);
  const view = {};
  check(`kserve: ServingRuntime/${sr.metadata.name} runs torii-server on KServe's model mount`, () => {
    const p = [...problems];
    if (!main) return [`no container named ${MAIN_CONTAINER} (KServe injects the model mount and storageUri into that one)`];
    if (!main.command || main.command[0] !== SERVER_BIN) p.push(`${MAIN_CONTAINER} runs ${JSON.stringify(main.command)}, want ${SERVER_BIN}`);
    p.push(...unknownServerFlags(flags, `${MAIN_CONTAINER} args`));
    if (flags.get("model-repository") !== MODEL_MOUNT) p.push(`--model-repository=${flags.get("model-repository")}; KServe's storage initializer mounts the model at ${MODEL_MOUNT}`);
    if (["false", "0"].includes(String(flags.get("allow-http")))) p.push("--allow-http=false: protocol v2 over HTTP needs the HTTP port");
    view.httpPort = portFlag(flags, "http-port", DEFAULTS.http);
    view.grpcPort = portFlag(flags, "grpc-port", DEFAULTS.grpc);
    view.metricsPort = portFlag(flags, "metrics-port", DEFAULTS.metrics);
    view.exitSecs = exitTimeout(flags);
    if (new Set([view.httpPort, view.grpcPort, view.metricsPort]).size !== 3) p.push(`HTTP, gRPC and metrics ports must differ (${view.httpPort}, ${view.grpcPort}, ${view.metricsPort})`);
    const sc = main.securityContext || {};
    if (sc.runAsNonRoot !== true) p.push("runAsNonRoot is not true");
    if (facts.imageUid !== undefined && sc.runAsUser !== undefined && sc.runAsUser !== facts.imageUid) p.push(`runAsUser ${sc.runAsUser} differs from the image's USER ${facts.imageUid}`);
    if (sc.allowPrivilegeEscalation !== false) p.push("allowPrivilegeEscalation is not false");
    if (sc.readOnlyRootFilesystem === true && !(main.volumeMounts || []).some((m) => m.mountPath === "/tmp")) p.push("read-only root filesystem without a writable /tmp");
    const r = main.resources || {};
    if (!(r.requests && r.requests.cpu && r.requests.memory && r.limits && r.limits.memory)) p.push("no cpu/memory requests and memory limit");
    return p;
  });
  if (view.httpPort === undefined) return;

  check(`kserve: ServingRuntime/${sr.metadata.name} probes and metrics annotations`, () => {
    const p = [];
    const rp = main.readinessProbe;
    // torii-server listens before its models load: without an HTTP readiness
    // check Knative's TCP default would route traffic to a loading server.
    if (!rp || !rp.httpGet) p.push("no httpGet readinessProbe (a TCP check passes before the models are loaded)");
    else {
      if (rp.httpGet.path !== "/v2/health/ready") p.push(`readinessProbe asks ${rp.httpGet.path}, want /v2/health/ready`);
      if (rp.httpGet.port !== view.httpPort) p.push(`readinessProbe asks port ${rp.httpGet.port}, the HTTP port is ${view.httpPort}`);
    }
    const lp = main.livenessProbe;
    if (lp) {
      if (!lp.httpGet || lp.httpGet.path !== "/v2/health/live") p.push("livenessProbe must GET /v2/health/live (readiness would restart a pod whose model is loading)");
      else if (lp.httpGet.port !== view.httpPort) p.push(`livenessProbe asks port ${lp.httpGet.port}, the HTTP port is ${view.httpPort}`);
    }
    if (main.ports && main.ports.length) p.push("the runtime declares container ports; KServe then routes to the first one, and an InferenceService asking for gRPC could not choose (declare ports in the InferenceService)");
    // Without declared ports KServe sends HTTP to 8080.
    else if (view.httpPort !== 8080) p.push(`--http-port=${view.httpPort}; with no declared container port KServe routes HTTP to 8080`);
    const a = spec.annotations || {};
    if (a["prometheus.kserve.io/port"] !== String(view.metricsPort)) p.push(`annotation prometheus.kserve.io/port is ${a["prometheus.kserve.io/port"]}, --metrics-port is ${view.metricsPort}`);
    if (a["prometheus.kserve.io/path"] !== "/metrics") p.push("annotation prometheus.kserve.io/path is not /metrics");
    return p;
  });

  check(`kserve: ServingRuntime/${sr.metadata.name} protocols and Triton-style model formats`, () => {
    const p = [];
    const protos = spec.protocolVersions || [];
    for (const v of ["v2", "grpc-v2"]) if (!protos.includes(v)) p.push(`protocolVersions lacks ${v}`);
    for (const v of protos) if (!["v2", "grpc-v2"].includes(v)) p.push(`protocolVersions has ${v}; torii-server speaks only the v2 protocol`);
    const formats = spec.supportedModelFormats || [];
    for (const f of REQUIRED_FORMATS) if (!formats.some((x) => x.name === f)) p.push(`supportedModelFormats lacks ${f}`);
    const prio = new Map();
    for (const f of formats) {
      if (!f.autoSelect) continue;
      if (f.priority === undefined) p.push(`format ${f.name}: autoSelect without a priority`);
      if (prio.has(f.name) && prio.get(f.name) !== f.priority) p.push(`format ${f.name}: two priorities (KServe refuses the runtime)`);
      prio.set(f.name, f.priority);
    }
    if (spec.multiModel) p.push("multiModel: true needs a ModelMesh adapter; torii-server serves one model repository per pod");
    return p;
  });

  for (const { rel, obj } of isvcs) {
    const name = obj.metadata && obj.metadata.name;
    check(`kserve: InferenceService/${name} (${rel}) matches the runtime`, () => {
      const p = [];
      const pred = (obj.spec || {}).predictor || {};
      const model = pred.model;
      if (!model) return ["predictor has no model spec (modelFormat, runtime, storageUri)"];
      if (model.runtime !== sr.metadata.name) p.push(`runtime is ${model.runtime}, the runtime in ${KSERVE_DIR} is ${sr.metadata.name}`);
      const mf = model.modelFormat || {};
      const supported = (spec.supportedModelFormats || []).filter((f) => f.name === mf.name);
      if (!supported.length) p.push(`modelFormat ${mf.name} is not in the runtime's supportedModelFormats`);
      else if (mf.version !== undefined && !supported.some((f) => f.version === undefined || f.version === mf.version)) p.push(`modelFormat ${mf.name} version ${mf.version} is not supported (runtime: ${supported.map((f) => f.version).join(", ")})`);
      const proto = model.protocolVersion || "v1";
      if (!(spec.protocolVersions || []).includes(proto)) p.push(`protocolVersion ${proto} is not one of the runtime's (${(spec.protocolVersions || []).join(", ")})`);
      if (!model.storageUri) p.push("no storageUri: nothing would be mounted at /mnt/models");
      const ports = model.ports || [];
      const grpcPorts = ports.filter((x) => /grpc|h2c/.test(x.name || ""));
      if (proto.startsWith("grpc")) {
        // KServe routes to the first declared port; its name (h2c) makes it gRPC.
        if (!ports.length || !/grpc|h2c/.test(ports[0].name || "")) p.push("protocolVersion grpc-v2 but the first port is not named h2c (KServe would route HTTP/1 to it)");
        else if (ports[0].containerPort !== view.grpcPort) p.push(`port ${ports[0].name} is ${ports[0].containerPort}, the runtime's --grpc-port is ${view.grpcPort}`);
      } else if (grpcPorts.length && ports[0] === grpcPorts[0]) p.push("protocolVersion v2 (HTTP) but the first declared port is gRPC");
      else if (ports.length && ports[0].containerPort !== view.httpPort) p.push(`the first declared port ${ports[0].containerPort} is not the runtime's --http-port ${view.httpPort}`);
      const grace = pred.terminationGracePeriodSeconds ?? DEFAULT_GRACE;
      if (grace < view.exitSecs + 5) p.push(`terminationGracePeriodSeconds ${grace} < --exit-timeout-secs ${view.exitSecs} + 5 s: the pod would be killed mid-drain`);
      if (pred.minReplicas !== undefined && pred.maxReplicas !== undefined && pred.maxReplicas < pred.minReplicas) p.push("maxReplicas < minReplicas");
      return p;
    });
  }
  facts.kserve = view;
}

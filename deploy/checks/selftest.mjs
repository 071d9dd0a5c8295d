// Proves check.mjs can fail: copies the deploy files to a temporary tree,
// breaks one thing at a time (each mutation below is a mistake someone could
// make), renders, runs check.mjs, and expects the named check to go from PASS
// to FAIL. A mutation whose text is no longer in the file is an error too, so
// this list cannot silently rot when the deploy files change.
//
//   node selftest.mjs --root REPO

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { compare as compareMetricNames, scrapedNames } from "./metric-names.mjs";
import { usedMetricNames } from "./observability.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const rootIdx = process.argv.indexOf("--root");
const root = rootIdx > 0 ? process.argv[rootIdx + 1] : path.resolve(here, "../..");

const DEP = "deploy/k8s/base/deployment.yaml";
const SVC = "deploy/k8s/base/service.yaml";
const PDB = "deploy/k8s/base/pdb.yaml";
const TD = "deploy/ecs/task-definition.json";
const SD = "deploy/ecs/service-definition.json";
const DF = "deploy/Dockerfile";
const TGH = "deploy/ecs/target-group-http.json";
const TGG = "deploy/ecs/target-group-grpc.json";
const SR = "deploy/kserve/servingruntime.yaml";
const ISVC = "deploy/kserve/inferenceservice.yaml";
const ISVCG = "deploy/kserve/inferenceservice-grpc.yaml";
const RULES = "deploy/prometheus/torii-triton-compat.rules.yml";
const RTEST = "deploy/prometheus/torii-triton-compat.test.yml";
const DASH = "deploy/grafana/torii-dashboard.json";
const DASH_CHECK = `grafana: ${DASH}`;

// [what, file, from, to, check name prefix that must turn FAIL]
const MUTATIONS = [
  ["liveness asks readiness", DEP, "              service: liveness\n            periodSeconds: 10", '              service: ""\n            periodSeconds: 10', "k8s[base]: gRPC probes"],
  ["readiness on the wrong port", DEP, "readinessProbe:\n            grpc:\n              port: 8001", "readinessProbe:\n            grpc:\n              port: 8081", "k8s[base]: gRPC probes"],
  ["startup probe too short for model loads", DEP, "failureThreshold: 120", "failureThreshold: 6", "k8s[base]: gRPC probes"],
  ["grace period shorter than the drain", DEP, "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 20", "k8s[base]: terminationGracePeriodSeconds"],
  ["no preStop", DEP, "          lifecycle:\n            preStop:", "          lifecycleX:\n            preStop:", "k8s[base]: terminationGracePeriodSeconds"],
  ["a container may run as root", DEP, "            readOnlyRootFilesystem: true\n            runAsNonRoot: true", "            readOnlyRootFilesystem: true\n            runAsNonRoot: false", "k8s[base]: resources, non-root"],
  ["writable root filesystem", DEP, "            readOnlyRootFilesystem: true\n            runAsNonRoot: true", "            readOnlyRootFilesystem: false\n            runAsNonRoot: true", "k8s[base]: resources, non-root"],
  ["pod runs as a uid other than the image's", DEP, "        runAsUser: 10001", "        runAsUser: 10002", "k8s[base]: resources, non-root"],
  ["no memory limit on the server", DEP, "            limits:\n              cpu: \"2\"\n              memory: 4Gi", "            limits:\n              cpu: \"2\"", "k8s[base]: resources, non-root"],
  ["container port not an integer", DEP, "containerPort: 8001", 'containerPort: "8001"', "k8s[base]: schema Deployment/torii"],
  ["misspelt pod field (validate() alone accepts it)", DEP, "      topologySpreadConstraints:", "      topologySpreadConstraint:", "k8s[base]: schema Deployment/torii"],
  ["misspelt HPA target field", "deploy/k8s/base/hpa.yaml", "averageUtilization: 70", "averageUtilisation: 70", "k8s[base]: schema HorizontalPodAutoscaler/torii"],
  ["misspelt field in the EKS patch", "deploy/k8s/overlays/eks/deployment-eks.yaml", "      nodeSelector:", "      nodeSelectors:", "k8s[eks]: schema Deployment/torii"],
  ["EKS overlay resizes the server without a memory limit", "deploy/k8s/overlays/eks/deployment-eks.yaml", "            limits:\n              cpu: \"3\"\n              memory: 5Gi", "            limits:\n              cpu: \"3\"\n              memory: null", "k8s[eks]: resources, non-root"],
  ["flag spelled with underscores", DEP, "- --grpc-port=8001", "- --grpc_port=8001", "k8s[base]: torii-server command and flags"],
  ["metrics flag moved, manifests not", DEP, "- --metrics-port=8002", "- --metrics-port=9102", "k8s[base]: container ports match"],
  ["model repository not mounted", DEP, "- --model-repository=/models", "- --model-repository=/srv/models", "k8s[base]: model repository volume"],
  ["scrape annotation on the wrong port", SVC, 'prometheus.io/port: "8002"', 'prometheus.io/port: "9102"', "k8s[base]: Services route"],
  ["PDB blocks every drain", PDB, "maxUnavailable: 1", "maxUnavailable: 0", "k8s[base]: selectors, HorizontalPodAutoscaler and PodDisruptionBudget"],
  ["ECS on EC2", TD, '"requiresCompatibilities": ["FARGATE"]', '"requiresCompatibilities": ["EC2"]', "ecs: task definition structure"],
  ["ECS memory not a Fargate size", TD, '"memory": "4096"', '"memory": "3000"', "ecs: task definition structure"],
  ["ECS key typo", TD, '"readonlyRootFilesystem"', '"readOnlyRootFilesystem"', "ecs: task definition structure"],
  ["ECS without awslogs", TD, '"awslogs-stream-prefix": "torii",', '"awslogs-stream-prefx": "torii",', "ecs: task definition structure"],
  ["ECS health check on the wrong port", TD, '"--address=127.0.0.1:8001"', '"--address=127.0.0.1:8009"', "ecs: healthCheck"],
  ["ECS health check missing", TD, '"healthCheck": {', '"healthCheckX": {', "ecs: task definition structure"],
  ["ECS kills the drain", TD, '"stopTimeout": 45', '"stopTimeout": 20', "ecs: stopTimeout"],
  ["ECS service points at another port", SD, '"containerPort": 8001', '"containerPort": 8002', "ecs: service definition"],
  ["image builds without the project's script", DF, "bash scripts/build.sh ${TORII_CMAKE_ARGS}", "cmake -S . -B build && cmake --build build", "dockerfile: build stage runs the project's scripts"],
  ["image skips install-deps", DF, "RUN bash scripts/install-deps.sh && rm", "RUN apt-get update && rm", "dockerfile: build stage runs the project's scripts"],
  ["runtime stage installs build deps", DF, "bash /tmp/install-deps.sh --runtime", "bash /tmp/install-deps.sh", "dockerfile: multi-stage"],
  ["runtime stage not slim", DF, "FROM debian:bookworm-slim AS runtime", "FROM debian:bookworm AS runtime", "dockerfile: multi-stage"],
  ["image runs as root", DF, "USER 10001:10001", "USER root", "dockerfile: non-root USER"],
  ["metrics port not exposed", DF, "EXPOSE 8000 8001 8002", "EXPOSE 8000 8001", "dockerfile: non-root USER"],
  ["HTTP port not exposed", DF, "EXPOSE 8000 8001 8002", "EXPOSE 8001 8002", "dockerfile: non-root USER"],
  // HTTP port in Kubernetes and ECS
  ["container's HTTP port is not the server's", DEP, "containerPort: 8000", "containerPort: 8080", "k8s[base]: container ports match"],
  ["Service without the HTTP port", SVC, "    - name: http\n      port: 8000\n      targetPort: http\n      protocol: TCP\n      appProtocol: http\n", "", "k8s[base]: Services route"],
  ["ECS task maps another HTTP port", TD, '"containerPort": 8000, "hostPort": 8000', '"containerPort": 8080, "hostPort": 8080', "ecs: torii-server entry point, flags and ports"],
  ["ALB health check on liveness", TGH, '"/v2/health/ready"', '"/v2/health/live"', `ecs: ${TGH}`],
  ["ALB health check expects any 2xx/3xx", TGH, '"HttpCode": "200"', '"HttpCode": "200-399"', `ecs: ${TGH}`],
  ["target group parameter misspelt", TGH, '"HealthCheckPath"', '"HealthcheckPath"', `ecs: ${TGH}`],
  ["gRPC target group success code", TGG, '"GrpcCode": "0"', '"GrpcCode": "0-99"', `ecs: ${TGG}`],
  ["HTTP target group sent to the metrics port", SD, '"containerPort": 8000', '"containerPort": 8002', "ecs: service definition"],
  // KServe
  ["ServingRuntime field misspelt", SR, "  supportedModelFormats:", "  supportedModelFormat:", "kserve: schema ServingRuntime/torii"],
  ["runtime container field misspelt", SR, "      readinessProbe:", "      readinesProbe:", "kserve: schema ServingRuntime/torii"],
  ["protocol version KServe does not know", SR, "    - grpc-v2", "    - grpcv2", "kserve: schema ServingRuntime/torii"],
  ["HTTP flag misspelt", SR, "--http-port=8080", "--http_port=8080", "kserve: ServingRuntime/torii runs torii-server"],
  ["model not read from KServe's mount", SR, "--model-repository=/mnt/models", "--model-repository=/models", "kserve: ServingRuntime/torii runs torii-server"],
  ["runtime container not kserve-container", SR, "- name: kserve-container", "- name: torii", "kserve: ServingRuntime/torii runs torii-server"],
  ["readiness asks the gRPC port", SR, "          port: 8080", "          port: 9000", "kserve: ServingRuntime/torii probes"],
  ["readiness asks liveness", SR, "path: /v2/health/ready", "path: /v2/health/live", "kserve: ServingRuntime/torii probes"],
  ["metrics annotation on another port", SR, 'prometheus.kserve.io/port: "8002"', 'prometheus.kserve.io/port: "9102"', "kserve: ServingRuntime/torii probes"],
  ["no python model format", SR, "    - name: python\n", "    - name: python3\n", "kserve: ServingRuntime/torii protocols"],
  ["InferenceService names another runtime", ISVC, "runtime: torii", "runtime: kserve-tritonserver", "kserve: InferenceService/torii-examples ("],
  ["InferenceService format the runtime lacks", ISVC, "        name: triton\n", "        name: tensorflow\n", "kserve: InferenceService/torii-examples ("],
  ["gRPC InferenceService on the HTTP port", ISVCG, "containerPort: 9000", "containerPort: 8080", "kserve: InferenceService/torii-examples-grpc"],
  ["storageUri without a scheme", ISVC, "storageUri: s3://my-company-models", "storageUri: my-company-models", "kserve: schema InferenceService/torii-examples ("],
  ["predictor field misspelt", ISVC, "    minReplicas: 2", "    minReplica: 2", "kserve: schema InferenceService/torii-examples ("],
  ["model container field misspelt", ISVCG, "      ports:", "      port:", "kserve: schema InferenceService/torii-examples-grpc"],
  ["drain outlasts the default grace period", SR, "--exit-timeout-secs=20", "--exit-timeout-secs=30", "kserve: InferenceService/torii-examples ("],
  // Prometheus rules
  ["Triton series misspelt", RULES, "record: nv_inference_exec_count", "record: nv_inference_exec_cnt", "prometheus: rules produce"],
  ["microseconds rule gives milliseconds", RULES, "torii_inference_queue_duration_seconds_total * 1e6", "torii_inference_queue_duration_seconds_total * 1e3", "prometheus: rules produce"],
  ["rule aggregates the version away", RULES, "expr: torii_inference_pending_requests", "expr: sum without (version) (torii_inference_pending_requests)", "prometheus: rules produce"],
  ["failure rule sums the model away", RULES, 'sum without (reason) (torii_inference_request_failure_total{reason="cancelled"})', 'sum without (model) (torii_inference_request_failure_total{reason="cancelled"})', "prometheus: rules produce"],
  ["failure rule relabels the model", RULES, '"reason", "CANCELED", "", ""', '"model", "CANCELED", "", ""', "prometheus: rules produce"],
  ["rule does not parse", RULES, "expr: torii_inference_count_total", "expr: torii_inference_count_total[", "prometheus: promtool check rules"],
  ["unit test expects a wrong value", RTEST, "value: 2000000", "value: 2000", "prometheus: promtool test rules"],
  // Grafana dashboard
  ["panel field misspelt", DASH, '"gridPos": {', '"gridPoss": {', `${DASH_CHECK} matches Grafana's schema`],
  ["legend mode Grafana does not know", DASH, '"displayMode": "list"', '"displayMode": "lists"', `${DASH_CHECK} matches Grafana's schema`],
  ["query does not parse", DASH, "[$__rate_interval]))\"", "[$__rate_interval])\"", `${DASH_CHECK} queries parse as PromQL`],
  ["query uses an undefined variable", DASH, 'model=~\\"$model\\"', 'model=~\\"$models\\"', `${DASH_CHECK} layout, ids, variables`],
  ["hard-coded data source", DASH, '"uid": "${datasource}"', '"uid": "P1809F7CD0C75ACF3"', `${DASH_CHECK} layout, ids, variables`],
  ["failures not broken down by reason", DASH, "sum by (model, reason) (rate(torii_inference_request_failure_total", "sum by (model) (rate(torii_inference_request_failure_total", `${DASH_CHECK} shows traffic`],
  ["HEALTHCHECK flag typo", DF, "--start-period=300s", "--start-perod=300s", "dockerfile: lint (dockerfile-utils)"],
  ["untagged base image", DF, "FROM debian:bookworm-slim AS build", "FROM debian AS build", "dockerfile: lint (dockerfilelint)"],
  ["build tree sent to the daemon", ".dockerignore", "\nbuild\n", "\n", ".dockerignore"],
];

// The flags torii-server documents; stands in for a built binary's --help.
const FAKE_SERVER_HELP = [
  "model-repository", "grpc-port", "grpc-address", "metrics-port", "exit-timeout-secs", "strict-readiness",
  "model-control-mode", "repository-poll-secs", "log-verbose", "log-format", "backend-directory",
].map((f) => `  --${f}=VALUE  ...`).join("\n");
const FAKE_HEALTH_HELP = "  --address  --service  --timeout-ms\n";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "torii-deploy-selftest-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
// The dashboard's TypeScript check gives the same answer for the same text:
// compute it once per distinct dashboard, not once per broken copy.
process.env.TORII_CHECK_CACHE_DIR = fs.mkdtempSync(path.join(tmp, "cache-"));
fs.writeFileSync(path.join(tmp, "server-help.txt"), FAKE_SERVER_HELP);
fs.writeFileSync(path.join(tmp, "health-help.txt"), FAKE_HEALTH_HELP);

function copyTree(dst) {
  const skip = (src) => src.includes(`${path.sep}node_modules`);
  for (const rel of ["deploy", "scripts", ".dockerignore", ".ci", "README.md"]) {
    const src = path.join(root, rel);
    if (fs.existsSync(src)) fs.cpSync(src, path.join(dst, rel), { recursive: true, filter: (s) => !skip(s) });
  }
}

// Renders the kustomizations of `tree` (or reuses `renders`) and runs check.mjs on it.
function render(tree) {
  const out = [];
  for (const [name, dir] of [["base", "deploy/k8s/base"], ["eks", "deploy/k8s/overlays/eks"]]) {
    const r = spawnSync("kubectl", ["kustomize", path.join(tree, dir)], { encoding: "utf8" });
    if (r.status !== 0) return { error: `kubectl kustomize ${dir}: ${r.stderr}` };
    const file = path.join(tree, `${name}.rendered.yaml`);
    fs.writeFileSync(file, r.stdout);
    out.push("--k8s", `${name}=${file}`);
  }
  return { args: out };
}

function run(tree, renders) {
  const args = [path.join(here, "check.mjs"), "--root", tree, "--server-help", path.join(tmp, "server-help.txt"), "--health-help", path.join(tmp, "health-help.txt"), ...renders];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", () => {});
    child.on("close", (status) => {
      const lines = stdout.split("\n");
      resolve({ status, pass: lines.filter((l) => l.startsWith("PASS ")).map((l) => l.slice(5)), fail: lines.filter((l) => l.startsWith("FAIL ")).map((l) => l.slice(5)) });
    });
  });
}

const baseTree = path.join(tmp, "baseline");
copyTree(baseTree);
const baseRender = render(baseTree);
if (baseRender.error) {
  console.log(`baseline does not render: ${baseRender.error}`);
  process.exit(1);
}
const baseline = await run(baseTree, baseRender.args);

let problems = 0;
async function mutate([what, file, from, to, expect], i) {
  const passedBefore = baseline.pass.some((l) => l.startsWith(expect));
  if (!passedBefore) {
    problems++;
    return `  BROKEN TEST "${what}": check "${expect}" does not pass on the unmodified files`;
  }
  const tree = path.join(tmp, `m${i}`);
  copyTree(tree);
  const f = path.join(tree, file);
  const text = fs.readFileSync(f, "utf8");
  if (!text.includes(from)) {
    problems++;
    return `  STALE MUTATION "${what}": ${file} no longer contains ${JSON.stringify(from)}`;
  }
  fs.writeFileSync(f, text.replace(from, to));
  // Only a change under deploy/k8s can change what kustomize renders.
  const rendered = file.startsWith("deploy/k8s/") ? render(tree) : baseRender;
  try {
    if (rendered.error) return `  caught "${what}" (render fails)`;
    const r = await run(tree, rendered.args);
    if (r.status !== 0 && r.fail.some((l) => l.startsWith(expect))) return `  caught "${what}": ${r.fail.find((l) => l.startsWith(expect))}`;
    problems++;
    return `  MISSED "${what}": expected "${expect}" to fail; exit ${r.status}, failures: ${r.fail.join(" | ") || "none"}`;
  } finally {
    fs.rmSync(tree, { recursive: true, force: true });
  }
}

// Two at a time: the machines have two cores.
const results = new Array(MUTATIONS.length);
let next = 0;
async function worker() {
  while (next < MUTATIONS.length) {
    const i = next++;
    results[i] = await mutate(MUTATIONS[i], i);
  }
}
await Promise.all([worker(), worker()]);
for (const line of results) console.log(line);

// metric-names.mjs (run against a live server by deploy-checks.sh) must pass
// a scrape that has every family the rules and dashboard read, and fail one
// that lacks a family.
{
  const used = [...usedMetricNames(root).keys()];
  const families = new Map();
  for (const n of used) {
    const h = /^(.*)_(bucket|sum|count)$/.exec(n);
    if (h && n.endsWith("_bucket")) families.set(h[1], "histogram");
    else if (!h || !used.includes(`${h[1]}_bucket`)) families.set(n, n.endsWith("_total") ? "counter" : "gauge");
  }
  const scrape = (skipName) => [...families].filter(([f]) => f !== skipName).map(([f, t]) => `# TYPE ${f} ${t}`).join("\n") + "\n";
  const full = compareMetricNames(root, scrape(null));
  const dropped = "torii_model_ready";
  const partial = compareMetricNames(root, scrape(dropped));
  const histogramOk = scrapedNames("# TYPE x_seconds histogram\n").has("x_seconds_bucket");
  if (full.missing.length || full.pending.length || !partial.missing.some((m) => m.startsWith(`${dropped} `)) || !histogramOk) {
    problems++;
    console.log(`  MISSED "a metric the dashboard reads is not exported": complete scrape missing ${JSON.stringify(full.missing)}, pending ${JSON.stringify(full.pending)}; scrape without ${dropped} missing ${JSON.stringify(partial.missing)}`);
  } else console.log(`  caught "a metric the dashboard reads is not exported": ${partial.missing[0]}`);
}

console.log(`selftest: ${MUTATIONS.length + 1 - problems} of ${MUTATIONS.length + 1} broken copies caught`);
process.exit(problems ? 1 : 0);

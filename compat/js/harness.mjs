// Test harness: a `podid dev` (or, for short-lived credentials, `podid server` + `podid agent`)
// on free loopback ports in a temp dir, a role and association made with the admin key from
// dev.env, and `podid exec` to run a program as a pod.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync, openSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { IAMClient, CreateRoleCommand } from "@aws-sdk/client-iam";
import { EKSClient, CreatePodIdentityAssociationCommand } from "@aws-sdk/client-eks";

const here = path.dirname(fileURLToPath(import.meta.url));
export const PODID_BIN = process.env.PODID_BIN || path.resolve(here, "../../target/debug/podid");
export const ACCOUNT = "000000000000";
const TRUST = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "pods.eks.amazonaws.com" },
                Action: ["sts:AssumeRole", "sts:TagSession"] }],
});

/** The environment without the developer's AWS or podid settings. */
export function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("AWS_") && !k.startsWith("PODID_")) env[k] = v;
  }
  return { ...env, ...extra };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function readDevEnv(file) {
  const env = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = line.trim().match(/^export (\w+)=(.*)$/);
    if (m) env[m[1]] = m[2].replace(/^'(.*)'$/, "$1").replace(/^"(.*)"$/, "$1");
  }
  return env;
}

/** Starts a podid process logging to `dir/<name>.log`; killed by `stopAll`. */
function start(procs, dir, name, args, env) {
  const log = openSync(path.join(dir, `${name}.log`), "a");
  const proc = spawn(PODID_BIN, args, { stdio: ["ignore", log, log], env });
  proc.logFile = path.join(dir, `${name}.log`);
  procs.push(proc);
  return proc;
}

async function until(what, proc, check, seconds = 60) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${what} exited: ${readFileSync(proc.logFile, "utf8").slice(-3000)}`);
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what} not ready after ${seconds}s: ${readFileSync(proc.logFile, "utf8").slice(-3000)}`);
}

async function stop(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), 20000);
  await exited;
  clearTimeout(timer);
}

/**
 * A running podid: `{ dataDir, env (dev.env), agentUrl, endpoint, stop() }`.
 * With `maxCredentialDuration` (e.g. "60s"), `podid dev` only initialises the data dir (signing
 * key, cluster `dev`, dev.env) and is stopped; then `podid server --max-credential-duration`
 * and `podid agent` serve from the same data dir, because `podid dev` has no such flag.
 */
export async function startPodid({ maxCredentialDuration } = {}) {
  const dataDir = mkdtempSync(path.join(tmpdir(), "podid-compat-js-"));
  const procs = [];
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const dev = start(procs, dataDir, "dev", ["dev", "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`, "--log-format", "json"], cleanEnv());
  const envFile = path.join(dataDir, "dev.env");
  await until("podid dev", dev, async () => existsSync(envFile) && "PODID_AGENT_URL" in readDevEnv(envFile));
  const env = readDevEnv(envFile);
  let agentUrl = env.PODID_AGENT_URL;
  if (maxCredentialDuration) {
    await stop(dev);
    const server = start(procs, dataDir, "server", ["server", "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`,
      "--log-format", "json", "--max-credential-duration", maxCredentialDuration], cleanEnv());
    await until("podid server", server, async () => (await fetch(`${endpoint}/healthz`)).ok);
    const [agentPort, probePort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    const stateDir = path.join(dataDir, "agent-state");
    mkdirSync(stateDir, { recursive: true });
    const agent = start(procs, dataDir, "agent", ["agent", "--cluster-name", "dev", "--endpoint", endpoint,
      "--bind-hosts", "127.0.0.1", "--port", String(agentPort), "--probe-port", String(probePort),
      "--metrics-address", "127.0.0.1", "--metrics-port", String(metricsPort), "--state-dir", stateDir],
      cleanEnv({ AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY, AWS_REGION: env.AWS_REGION }));
    await until("podid agent", agent, async () => (await fetch(`http://127.0.0.1:${probePort}/readyz`)).ok);
    agentUrl = `http://127.0.0.1:${agentPort}`;
  }
  return {
    dataDir, env, agentUrl, endpoint,
    stop: async () => {
      for (const p of procs.reverse()) await stop(p);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Creates role `role` and associates it with `namespace/serviceAccount` in cluster dev. */
export async function associate(podid, { role, namespace = "default", serviceAccount }) {
  const common = {
    endpoint: podid.endpoint,
    region: podid.env.AWS_REGION,
    credentials: { accessKeyId: podid.env.AWS_ACCESS_KEY_ID, secretAccessKey: podid.env.AWS_SECRET_ACCESS_KEY },
    maxAttempts: 1,
  };
  const iam = new IAMClient(common);
  const created = await iam.send(new CreateRoleCommand({ RoleName: role, AssumeRolePolicyDocument: TRUST }));
  const eks = new EKSClient(common);
  await eks.send(new CreatePodIdentityAssociationCommand({
    clusterName: "dev", namespace, serviceAccount, roleArn: created.Role.Arn,
  }));
  return created.Role.Arn;
}

/** Runs `cmd` under `podid exec` as a pod; resolves to `{ code, stdout, stderr }`. */
export function execAsPod(podid, { namespace = "default", serviceAccount, podName }, cmd) {
  const args = ["exec", "--data-dir", podid.dataDir, "--agent-url", podid.agentUrl, "--endpoint", podid.endpoint,
    "--namespace", namespace, "--service-account", serviceAccount];
  if (podName) args.push("--pod-name", podName);
  const proc = spawn(PODID_BIN, [...args, "--", ...cmd], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  proc.stdout.on("data", (d) => { stdout += d; });
  proc.stderr.on("data", (d) => { stderr += d; });
  return new Promise((resolve) => proc.on("close", (code) => resolve({ code, stdout, stderr })));
}

// One GetCallerIdentity through the default credential chain under `podid exec`.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startPodid, associate, execAsPod, ACCOUNT } from "../harness.mjs";

const whoami = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../whoami.mjs");

test("the default chain gets pod identity credentials from the agent", async () => {
  const podid = await startPodid();
  after(() => podid.stop());
  await associate(podid, { role: "js-app", serviceAccount: "js-app" });
  const run = await execAsPod(podid, { serviceAccount: "js-app", podName: "js-pod" }, [process.execPath, whoami]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout.trim(), new RegExp(`^ARN arn:aws:sts::${ACCOUNT}:assumed-role/js-app/eks-dev-js-pod-`));
});

test("a service account without an association gets no credentials", async () => {
  const podid = await startPodid();
  after(() => podid.stop());
  const run = await execAsPod(podid, { serviceAccount: "nobody" }, [process.execPath, whoami]);
  assert.notEqual(run.code, 0, run.stdout);
  assert.match(run.stderr, /GetCallerIdentity failed: CredentialsProviderError: Could not load credentials/);
});

// Long-running: 60 s credentials, GetCallerIdentity every 2 s for 80 s. The SDK must renew its
// container credentials without a failed call, and hold more than one access key over the run.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startPodid, associate, execAsPod, ACCOUNT } from "../harness.mjs";

const whoami = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../whoami.mjs");
const LIFETIME = 60;
const RUN = 80;

test("credentials are renewed across their lifetime without a failed call", { timeout: (RUN + 90) * 1000 }, async (t) => {
  const podid = await startPodid({ maxCredentialDuration: `${LIFETIME}s` });
  after(() => podid.stop());
  await associate(podid, { role: "js-long", serviceAccount: "js-long" });
  const run = await execAsPod(podid, { serviceAccount: "js-long", podName: "js-long" }, [process.execPath, whoami, String(RUN), "2"]);
  assert.equal(run.code, 0, `${run.stderr}\n${run.stdout}`);
  const lines = run.stdout.trim().split("\n");
  assert.ok(lines.length >= RUN / 3, `only ${lines.length} calls`);
  const keys = new Set();
  for (const line of lines) {
    const m = line.match(new RegExp(`^ARN arn:aws:sts::${ACCOUNT}:assumed-role/js-long/eks-dev-js-long-\\S+ KEY (\\S+)$`));
    assert.ok(m, line);
    keys.add(m[1]);
  }
  t.diagnostic(`${lines.length} calls, ${keys.size} access keys`);
  assert.ok(keys.size > 1, `one access key over ${RUN}s of ${LIFETIME}s credentials: ${[...keys]}`);
});

// Calls STS GetCallerIdentity with the SDK's default configuration and credential chain: no
// credentials, endpoint or region in code. Under `podid exec` the chain can only find the
// container provider (the node agent), and AWS_ENDPOINT_URL_STS points the client at podid.
//
//   node whoami.mjs                    one call; prints `ARN <arn>`
//   node whoami.mjs LOOP_S EVERY_S     calls every EVERY_S seconds for LOOP_S seconds; prints
//                                      `ARN <arn> KEY <access key id>` per call, the key being
//                                      the one the client's own credential cache holds
// Any failed call exits non-zero at once.
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";

const [loopSeconds, everySeconds] = process.argv.slice(2).map(Number);
const sts = new STSClient({ maxAttempts: 1 });

async function once(withKey) {
  const out = await sts.send(new GetCallerIdentityCommand({}));
  if (!withKey) return `ARN ${out.Arn}`;
  const creds = await sts.config.credentials();
  return `ARN ${out.Arn} KEY ${creds.accessKeyId}`;
}

try {
  if (!loopSeconds) {
    console.log(await once(false));
  } else {
    const end = Date.now() + loopSeconds * 1000;
    while (Date.now() < end) {
      console.log(await once(true));
      await new Promise((r) => setTimeout(r, everySeconds * 1000));
    }
  }
} catch (e) {
  console.error(`GetCallerIdentity failed: ${e.name}: ${e.message}`);
  process.exit(1);
}

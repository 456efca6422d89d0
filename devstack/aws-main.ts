/**
 * The AWS front's process (started by stack.ts as `node --import tsx devstack/aws-main.ts <json>`):
 * configures moto, serves the front, seeds moto through it, then reports ready on GET /_ready.
 * A process of its own because the AWS SDK takes many seconds to load inside vitest's global setup,
 * and so that it dies with the stack like the other parts.
 */
import { AWS_DEFAULTS, configureMoto, SEEDED_CLUSTERS, type AwsFrontOptions } from './aws.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as AwsFrontOptions;
const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
const fail = (err: unknown) => {
  log(`[aws-front] setup failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
};

/**
 * moto builds each service's backend on its first call (EC2's takes a second or two: default VPC,
 * subnets, AMIs; IAM's parses every AWS managed policy). Start that now, while this process is still
 * loading the AWS SDK, instead of on the seed's first calls. moto reads the service from the
 * credential scope and does not check signatures.
 */
function warmUp(service: string, version: string, action: string): Promise<unknown> {
  return fetch(opts.motoUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `AWS4-HMAC-SHA256 Credential=test/20200101/${AWS_DEFAULTS.region}/${service}/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: `Action=${action}&Version=${version}`,
  }).then((r) => r.arrayBuffer());
}

async function motoUp(): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (
    !(await fetch(`${opts.motoUrl}/moto-api/config`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (Date.now() > deadline) throw new Error(`moto did not answer on ${opts.motoUrl} within 60s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const warm = (async () => {
  await motoUp();
  await configureMoto(opts.motoUrl);
  await Promise.all([warmUp('ec2', '2016-11-15', 'DescribeVpcs'), warmUp('iam', '2010-05-08', 'ListRoles')]);
})();
warm.catch(fail);

const { startFront } = await import('../test/aws/front.js');
const front = await startFront({
  motoUrl: opts.motoUrl,
  region: AWS_DEFAULTS.region,
  accountId: AWS_DEFAULTS.accountId,
  port: opts.port,
  kubeBackedClusters: Object.values(SEEDED_CLUSTERS),
  tokenCluster: SEEDED_CLUSTERS.local,
  eniReleaseSeconds: opts.eniReleaseSeconds,
  functionPendingSeconds: opts.functionPendingSeconds,
  accessEntryDelaySeconds: opts.accessEntryDelaySeconds,
  lambdaWorkDir: opts.lambdaWorkDir,
  log,
});
log(`[aws-front] listening on ${front.url}, moto at ${opts.motoUrl}`);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void front.close().finally(() => process.exit(0)));
}

try {
  await warm;
  const { seedAws } = await import('./aws-seed.js');
  const seeded = await seedAws(front.url, front.faultsUrl);
  front.resetCalls(); // the seed is not the code under test's
  front.setReady(seeded);
  log(`[aws-front] seeded: ${JSON.stringify(seeded)}`);
} catch (err) {
  fail(err);
}

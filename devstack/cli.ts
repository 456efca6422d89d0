/**
 * `npm run stack -- up`     start the local stack on fixed ports and stay in the foreground
 *                           (`up --aws`: with moto behind the AWS test front, as the tests have it)
 * `npm run stack -- tools`  only build/install the stack's binaries
 * `npm start`               (`dev`) the stack plus a worker and a demo workload to respond to
 */
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startStack, type Stack, type StackAws } from './stack.js';
import { ensureTools } from './tools.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Fixed ports so the UI URL and kubeconfig stay the same between runs. */
export const UP_DEFAULTS = {
  stateDir: path.join(REPO_ROOT, '.stack'),
  temporalPort: 7233,
  temporalUiPort: 8233,
  kubeApiPort: 6443,
  awsPort: 4566,
};

/**
 * Starts the stack, prints how to reach it, runs `onReady` (e.g. a worker for a `dev`
 * command), then stays up until Ctrl-C/SIGTERM or until a part of the stack dies.
 */
export async function runUp(onReady?: (stack: Stack) => Promise<void>, opts: { aws?: boolean; awsInBackground?: boolean } = {}): Promise<never> {
  const stack = await startStack({ ...UP_DEFAULTS, headless: false, aws: opts.aws ?? false, awsInBackground: opts.awsInBackground ?? false });
  let stopping = false;
  const stopAndExit = async (code: number): Promise<never> => {
    stopping = true;
    console.log('stopping the devstack...');
    await stack.stop();
    process.exit(code);
  };
  process.once('SIGINT', () => void stopAndExit(0));
  process.once('SIGTERM', () => void stopAndExit(0));

  console.log(
    [
      '',
      'pod-responder devstack is up',
      `  Temporal address  ${stack.temporalAddress}`,
      `  Temporal UI       ${stack.temporalUiUrl}`,
      `  kubeconfig        ${stack.kubeconfigPath}`,
      `  Kubernetes API    ${stack.kubeApiUrl}`,
      `  logs              ${UP_DEFAULTS.stateDir}/*.log`,
      ...(stack.aws ? awsLines(stack.aws) : stack.awsReady ? ['  AWS               starting (moto behind the test front); its lines follow when it is ready'] : []),
      '',
      `  export TEMPORAL_ADDRESS=${stack.temporalAddress} KUBECONFIG=${stack.kubeconfigPath}`,
      '',
      'Press Ctrl-C to stop (state is discarded; the next `up` starts fresh).',
    ].join('\n'),
  );
  if (!stack.aws && stack.awsReady) {
    stack.awsReady.then(
      (aws) => console.log(['', 'AWS is ready too', ...awsLines(aws), ''].join('\n')),
      (err: unknown) => {
        if (stopping) return; // stopped before AWS was ready
        console.error(`the AWS part of the devstack failed: ${err instanceof Error ? err.message : String(err)}`);
        void stopAndExit(1);
      },
    );
  }

  try {
    await onReady?.(stack);
  } catch (err) {
    if (stopping) return new Promise<never>(() => {}); // Ctrl-C while it was starting: the stop exits
    console.error(err);
    return stopAndExit(1);
  }
  console.error(await stack.crashed);
  return stopAndExit(1);
}

function awsLines(aws: StackAws): string[] {
  return [
    `  AWS endpoint      ${aws.endpoint} (moto behind the test front; faults: ${aws.faultsUrl})`,
    `  EKS clusters      ${aws.clusters.local}, ${aws.clusters.configMapOnly} (region ${aws.region})`,
    `  export AWS_ENDPOINT_URL=${aws.endpoint} AWS_REGION=${aws.region} AWS_ACCESS_KEY_ID=${aws.accessKeyId} AWS_SECRET_ACCESS_KEY=${aws.secretAccessKey}`,
  ];
}

async function main(cmd: string | undefined): Promise<void> {
  switch (cmd) {
    case 'up':
      await runUp(undefined, { aws: process.argv.includes('--aws') });
      break;
    case 'dev': {
      // Loading the worker, forwarder and SDKs takes seconds: while the stack starts, not before it.
      const dev = import('./dev.js');
      dev.catch(() => undefined); // awaited below
      // With moto: the demo's evidence bundle goes to its S3.
      // AWS in the background: the worker needs it only for evidence, and it is the slowest part to start.
      await runUp(async (stack) => (await dev).startDev(stack, UP_DEFAULTS.stateDir), { aws: true, awsInBackground: true });
      break;
    }
    case 'tools': {
      const tools = await ensureTools();
      for (const [name, p] of Object.entries(tools)) console.log(`${name.padEnd(14)}${p}`);
      break;
    }
    default:
      console.error('usage: tsx devstack/cli.ts <up [--aws]|dev|tools>');
      process.exit(2);
  }
}

// Run only as a script, so another module can import runUp().
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv[2]).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}

/**
 * `npm run stack -- up`     start the local stack on fixed ports and stay in the foreground
 *                           (`up --aws`: with moto behind the AWS test front, as the tests have it)
 * `npm run stack -- tools`  only build/install the stack's binaries
 * `npm start`               (`dev`) the stack plus a worker and a demo workload to respond to
 * `up` and `dev` also take `--free-ports` (when 7233, 6443 or 4566 are taken: any free ones) and
 * `--state-dir <dir>` (another stack's state and logs than .stack/, so two can run at once).
 */
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { RealNode } from './real-node.js';
import { startStack, type Stack, type StackAws, type StackOptions } from './stack.js';
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
type UpPlace = Pick<StackOptions, 'stateDir' | 'temporalPort' | 'temporalUiPort' | 'kubeApiPort' | 'awsPort'>;

const USAGE =
  'usage: npm start -- [--free-ports] [--state-dir <dir>]  |  npm run stack -- <up [--aws] [--free-ports] [--state-dir <dir>]|tools>';

const DEV_OPTIONS = { 'free-ports': { type: 'boolean' }, 'state-dir': { type: 'string' } } as const;
const UP_OPTIONS = { ...DEV_OPTIONS, aws: { type: 'boolean' } } as const;

/** `up`'s and `dev`'s options (node:util's parser refuses an unknown or incomplete one by name), and where the stack runs. */
function parseFlags(args: string[], command: 'up' | 'dev') {
  const { values } = parseArgs({
    args,
    options: command === 'up' ? UP_OPTIONS : DEV_OPTIONS,
    strict: true,
    allowPositionals: false,
  });
  const freePorts = values['free-ports'] === true;
  const stateDir = path.resolve(values['state-dir'] ?? UP_DEFAULTS.stateDir);
  const place: UpPlace = freePorts ? { stateDir } : { ...UP_DEFAULTS, stateDir };
  return { place, freePorts, aws: 'aws' in values && values.aws === true };
}

/**
 * Starts the stack, prints how to reach it, runs `onReady` (e.g. a worker for a `dev`
 * command), then stays up until Ctrl-C/SIGTERM or until a part of the stack dies.
 * `background`: run `onReady` as soon as Kubernetes serves and Temporal is up; AWS and kube-apiserver's
 * bootstrap finish meanwhile (a failure there stops the stack, as a crash does).
 */
const nodeLine = (node: RealNode) =>
  `  real node         ${node.nodeName} (${node.nodeIp}); the pool's report: curl -s ${node.pool.reportUrl}`;

export async function runUp(
  onReady?: (stack: Stack) => Promise<void>,
  opts: { aws?: boolean; background?: boolean; place?: UpPlace } = {},
): Promise<never> {
  const background = opts.background ?? false;
  const place = opts.place ?? UP_DEFAULTS;
  // A real node by default (docs/real-node.md): where this machine cannot run containers the stack says what is
  // missing and runs API-only; POD_RESPONDER_REAL_NODE=0 asks for API-only (starts faster, no root needed).
  const realNode = process.env.POD_RESPONDER_REAL_NODE !== '0';
  const stack = await startStack({
    ...place,
    headless: false,
    aws: opts.aws ?? false,
    awsInBackground: background,
    kubeBootstrapInBackground: background,
    realNode,
    // The worker and forwarder need no node; the demo's miner waits for it.
    nodeInBackground: background,
  });
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
      `  logs              ${place.stateDir}/*.log`,
      ...(stack.node
        ? [nodeLine(stack.node)]
        : stack.nodeReady
          ? ['  real node         starting; its line follows when it is Ready']
          : []),
      ...(stack.nodeMissing ? [`  real node         none: this machine lacks ${stack.nodeMissing.join('; ')}`] : []),
      ...(stack.aws
        ? awsLines(stack.aws)
        : stack.awsReady
          ? ['  AWS               starting (moto behind the test front); its lines follow when it is ready']
          : []),
      '',
      `  export TEMPORAL_ADDRESS=${stack.temporalAddress} KUBECONFIG=${stack.kubeconfigPath}`,
      '',
      'Press Ctrl-C to stop (state is discarded; the next `up` starts fresh).',
    ].join('\n'),
  );
  // What finishes in the background stops the stack if it fails, as a crash does (not once it is stopping).
  // Not awaited: `up` goes on while they finish; the catch is their only consumer.
  const stopIfFails = (part: Promise<unknown>, what: string): void => {
    part.catch((err: unknown) => {
      if (stopping) return;
      console.error(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      void stopAndExit(1);
    });
  };
  stopIfFails(stack.kubeReady, 'kube-apiserver did not finish its bootstrap');
  if (stack.nodeReady && !stack.node) {
    stopIfFails(
      stack.nodeReady.then((node) => console.log(`\n${nodeLine(node)}\n`)),
      'the real node did not start',
    );
  }
  if (!stack.aws && stack.awsReady) {
    stopIfFails(
      stack.awsReady.then((aws) => console.log(['', 'AWS is ready too', ...awsLines(aws), ''].join('\n'))),
      'the AWS part of the devstack failed',
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

async function main([cmd, ...args]: string[]): Promise<void> {
  switch (cmd) {
    case 'up': {
      const { aws, place } = parseFlags(args, 'up');
      await runUp(undefined, { aws, place });
      break;
    }
    case 'dev': {
      const { place, freePorts } = parseFlags(args, 'dev');
      // Loading the worker, forwarder and SDKs takes seconds: while the stack starts, not before it.
      const dev = import('./dev.js');
      dev.catch(() => undefined); // awaited below
      // With moto: the demo's evidence bundle goes to its S3.
      // AWS in the background: the worker needs it only for evidence, and it is the slowest part to start.
      await runUp(async (stack) => (await dev).startDev(stack, place.stateDir, { freePorts }), {
        aws: true,
        background: true,
        place,
      });
      break;
    }
    case 'tools': {
      const tools = await ensureTools();
      for (const [name, p] of Object.entries(tools)) console.log(`${name.padEnd(14)}${p}`);
      break;
    }
    default:
      console.error(USAGE);
      process.exit(2);
  }
}

/** The command line: `npm start` runs it through devstack/start.mjs. Bad options exit 2, with the usage. */
export function runCli(args: string[]): Promise<void> {
  return main(args).catch((err: unknown) => {
    const badOption = (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS_');
    console.error(err instanceof Error ? err.message : err);
    if (badOption) console.error(USAGE);
    process.exit(badOption ? 2 : 1);
  });
}

// Run only as a script (tsx devstack/cli.ts), so another module can import runUp().
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href)
  void runCli(process.argv.slice(2));

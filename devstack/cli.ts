/**
 * `npm run stack -- up`     start the local stack on fixed ports and stay in the foreground
 * `npm run stack -- tools`  only build/install the stack's binaries
 * `npm start`               (`dev`) the stack plus a worker and a demo workload to respond to
 */
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureTools, startStack, type Stack } from './stack.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Fixed ports so the UI URL and kubeconfig stay the same between runs. */
export const UP_DEFAULTS = {
  stateDir: path.join(REPO_ROOT, '.stack'),
  temporalPort: 7233,
  temporalUiPort: 8233,
  kubeApiPort: 6443,
};

/**
 * Starts the stack, prints how to reach it, runs `onReady` (e.g. a worker for a `dev`
 * command), then stays up until Ctrl-C/SIGTERM or until a part of the stack dies.
 */
export async function runUp(onReady?: (stack: Stack) => Promise<void>): Promise<never> {
  const stack = await startStack({ ...UP_DEFAULTS, headless: false });
  const stopAndExit = async (code: number): Promise<never> => {
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
      '',
      `  export TEMPORAL_ADDRESS=${stack.temporalAddress} KUBECONFIG=${stack.kubeconfigPath}`,
      '',
      'Press Ctrl-C to stop (state is discarded; the next `up` starts fresh).',
    ].join('\n'),
  );

  try {
    await onReady?.(stack);
  } catch (err) {
    console.error(err);
    return stopAndExit(1);
  }
  console.error(await stack.crashed);
  return stopAndExit(1);
}

async function main(cmd: string | undefined): Promise<void> {
  switch (cmd) {
    case 'up':
      await runUp();
      break;
    case 'dev': {
      const { startDev } = await import('./dev.js');
      await runUp((stack) => startDev(stack, UP_DEFAULTS.stateDir));
      break;
    }
    case 'tools': {
      const tools = await ensureTools();
      for (const [name, p] of Object.entries(tools)) console.log(`${name.padEnd(14)}${p}`);
      break;
    }
    default:
      console.error('usage: tsx devstack/cli.ts <up|dev|tools>');
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

/**
 * What holds replay CPU (docs/measurements.md, "CPU per workflow task"): bench/replay.ts's replay with an SDK cost
 * taken out, for measurement only, and counts of what the sandbox does per replay. Neither removal is an option of
 * SDK 1.24; both patch this process (the replayer runs the workflows in it).
 *
 *   BENCH_REPLAY_WITHOUT=watchdog          `vm` calls without their `timeout`: no watchdog thread per call
 *   BENCH_REPLAY_WITHOUT=promise-stacks    the SDK's promise hook stopped: no stack captured per promise
 *   BENCH_REPLAY_WITHOUT=watchdog,promise-stacks
 *
 * Also prints the calls into the sandbox and the promises created there, per replay (warm-up included).
 */
import { promiseHooks } from 'node:v8';
import vm from 'node:vm';
import { globalHandlers } from '@temporalio/worker/lib/workflow/vm-shared.js';
import { benchReplay, formatReplay, replayFailures } from './replay.js';
import { runAlone } from './processes.js';

const without = new Set((process.env.BENCH_REPLAY_WITHOUT ?? '').split(',').filter(Boolean));
let calls = 0;
let promises = 0;

type RunOptions = vm.RunningScriptOptions | undefined;
const untimed = (o: RunOptions): RunOptions => (without.has('watchdog') && o ? { ...o, timeout: undefined } : o);
const scriptRun = Reflect.get(vm.Script.prototype, 'runInContext') as (
  this: vm.Script,
  context: vm.Context,
  o?: RunOptions,
) => unknown;
vm.Script.prototype.runInContext = function (this: vm.Script, context: vm.Context, o?: RunOptions): unknown {
  calls++;
  return scriptRun.call(this, context, untimed(o));
};
const codeRun = vm.runInContext as (code: string, context: vm.Context, o?: RunOptions | string) => unknown;
vm.runInContext = (code: string, context: vm.Context, o?: RunOptions | string): unknown => {
  calls++;
  return codeRun(code, context, typeof o === 'string' ? o : untimed(o));
};

if (without.has('promise-stacks')) {
  // Installed first, then stopped: the SDK sees no hook and tells the workflow that stack traces are off.
  const hooks = globalHandlers as unknown as { stopPromiseHook(): void; promiseHookInstalled: boolean };
  globalHandlers.install();
  hooks.stopPromiseHook();
  hooks.promiseHookInstalled = false;
}
// A sandbox promise has the sandbox's Promise constructor.
promiseHooks.onInit((p: Promise<unknown>) => {
  if (p.constructor !== Promise) promises++;
});

runAlone(
  'replay-costs',
  () => benchReplay({ log: (line) => process.stderr.write(`[bench] ${line}\n`) }),
  (r) => {
    const n = r.replays + r.histories;
    return `${formatReplay(r)}
without: ${[...without].join(', ') || 'nothing'}; per replay: ${(calls / n).toFixed(1)} calls into the sandbox, ${(promises / n).toFixed(1)} promises created there
`;
  },
  replayFailures,
);

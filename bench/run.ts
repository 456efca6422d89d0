/**
 * `npm run bench`: the cost of durability, measured on the local stack in one run. Each part starts a stack of
 * its own (a dev server full of the parts before slows the next) and its own processes:
 *  1. latency: a Falco event POSTed to the forwarder -> pod gone, hop by hop, beside a bare DELETE on a
 *     kept-alive connection; and the first containment under the default policy (bench/latency.ts);
 *  2. parked: 10,000 incidents awaiting approval on one worker process, its memory, approve all (bench/parked.ts);
 *  3. the EKS executor's cost per incident (bench/eks.ts);
 *  4. an alert storm through the forwarder and a worker, then the same with two workers, one SIGKILLed (bench/storm.ts);
 *  5. an alert flood about one pod (bench/flood.ts);
 *  6. intake while Temporal is away: the spool's accept and drain rates, SQS end to end (bench/intake.ts);
 *  7. containment: alert -> isolated -> evidence -> pod deleted, with 3 x 1 MiB of logs (bench/containment.ts);
 *  8. worker start: spawn -> polling, its CPU and idle RSS, compiled as the image runs it (bench/worker-start.ts);
 *  9. the real node: alert -> physical effect (isolation enforced, process gone, no miner left) (bench/real-node.ts);
 * 10. the kill first: alert -> pod gone with Temporal visibility answering and stalled (bench/kill-first.ts);
 * 11. the image: its size, and a worker container's start to polling and idle RSS (bench/image.ts).
 * BENCH_ONLY=<part> runs one part alone; each part's sizes are in its file.
 */
import { benchContainment, containmentFailures, formatContainment } from './containment.js';
import { benchEksOnStack, formatEks } from './eks.js';
import { benchFlood, floodFailures, formatFlood } from './flood.js';
import { benchImage, formatImage, imageFailures } from './image.js';
import { benchIntake, formatIntake, intakeFailures } from './intake.js';
import { benchKillFirst, formatKillFirst, killFirstFailures } from './kill-first.js';
import { benchLatency, formatLatency, latencyFailures } from './latency.js';
import { benchParked, formatParked, parkedFailures } from './parked.js';
import { benchRealNode, formatRealNode, realNodeFailures } from './real-node.js';
import { benchScaleOut, benchStorm, formatStorm, stormFailures } from './storm.js';
import { benchWorkerStart, formatWorkerStart, workerStartFailures } from './worker-start.js';

const progress = (line: string) => process.stderr.write(`[bench] ${line}\n`);

interface Part {
  name: string;
  title: string;
  run(): Promise<string>;
}

/** A part's table; a failed check fails the bench, and says which part and why. */
async function measured<R>(
  name: string,
  bench: () => Promise<R>,
  format: (r: R) => string,
  failures: (r: R) => string[],
): Promise<string> {
  const result = await bench();
  for (const f of failures(result)) {
    process.stderr.write(`${name} FAILED: ${f}\n`);
    process.exitCode = 1;
  }
  return format(result);
}

const parts: Part[] = [
  {
    name: 'latency',
    title: 'alert -> action, hop by hop',
    run: () => measured('latency', () => benchLatency({ log: progress }), formatLatency, latencyFailures),
  },
  {
    name: 'parked',
    title: 'incidents parked on one worker process',
    run: () => measured('parked', () => benchParked({ log: progress }), formatParked, parkedFailures),
  },
  {
    name: 'eks',
    title: 'the EKS executor',
    run: () =>
      measured(
        'eks',
        () => benchEksOnStack({ log: progress }),
        formatEks,
        () => [],
      ),
  },
  {
    name: 'storm',
    title: 'alert storm through the forwarder and a worker',
    run: () => measured('storm', () => benchStorm({ log: progress }), formatStorm, stormFailures),
  },
  {
    name: 'scale-out',
    title: 'the storm on two workers, one SIGKILLed halfway',
    run: () => measured('scale-out', () => benchScaleOut({ log: progress }), formatStorm, stormFailures),
  },
  {
    name: 'flood',
    title: 'alert flood about one pod',
    run: () => measured('flood', () => benchFlood({ log: progress }), formatFlood, floodFailures),
  },
  {
    name: 'intake',
    title: 'intake while Temporal is away',
    run: () => measured('intake', () => benchIntake({ log: progress }), formatIntake, intakeFailures),
  },
  {
    name: 'containment',
    title: 'containment: isolation, evidence, kill',
    run: () =>
      measured('containment', () => benchContainment({ log: progress }), formatContainment, containmentFailures),
  },
  {
    name: 'real-node',
    title: 'the real node: alert -> physical effect',
    run: () => measured('real-node', () => benchRealNode({ log: progress }), formatRealNode, realNodeFailures),
  },
  {
    name: 'kill-first',
    title: 'alert -> pod gone, Temporal visibility stalled',
    run: () => measured('kill-first', () => benchKillFirst({ log: progress }), formatKillFirst, killFirstFailures),
  },
  {
    name: 'worker-start',
    title: 'a worker from spawn to polling',
    run: () =>
      measured('worker-start', () => benchWorkerStart({ log: progress }), formatWorkerStart, workerStartFailures),
  },
  {
    name: 'image',
    title: 'the image: size, a worker container to polling, idle RSS',
    run: () => measured('image', () => benchImage({ log: progress }), formatImage, imageFailures),
  },
];

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'; // known: Node 20 support ends in 2027
  const only = process.env.BENCH_ONLY;
  const chosen = only ? parts.filter((p) => p.name === only) : parts;
  if (!chosen.length)
    throw new Error(`BENCH_ONLY=${only}: the parts are ${parts.map((p) => `"${p.name}"`).join(', ')}`);
  // Tables are printed at the end, together: the progress lines go to stderr meanwhile.
  const tables: string[] = [];
  for (const part of chosen) {
    progress(`${part.name}: ${part.title}`);
    tables.push(await part.run());
  }
  process.stdout.write(tables.join(''));
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

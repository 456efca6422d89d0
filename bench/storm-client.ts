/**
 * The alert storm's load generator. bench/storm.ts runs it as a process of its own, so that making
 * the load costs neither the forwarder's event loop nor the driver's: it posts `alerts` unique
 * Falcosidekick events over `pods` pods to the forwarder, `concurrency` requests in flight on
 * keep-alive sockets, and resends about `resendRatio` of the accepted ones to exercise deduplication,
 * each resend with a new `uuid`, as Falcosidekick relays an event.
 *
 * Usage: `node --import tsx bench/storm-client.ts '<StormClientOptions as JSON>'`; prints a
 * StormClientReport as JSON on stdout.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

export interface StormClientOptions {
  /** The forwarder's Falco endpoint, query string included. */
  url: string;
  token: string;
  alerts: number;
  pods: number;
  concurrency: number;
  resendRatio: number;
  /**
   * Resends are drawn from the newest this many accepted alerts (default: all of them). A sender resends an event
   * it could not deliver, seconds later; past the forwarder's 100,000 remembered IDs and the incident's 50,000, a
   * resend from a million alerts back would be counted again, as designed (workflows/incident/alert-ledger.ts).
   */
  resendWindow?: number;
  /**
   * Open loop: start this many alerts a second whatever the answers take (as Falcosidekick does, a request
   * per event), with at most `concurrency` in flight. Without it: closed loop, `concurrency` senders.
   */
  ratePerSecond?: number;
  /** Where the pods are: namespace, names and container IDs (12 hex, as Falco prints them). Default: `storm`, `miner-<i>`, random IDs. */
  namespace?: string;
  podNames?: string[];
  containerIds?: string[];
  /**
   * Print `progress <unique alerts sent> <accepted>` on stderr each time this many more unique alerts have been
   * sent, and once at the end: bench/storm.ts acts on a share of the storm sent (it kills a worker there).
   */
  progressEvery?: number;
}

export interface Latency {
  p50: number;
  p99: number;
  max: number;
}

export interface StormClientReport {
  /** HTTP requests, retries included. */
  sent: number;
  unique: number;
  resends: number;
  /** Unique alerts answered `accepted` (or `queued`): Temporal took them, or will from the spool. */
  accepted: number;
  /** Unique alerts answered `closed`: about a pod its incident had removed, so nothing was sent to Temporal. */
  closed: number;
  /** Resends answered `duplicate`, or `queued` while their first copy still waits in the spool. */
  duplicates: number;
  /** 503/429 answers that were retried after Retry-After. */
  retries: number;
  /**
   * Unique alerts answered `queued`: Temporal did not answer within the forwarder's deadline, so the alert went to
   * the spool, whose deliverer signals it again (Temporal may have taken the first signal after all).
   */
  queued: number;
  errors: number;
  errorSamples: string[];
  wallSeconds: number;
  /** First attempt to 2xx answer of each unique alert, retries and their waits included. */
  latencyMs: Latency;
  resendLatencyMs: Latency;
  cpuSeconds: number;
  acceptedIds: string[];
  /** Alerts answered `closed`: the pod's index and when the answer came (ms since the epoch). */
  closedAnswers: { pod: number; at: number }[];
}

/** Beyond this, a 503/429 that keeps coming back is an error. */
const MAX_ATTEMPTS = 10;
const RULE = 'Detect crypto miners using the Stratum protocol';

export const quantile = (xs: number[], q: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const latency = (xs: number[]): Latency => ({
  p50: quantile(xs, 0.5),
  p99: quantile(xs, 0.99),
  // Not Math.max(...xs): a million arguments overflow the stack.
  max: xs.length ? xs.reduce((a, b) => (b > a ? b : a), -Infinity) : NaN,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Job {
  uuid: string;
  body: string;
  resend: boolean;
  pod: number;
}

export async function runStormClient(
  o: StormClientOptions,
  onProgress?: (unique: number, accepted: number) => void,
): Promise<StormClientReport> {
  // Requests beyond the sockets queue in the agent, as a Go sender's beyond MaxConnsPerHost do.
  const agent = new Agent({ keepAlive: true, maxSockets: Math.min(o.concurrency, 1024) });
  const url = new URL(o.url);
  const r: Omit<StormClientReport, 'latencyMs' | 'resendLatencyMs' | 'wallSeconds' | 'cpuSeconds'> = {
    sent: 0,
    unique: 0,
    resends: 0,
    accepted: 0,
    closed: 0,
    duplicates: 0,
    retries: 0,
    queued: 0,
    errors: 0,
    errorSamples: [],
    acceptedIds: [],
    closedAnswers: [],
  };
  const latencies: number[] = [];
  const resendLatencies: number[] = [];
  const acceptedJobs: Job[] = [];
  const error = (line: string) => {
    r.errors++;
    if (r.errorSamples.length < 5) r.errorSamples.push(line);
  };

  const post = (body: string) =>
    new Promise<{ status: number; retryAfter: string | undefined; text: string }>((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            authorization: `Bearer ${o.token}`,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              retryAfter: res.headers['retry-after'],
              text: Buffer.concat(chunks).toString(),
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  const newJob = (i: number): Job => {
    const uuid = randomUUID();
    const pod = i % o.pods;
    const podName = o.podNames?.[pod] ?? `miner-${pod}`;
    const body = JSON.stringify({
      uuid,
      rule: RULE,
      priority: 'Critical',
      time: new Date().toISOString().replace('Z', `${String(i % 1e6).padStart(6, '0')}Z`), // nanoseconds, as Falco writes them
      source: 'syscall',
      tags: ['T1496'],
      output: `Outbound connection to a Stratum mining pool (pod ${podName}, connection ${i})`,
      output_fields: {
        'k8s.ns.name': o.namespace ?? 'storm',
        'k8s.pod.name': podName,
        'container.id': o.containerIds?.[pod] ?? randomBytes(6).toString('hex'),
        'proc.name': 'xmrig',
      },
    });
    return { uuid, body, resend: false, pod };
  };

  // Resends keep pace with new alerts (one per 1/resendRatio), drawn from those already accepted.
  const resendTarget = Math.floor(o.alerts * o.resendRatio);
  let nextNew = 0;
  const nextJob = (): Job | undefined => {
    const due = nextNew >= o.alerts || Math.floor(nextNew * o.resendRatio) > r.resends;
    if (due && r.resends < resendTarget && acceptedJobs.length > 0) {
      r.resends++;
      const window = Math.min(acceptedJobs.length, o.resendWindow ?? Infinity);
      const earlier = acceptedJobs[acceptedJobs.length - 1 - Math.floor(Math.random() * window)]!;
      const uuid = randomUUID(); // Falcosidekick gives every delivery a new one: the event stays the same
      return { uuid, body: earlier.body.replace(earlier.uuid, uuid), resend: true, pod: earlier.pod };
    }
    if (nextNew < o.alerts) {
      r.unique++;
      const job = newJob(nextNew++);
      if (o.progressEvery && nextNew % o.progressEvery === 0) onProgress?.(nextNew, r.accepted);
      return job;
    }
    return undefined;
  };

  const deliver = async (job: Job) => {
    const t0 = performance.now();
    for (let attempt = 1; ; attempt++) {
      r.sent++;
      let res;
      try {
        res = await post(job.body);
      } catch (err) {
        return error(`${job.uuid}: ${(err as Error).message}`);
      }
      if ((res.status === 503 || res.status === 429) && attempt < MAX_ATTEMPTS) {
        r.retries++;
        await sleep(Number(res.retryAfter ?? 1) * 1000);
        continue;
      }
      if (res.status !== 202) return error(`HTTP ${res.status}: ${res.text.slice(0, 300)}`);
      const answer = (JSON.parse(res.text) as { results: { outcome: string; alertId: string }[] }).results[0];
      const outcome = answer?.outcome;
      const ms = performance.now() - t0;
      if (job.resend) {
        resendLatencies.push(ms);
        // `queued`: the first copy still waits in the spool, which holds the alert once; `closed`: its pod's incident has closed since.
        if (outcome === 'duplicate' || outcome === 'queued' || outcome === 'closed') r.duplicates++;
        else error(`resend of ${job.uuid} answered ${outcome}, expected duplicate or queued`);
      } else if (outcome === 'accepted' || outcome === 'queued' || (outcome === 'duplicate' && attempt > 1)) {
        // A duplicate after a 503 means an earlier attempt reached Temporal after all: accepted.
        latencies.push(ms);
        r.accepted++;
        if (outcome === 'queued') r.queued++;
        r.acceptedIds.push(answer!.alertId);
        acceptedJobs.push(job);
        if (o.resendWindow && acceptedJobs.length > 2 * o.resendWindow) acceptedJobs.splice(0, o.resendWindow);
      } else if (outcome === 'closed') {
        latencies.push(ms);
        r.closed++;
        r.closedAnswers.push({ pod: job.pod, at: Date.now() });
        acceptedJobs.push(job); // resent too: a copy is answered `closed` again
      } else {
        error(`${job.uuid} answered ${outcome}, expected accepted: ${res.text.slice(0, 300)}`);
      }
      return;
    }
  };

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  if (o.ratePerSecond) {
    // A counter and one waiter: Promise.race over thousands of requests would cost more than the requests.
    let inFlight = 0;
    let freed: (() => void) | null = null;
    const release = () => {
      inFlight--;
      freed?.();
      freed = null;
    };
    let started = 0;
    for (let job = nextJob(); job; job = nextJob()) {
      const due = t0 + (started * 1000) / o.ratePerSecond - performance.now();
      if (due > 2) await sleep(due);
      while (inFlight >= o.concurrency) await new Promise<void>((r) => (freed = r));
      inFlight++;
      started++;
      void deliver(job).finally(release);
    }
    while (inFlight > 0) await new Promise<void>((r) => (freed = r));
  } else {
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        for (let job = nextJob(); job; job = nextJob()) await deliver(job);
      }),
    );
  }
  const wallSeconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (o.progressEvery) onProgress?.(nextNew, r.accepted);
  agent.destroy();
  return {
    ...r,
    wallSeconds,
    latencyMs: latency(latencies),
    resendLatencyMs: latency(resendLatencies),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  runStormClient(JSON.parse(process.argv[2] ?? '') as StormClientOptions, (unique, accepted) =>
    process.stderr.write(`progress ${unique} ${accepted}\n`),
  ).then(
    (report) => process.stdout.write(`${JSON.stringify(report)}\n`),
    (err: unknown) => {
      process.stderr.write(`storm client failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}

/**
 * The image as users get it: the project's Dockerfile built with podman on the locally assembled
 * node:22-bookworm-slim (devstack/image.ts; once per source, minutes the first time), then run as the chart runs it:
 * as its own user, on a read-only root filesystem with /tmp on a tmpfs (the chart's emptyDir), on the host's network.
 * Skipped, saying why, where podman cannot run.
 */
import { Connection } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Spool } from '../../forwarder/spool.js';
import { ensureImage, podmanMissing, type ProjectImage } from '../../devstack/image.js';
import { freePorts } from '../../devstack/probes.js';
import { ownTemporal, type OwnTemporal } from '../../devstack/temporal-server.js';
import { until } from '../support/until.js';

const missing = podmanMissing();
const skipWhy = missing.length ? `podman cannot run here: needs ${missing.join('; ')}` : '';
const exec = promisify(execFile);

/** The chart's runtime restrictions: read-only root, only /tmp writable (its emptyDir), no tmpfs podman adds itself. */
const READ_ONLY = ['--read-only', '--read-only-tmpfs=false', '--tmpfs', '/tmp:rw,size=64m'];
/** What the webpack run in the SDK's bundler logs; a worker on the image's prebuilt bundle never runs it. */
const WEBPACK_RAN = 'Workflow bundle created';

describe.skipIf(missing.length > 0)(`the image${skipWhy ? ` (${skipWhy})` : ''}`, () => {
  let image: ProjectImage;
  const containers: string[] = [];

  async function podman(...args: string[]): Promise<string> {
    const { stdout } = await exec(image.podman, args, { maxBuffer: 64 * 2 ** 20 });
    return stdout.trim();
  }
  /** A detached container of the image, removed after the file. */
  async function start(args: string[], command: string[]): Promise<string> {
    const name = `pod-responder-test-${randomBytes(4).toString('hex')}`;
    containers.push(name);
    await podman('run', '-d', '--name', name, '--network', 'host', ...READ_ONLY, ...args, image.ref, ...command);
    return name;
  }
  const logs = async (name: string) => {
    const { stdout, stderr } = await exec(image.podman, ['logs', name], { maxBuffer: 64 * 2 ** 20 });
    return stdout + stderr;
  };

  beforeAll(async () => {
    image = await ensureImage((line) => console.log(line));
  }, 45 * 60_000);

  afterAll(async () => {
    if (containers.length) await exec(image.podman, ['rm', '-f', '-t', '0', ...containers]).catch(() => {});
  });

  it('runs as the unprivileged node user (uid 1000), also on a read-only root filesystem', async () => {
    expect(await podman('image', 'inspect', '--format', '{{.Config.User}}', image.ref)).toBe('node');
    const id = await podman('run', '--rm', ...READ_ONLY, '--entrypoint', 'id', image.ref);
    expect(id).toMatch(/^uid=1000\(node\) gid=1000\(node\)/);
    // Read-only: / refuses a write, and /tmp (the chart's emptyDir) takes one.
    const probe = await podman(
      'run',
      '--rm',
      ...READ_ONLY,
      '--entrypoint',
      'sh',
      image.ref,
      '-c',
      'touch /app/x 2>/dev/null && echo root-writable; touch /tmp/x && echo tmp-writable',
    );
    expect(probe).toBe('tmp-writable');
  });

  it("holds no compiler or build tool: the build stage's g++, make and python3 stay behind", async () => {
    const found = await podman(
      'run',
      '--rm',
      '--entrypoint',
      'sh',
      image.ref,
      '-c',
      'for c in node gcc g++ cc c++ make python3 python; do command -v "$c" || true; done',
    );
    // node is found, so the probe does find what is there.
    expect(found.split('\n')).toEqual(['/usr/local/bin/node']);
  });

  describe('with a Temporal dev server', () => {
    let temporal: OwnTemporal;
    beforeAll(async () => {
      temporal = await ownTemporal();
      temporal.start();
      await until(
        'Temporal up',
        async () => {
          const c = await Connection.connect({ address: temporal.address, connectTimeout: 1000 });
          await c.close();
          return true;
        },
        60_000,
      );
    }, 120_000);
    afterAll(async () => temporal?.stop());

    it('the worker starts on the bundle built into the image (no webpack at start) and polls its task queue', async () => {
      const taskQueue = `image-${randomBytes(4).toString('hex')}`;
      const env = ['-e', `TEMPORAL_ADDRESS=${temporal.address}`, '-e', `POD_RESPONDER_TASK_QUEUE=${taskQueue}`];
      const name = await start([...env, '-e', 'POD_RESPONDER_METRICS_PORT=0'], ['worker']);
      const out = await until('the worker started', async () => {
        const text = await logs(name);
        return text.includes('"msg":"worker started"') && text;
      });
      const connection = await Connection.connect({ address: temporal.address });
      try {
        const pollers = await until('a poller on the task queue', async () => {
          const r = await connection.workflowService.describeTaskQueue({
            namespace: 'default',
            taskQueue: { name: taskQueue },
            taskQueueType: 1, // workflow
          });
          return r.pollers.length > 0 && r.pollers;
        });
        expect(pollers.length).toBeGreaterThan(0);
      } finally {
        await connection.close();
      }
      expect(out).not.toContain(WEBPACK_RAN);

      // The same image with its prebuilt bundle (dist/workflow-bundle.js, from `npm run build`) hidden behind an
      // empty file: webpack runs and says so, which is what the assertion above would see if the image's bundle
      // were missing or stale.
      const control = await start(
        [...env, '-e', 'POD_RESPONDER_METRICS_PORT=0', '-v', '/dev/null:/app/dist/workflow-bundle.js:ro'],
        ['worker'],
      );
      const controlOut = await until(
        'the control worker started',
        async () => {
          const text = await logs(control);
          return text.includes('"msg":"worker started"') && text;
        },
        120_000,
      );
      expect(controlOut).toContain(WEBPACK_RAN);
    }, 240_000);
  });

  it('the forwarder takes an alert while Temporal is down and spools it in the mounted volume', async () => {
    const volume = mkdtempSync(path.join(tmpdir(), 'pod-responder-image-spool-'));
    chownSync(volume, 1000, 1000); // as a volume's fsGroup would: the container runs as node
    const [port, nowhere] = await freePorts(2);
    const token = randomBytes(16).toString('hex');
    const name = await start(
      [
        '-v',
        `${volume}:/var/lib/pod-responder/spool`,
        '-e',
        `TEMPORAL_ADDRESS=127.0.0.1:${nowhere}`, // nothing listens there: Temporal is down
        '-e',
        'POD_RESPONDER_FORWARDER_HOST=127.0.0.1',
        '-e',
        `POD_RESPONDER_FORWARDER_PORT=${port}`,
        '-e',
        `POD_RESPONDER_FALCO_TOKEN=${token}`,
        '-e',
        'POD_RESPONDER_METRICS_PORT=0',
      ],
      ['forwarder'],
    );
    const base = `http://127.0.0.1:${port}`;
    try {
      await until('the forwarder up', async () => (await fetch(`${base}/healthz`)).ok, 60_000);
      const alert = readFileSync(
        path.resolve(import.meta.dirname, '../fixtures/alerts/falco-known-miner.json'),
        'utf8',
      );
      const res = await fetch(`${base}/v1/alerts/falco?cluster=image-test`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: alert,
      });
      const body = (await res.json()) as { results: { outcome: string }[] };
      expect(`${res.status} ${body.results[0]?.outcome}`).toBe('202 queued');
    } finally {
      await podman('stop', '-t', '10', name); // SIGTERM: the forwarder drains and closes the spool
    }
    const file = path.join(volume, 'forwarder.db'); // the image's POD_RESPONDER_SPOOL_PATH
    expect(existsSync(file)).toBe(true);
    const spool = Spool.open(file, { maxEntries: 1000, maxBytes: 2 ** 20 });
    try {
      const entries = [...spool.incidents()].flatMap((incident) => spool.take(incident, 100, 2 ** 20));
      expect(entries).toHaveLength(1);
      expect(entries[0]!.source).toBe('falco');
      expect(entries[0]!.alert).toMatchObject({
        cluster: { name: 'image-test' },
        namespace: 'batch',
        podName: 'report-28901234-abcde',
        podUid: '8f14e45f-ceea-467a-9af0-1d2e3f4a5b6c',
      });
    } finally {
      spool.close();
      rmSync(volume, { recursive: true, force: true });
    }
  }, 120_000);
});

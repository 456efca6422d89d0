/**
 * Replays recorded incident histories against the current workflow code. A change that would break
 * incidents already running in production (a reordered activity, a new timer) fails here.
 * Re-record after an intentional, versioned change: RECORD_HISTORIES=1 npx vitest run test/integration/replay.test.ts
 */
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { inject } from 'vitest';
import { ensureTools } from '../../devstack/stack.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installLogging } from '../../worker/logging.js';
import { workflowsPath } from '../../worker/worker.js';
import { approveSignal, escalateSignal, restoreUpdate } from '../../workflows/messages.js';
import { createNamespace, createWorkload, testKube, type TestKube } from '../support/cluster.js';
import { alertFor, startResponder, type Responder } from '../support/responder.js';

const dir = new URL('../histories/', import.meta.url);
const recording = Boolean(process.env.RECORD_HISTORIES);
installLogging('WARN');

describe.runIf(recording)('record histories', () => {
  let r: Responder;
  let kube: TestKube;
  beforeAll(async () => {
    r = await startResponder();
    kube = testKube();
  });
  afterAll(async () => r?.close());

  const scenarios: Record<string, (ns: string) => Promise<string>> = {
    'terminate-bare-pod': async (ns) => {
      const h = await r.respond(alertFor(ns, await createWorkload(kube, ns, 'Pod')));
      await h.result();
      return h.workflowId;
    },
    'escalate-suspend-restore-deployment': async (ns) => {
      const h = await r.respond(alertFor(ns, await createWorkload(kube, ns, 'Deployment')), { holdSuspensionSeconds: 300 });
      await r.waitForStage(h, 'watching');
      await h.signal(escalateSignal, { by: 'soc', reason: 'confirmed' });
      await r.waitForStage(h, 'holding');
      await h.executeUpdate(restoreUpdate, { args: [{ by: 'soc' }] });
      await h.result();
      return h.workflowId;
    },
    'approved-suspend-cronjob': async (ns) => {
      const h = await r.respond(alertFor(ns, await createWorkload(kube, ns, 'CronJob'), { severity: 'critical' }), {
        requireApprovalFor: ['suspend-workload'],
        holdSuspensionSeconds: 0,
      });
      await r.waitForStage(h, 'awaiting-approval');
      await h.signal(approveSignal, { by: 'lead' });
      await h.result();
      return h.workflowId;
    },
    'dismissed-stale': async (ns) => {
      const w = await createWorkload(kube, ns, 'Pod');
      const h = await r.respond(alertFor(ns, w, { detectedAt: new Date(Date.now() - 7200_000).toISOString() }));
      await h.result();
      return h.workflowId;
    },
  };

  it.each(Object.keys(scenarios))('%s', async (name) => {
    const ns = await createNamespace(kube, 'record');
    const workflowId = await scenarios[name]!(ns);
    // The CLI writes the canonical proto3 JSON that historyFromJSON reads back.
    const { temporal } = await ensureTools();
    const json = execFileSync(temporal, ['workflow', 'show', '-w', workflowId, '-o', 'json', '--address', inject('temporalAddress')]);
    writeFileSync(new URL(`${name}.json`, dir), json);
  });
});

describe('replay recorded histories', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(4);
  });

  it.each(files)('%s replays without nondeterminism', async (file) => {
    const history = historyFromJSON(JSON.parse(readFileSync(new URL(file, dir), 'utf8')));
    await expect(Worker.runReplayHistory({ workflowsPath: workflowsPath(), replayName: file }, history)).resolves.toBeUndefined();
  });
});

/** The `pod-responder` command as a user runs it: a worker process, respond, status, approve, restore. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createNamespace, createWorkload, podExists, testKube, type TestKube } from '../support/cluster.js';
import { alertFor } from '../support/responder.js';
import { respondToAlert } from '../../temporal-client/incidents.js';
import { loadConfig } from '../../config/config.js';
import type { PodAlert } from '../../domain/alert.js';
import { statusQuery } from '../../workflows/messages.js';

const root = path.resolve(import.meta.dirname, '../..');
const tsx = path.join(root, 'node_modules/.bin/tsx');
const cli = path.join(root, 'client/cli.ts');
const dir = mkdtempSync(path.join(tmpdir(), 'pod-responder-cli-'));

let env: NodeJS.ProcessEnv;
let worker: ChildProcess | undefined;
let kube: TestKube;

function run(
  args: string[],
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(tsx, [cli, ...args], { env: { ...env, ...extraEnv }, cwd: root }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function writeAlert(value: unknown): string {
  const file = path.join(dir, `${randomBytes(4).toString('hex')}.json`);
  writeFileSync(file, JSON.stringify(value));
  return file;
}

async function statusOf(id: string) {
  const r = await run(['status', id]);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as { stage: string; outcome: string | null; actions: { status: string }[] };
}

async function waitForStage(id: string, stage: string) {
  for (let i = 0; i < 60; i++) {
    const s = await statusOf(id);
    if (s.stage === stage) return s;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${id} never reached ${stage}`);
}

beforeAll(async () => {
  kube = testKube();
  env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    KUBECONFIG: inject('kubeconfigPath'),
    POD_RESPONDER_CLUSTER: 'local',
    POD_RESPONDER_TASK_QUEUE: `cli-${randomBytes(4).toString('hex')}`,
    POD_RESPONDER_LOG_LEVEL: 'WARN',
  };
  worker = spawn(tsx, [cli, 'worker'], {
    env: { ...env, POD_RESPONDER_LOG_LEVEL: 'INFO' },
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    worker!.stderr!.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes('"msg":"worker started"')) resolve();
    });
    worker!.on('exit', (code) => reject(new Error(`worker exited ${code}: ${seen}`)));
  });
});

afterAll(async () => {
  if (worker && worker.exitCode === null) {
    const exited = new Promise((r) => worker!.on('exit', r));
    worker.kill('SIGTERM');
    await exited;
  }
});

describe('pod-responder CLI', () => {
  it('refuses to start a worker on bad configuration, naming each field', async () => {
    const r = await run(['worker'], {
      POD_RESPONDER_POLICY: '{"repeatThreshold":1,"protectedNamespaces":"kube-system"}',
      TEMPORAL_ADDRESS: 'nowhere',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: invalid configuration (environment):');
    expect(r.stderr).toContain('temporal.address: must be host:port');
    expect(r.stderr).toContain('policy.protectedNamespaces: Invalid input: expected array, received string');
    expect(r.stderr).toContain('policy.repeatThreshold: Too small: expected number to be >=2');
  });

  it('rejects a malformed alert with exact field errors and starts nothing', async () => {
    const r = await run(['respond', writeAlert({ source: 'falco', namespace: 'Bad NS' })]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('namespace: must be a DNS-1123 label');
    expect(r.stderr).toContain('alertId: Invalid input: expected string, received undefined');
    expect(r.stdout).toBe('');
  });

  it('responds, reports status, and takes an approval', async () => {
    const ns = await createNamespace(kube, 'cli');
    const w = await createWorkload(kube, ns, 'Pod');
    const started = await run(['respond', writeAlert(alertFor(ns, w))], {
      POD_RESPONDER_POLICY: '{"requireApprovalFor":["terminate-pod"]}',
    });
    expect(started.stderr).toBe('');
    const { workflowId, uiUrl } = JSON.parse(started.stdout) as { workflowId: string; uiUrl: string };
    expect(workflowId).toBe(`pod-incident:local:${ns}:${w.name}`);
    expect(uiUrl).toBe(`http://localhost:8233/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
    await waitForStage(workflowId, 'awaiting-approval');
    expect((await run(['approve', workflowId, '--by', 'ana'])).code).toBe(0);
    const closed = await waitForStage(workflowId, 'closed');
    expect(closed.outcome).toBe('pod-terminated');
    expect(await podExists(kube, ns, w.name)).toBe(false);
  });

  it('lists the inbox: awaiting approval in a namespace, then closed with its outcome; a bad filter is an exact error', async () => {
    const ns = await createNamespace(kube, 'cliinbox');
    const w = await createWorkload(kube, ns, 'Pod');
    const started = await run(['respond', writeAlert(alertFor(ns, w))], {
      POD_RESPONDER_POLICY: '{"requireApprovalFor":["terminate-pod"]}',
    });
    const { workflowId } = JSON.parse(started.stdout) as { workflowId: string };
    await waitForStage(workflowId, 'awaiting-approval');
    // Visibility follows the search attributes within a moment.
    const listed = async (args: string[]) => {
      for (let i = 0; i < 40; i++) {
        const r = await run(['list', '--namespace', ns, '--json', ...args]);
        expect(r.stderr).toBe('');
        const rows = r.stdout
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, string>);
        if (rows.length) return rows;
        await new Promise((res) => setTimeout(res, 250));
      }
      return [];
    };
    expect(await listed(['--stage', 'awaiting-approval', '--since', '10m'])).toEqual([
      expect.objectContaining({
        workflowId,
        stage: 'awaiting-approval',
        outcome: '',
        cluster: 'local',
        namespace: ns,
        pod: w.name,
        ui: expect.stringContaining(encodeURIComponent(workflowId)),
      }),
    ]);
    const table = await run(['list', '--namespace', ns]);
    expect(table.stdout.split('\n')[0]).toMatch(
      /^STARTED\s+STAGE\s+OUTCOME\s+CLUSTER\s+NAMESPACE\s+POD\s+WORKLOAD\s+WORKFLOWID$/,
    );
    expect(table.stdout).toContain(workflowId);

    await run(['approve', workflowId, '--by', 'ana']);
    await waitForStage(workflowId, 'closed');
    expect((await listed(['--outcome', 'pod-terminated']))[0]).toMatchObject({
      workflowId,
      stage: 'closed',
      outcome: 'pod-terminated',
    });

    const bad = await run(['list', '--stage', 'waiting']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /^error: invalid filters:\n {2}- stage: Invalid option: expected one of "validating"\|"deciding"/,
    );
    const query = await run(['list', '--stage', 'holding', '--cluster', 'prod-eu', '--query']);
    expect(query.stdout.trim()).toBe(
      `WorkflowType = 'maliciousPodResponse' AND PodResponderStage = 'holding' AND PodResponderCluster = 'prod-eu'`,
    );
  });

  it('says why an answer was refused: the proposal expired (the incident went on under proceed)', async () => {
    const ns = await createNamespace(kube, 'cliexpired');
    const w = await createWorkload(kube, ns, 'Deployment');
    const policy = { requireApprovalFor: ['terminate-pod'], approvalTimeoutSeconds: 2, onApprovalTimeout: 'proceed' };
    const started = await run(['respond', writeAlert(alertFor(ns, w))], {
      POD_RESPONDER_POLICY: JSON.stringify(policy),
    });
    const { workflowId } = JSON.parse(started.stdout) as { workflowId: string };
    const watching = (await waitForStage(workflowId, 'watching')) as unknown as { proposal: { expiresAt: string } };
    const late = await run(['approve', workflowId, '--by', 'ana']);
    expect(late.code).toBe(1);
    expect(late.stderr).toBe(
      `error: incident ${workflowId} refused the answer: proposal p1 (terminate-pod pod ${ns}/${w.pod.metadata!.name} (uid ${w.pod.metadata!.uid})) expired at ${watching.proposal.expiresAt}: ` +
        'no answer is taken after it; on expiry the incident proceeds without approval (policy onApprovalTimeout: proceed)\n',
    );
    const client = new Client({ connection: await Connection.connect({ address: inject('temporalAddress') }) });
    await client.workflow.getHandle(workflowId).terminate('test done');
    await client.connection.close();
  });

  it('restores a suspended workload on request', async () => {
    const ns = await createNamespace(kube, 'clirestore');
    const w = await createWorkload(kube, ns, 'Deployment');
    const started = await run(['respond', writeAlert(alertFor(ns, w, { severity: 'critical' }))]);
    const { workflowId } = JSON.parse(started.stdout) as { workflowId: string };
    await waitForStage(workflowId, 'holding');
    expect((await kube.apps.readNamespacedDeployment({ namespace: ns, name: w.name })).spec?.replicas).toBe(0);
    const restored = await run(['restore', workflowId, '--by', 'ana', '--reason', 'false positive']);
    expect(restored.code).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({ action: 'restore-workload', status: 'done' });
    expect((await kube.apps.readNamespacedDeployment({ namespace: ns, name: w.name })).spec?.replicas).toBe(3);
    const again = await run(['restore', workflowId, '--by', 'ana']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/restore already requested|workflow execution already completed/);
  });
  it('answers a campaign together: lists without --yes, approves only the action named, leaves the rest awaiting', async () => {
    const policy = { POD_RESPONDER_POLICY: '{"requireApprovalFor":["terminate-pod","suspend-workload"]}' };
    const ns = await createNamespace(kube, 'clibulk');
    const other = await createNamespace(kube, 'clibulkother');
    const pods = await Promise.all([1, 2, 3].map(() => createWorkload(kube, ns, 'Pod')));
    const deployment = await createWorkload(kube, ns, 'Deployment');
    const elsewhere = await createWorkload(kube, other, 'Pod');
    const client = new Client({ connection: await Connection.connect({ address: inject('temporalAddress') }) });
    const stageOf = async (id: string) =>
      (await client.workflow.getHandle(id).query(statusQuery)) as { stage: string; outcome: string | null };
    const reach = async (id: string, stage: string) => {
      for (let i = 0; i < 120; i++) {
        const s = await stageOf(id);
        if (s.stage === stage) return s;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`${id} never reached ${stage}`);
    };
    const config = loadConfig({ ...env, ...policy });
    const start = async (alert: PodAlert) => (await respondToAlert(client, config, alert)).workflowId;
    const podIds = await Promise.all(pods.map((w) => start(alertFor(ns, w))));
    const suspendId = await start(alertFor(ns, deployment, { severity: 'critical' }));
    const elsewhereId = await start(alertFor(other, elsewhere));
    for (const id of [...podIds, suspendId, elsewhereId]) await reach(id, 'awaiting-approval');

    // Without --yes: the list, and nothing answered. Visibility follows the search attributes within a moment.
    let dry = await run(['approve-all', '--namespace', ns, '--by', 'ana']);
    for (let i = 0; i < 40 && !dry.stdout.includes('\n4 incident(s)'); i++) {
      await new Promise((res) => setTimeout(res, 250));
      dry = await run(['approve-all', '--namespace', ns, '--by', 'ana']);
    }
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(
      '4 incident(s) awaiting approval match; nothing was answered. Run again with --yes to approve their open proposals.',
    );
    for (const id of [...podIds, suspendId]) expect(dry.stdout).toContain(id);
    expect(dry.stdout).not.toContain(elsewhereId);
    const capped = await run(['approve-all', '--namespace', ns, '--by', 'ana', '--limit', '2']);
    expect(capped.stdout).toContain(
      '2 incident(s) awaiting approval match (the first 2: more may match, --limit raises it); nothing was answered.',
    );
    expect((await stageOf(podIds[0]!)).stage).toBe('awaiting-approval');

    const approved = await run([
      'approve-all',
      '--namespace',
      ns,
      '--action',
      'terminate-pod',
      '--by',
      'ana',
      '--reason',
      'miner campaign',
      '--at-once',
      '2',
      '--yes',
    ]);
    expect(approved.code).toBe(0);
    expect(JSON.parse(approved.stdout)).toMatchObject({
      answer: 'approved',
      total: 4,
      answered: 3,
      skipped: 1,
      failed: 0,
      notTried: 0,
      skippedBecause: { 'proposes suspend-workload': 1 },
      samples: [
        {
          workflowId: suspendId,
          result: 'skipped',
          reason: expect.stringMatching(/^p1 proposes suspend-workload \(.*\), not terminate-pod$/),
        },
      ],
    });
    expect(approved.stderr).toMatch(/^4 of 4: 3 approved, 1 skipped, 0 failed$/m);
    for (const [i, id] of podIds.entries()) {
      expect((await reach(id, 'closed')).outcome).toBe('pod-terminated');
      expect(await podExists(kube, ns, pods[i]!.name)).toBe(false);
    }
    expect((await stageOf(suspendId)).stage).toBe('awaiting-approval');
    expect((await stageOf(elsewhereId)).stage).toBe('awaiting-approval');
    expect((await kube.apps.readNamespacedDeployment({ namespace: ns, name: deployment.name })).spec?.replicas).toBe(3);

    // Incidents answered a moment ago may still be listed: they are skipped, never answered twice.
    const denied = await run(['deny-all', '--namespace', ns, '--by', 'ana', '--yes']);
    expect(denied.code).toBe(0);
    const report = JSON.parse(denied.stdout) as {
      answered: number;
      failed: number;
      skipped: number;
      skippedBecause: Record<string, number>;
    };
    expect(report).toMatchObject({ answer: 'denied', answered: 1, failed: 0 });
    expect(Object.keys(report.skippedBecause).filter((k) => k !== 'no longer awaiting an answer')).toEqual([]);
    expect((await reach(suspendId, 'closed')).outcome).toBe('dismissed');
    expect((await kube.apps.readNamespacedDeployment({ namespace: ns, name: deployment.name })).spec?.replicas).toBe(3);
    expect((await stageOf(elsewhereId)).stage).toBe('awaiting-approval');

    const bad = await run([
      'approve-all',
      '--namespace',
      other,
      '--action',
      'kill',
      '--at-once',
      '0',
      '--by',
      'ana',
      '--yes',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      'error: invalid options:\n  - action: Invalid option: expected one of "terminate-pod"|"suspend-workload"\n  - atOnce: Too small: expected number to be >=1\n',
    );
    expect((await stageOf(elsewhereId)).stage).toBe('awaiting-approval');
    expect((await run(['approve', elsewhereId, '--by', 'ana'])).code).toBe(0);
    expect((await reach(elsewhereId, 'closed')).outcome).toBe('pod-terminated');
    await client.connection.close();
  }, 180_000);
});

/**
 * Who may report what, and who serves it, through a real forwarder, the shared Temporal dev server,
 * real workers and the kube-apiserver: credentials bound to clusters and namespaces (a token stolen
 * from one cluster cannot start anything in another), rate limits per credential and cluster, an SQS
 * queue bound to its cluster, and a task queue per cluster served by that cluster's own worker.
 */
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { signBody } from '../../forwarder/auth.js';
import { SqsIntake } from '../../forwarder/sqs-intake.js';
import { freshFixture } from '../support/alert-fixtures.js';
import { awsStack } from '../support/aws.js';
import { createNamespace, createWorkload, podExists, testKube, type TestKube } from '../support/cluster.js';
import { bearer, startForwarder, TOKENS, type TestForwarder } from '../support/forwarder.js';
import { startResponder, type Responder } from '../support/responder.js';
import { until } from '../support/until.js';

const uid = () => randomBytes(4).toString('hex');
const CLUSTER_A_TOKEN = 'cluster-a-falcosidekick-token-0123';
const CENTRAL_XDR_TOKEN = 'central-xdr-token-0123456789abcdef';
const SHOP_SECRET = 'shop-namespace-hmac-secret-0123456789';

let connection: Connection;
let client: Client;
let kube: TestKube;
beforeAll(async () => {
  connection = await Connection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection });
  kube = testKube();
});
afterAll(async () => {
  await connection?.close();
});

/** Started: the incident exists in Temporal (terminated here, since no worker serves this queue). */
async function started(workflowId: string): Promise<boolean> {
  try {
    await client.workflow.getHandle(workflowId).describe();
    await client.workflow.getHandle(workflowId).terminate('test over');
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

describe('forwarder credentials bound to clusters and namespaces', () => {
  let fwd: TestForwarder;
  beforeAll(async () => {
    fwd = await startForwarder({
      forwarder: {
        sources: {
          // The Falco source's own token reports anywhere (as before); cluster A's Falcosidekick holds its own, bound to A.
          falco: {
            token: TOKENS.falco,
            credentials: [{ name: 'cluster-a', token: CLUSTER_A_TOKEN, clusters: ['bound-a'] }],
          },
          // A central sender for two clusters, one new incident per cluster at a time.
          xdr: {
            token: CENTRAL_XDR_TOKEN,
            clusters: ['bound-a', 'bound-b'],
            ratePerSecond: 0.001,
            burst: 1,
            overRate: 'refuse',
          },
          normalized: { credentials: [{ name: 'shop-team', hmacSecret: SHOP_SECRET, namespaces: ['shop'] }] },
        },
      },
    });
  });
  afterAll(async () => {
    await fwd?.close();
  });

  const falco = (cluster: string, pod: string) =>
    freshFixture('falco-stratum', { cluster, namespace: 'scopes', pod, id: `f-${uid()}` });

  it('a cluster-bound token reporting another cluster gets 403 with the reason, and nothing starts', async () => {
    const pod = `miner-${uid()}`;
    const res = await fwd.post('/v1/alerts/falco?cluster=bound-b', falco('bound-b', pod), bearer(CLUSTER_A_TOKEN));
    expect(res.status).toBe(403);
    expect(res.json).toEqual({
      error: 'credential "cluster-a" may not report this alert; nothing was started',
      details: [
        'credential "cluster-a" of source "falco" may not report on cluster "bound-b" (it may report on: bound-a)',
      ],
    });
    expect(await started(`pod-incident:bound-b:scopes:${pod}`)).toBe(false);
    expect(await (await fetch(`${fwd.url}/metrics`)).text()).toMatch(
      /requests_rejected_total\{source="falco",status="403",reason="forbidden"\} 1/,
    );
    expect(
      fwd.logs.some((l) => l.includes('"sender":"cluster-a"') && l.includes('may not report on cluster \\"bound-b\\"')),
    ).toBe(true);
  });

  it('a cluster-bound token needs no ?cluster=: its cluster is filled in', async () => {
    const pod = `miner-${uid()}`;
    const res = await fwd.post('/v1/alerts/falco', falco('bound-a', pod), bearer(CLUSTER_A_TOKEN));
    expect(res.status, JSON.stringify(res.json)).toBe(202);
    expect(res.json.results[0]).toMatchObject({
      outcome: 'accepted',
      workflowId: `pod-incident:bound-a:scopes:${pod}`,
    });
    expect(await started(`pod-incident:bound-a:scopes:${pod}`)).toBe(true);
  });

  it('one alert outside the namespaces refuses the whole batch: neither incident starts', async () => {
    const [inShop, outside] = [`miner-${uid()}`, `miner-${uid()}`];
    const alert = (namespace: string, pod: string) => ({
      ...freshFixture('normalized', { cluster: 'bound-a', namespace, pod, id: `n-${uid()}` }),
    });
    const raw = JSON.stringify([alert('shop', inShop), alert('payments', outside)]);
    const res = await fwd.post('/v1/alerts', raw, signBody(SHOP_SECRET, raw));
    expect(res.status).toBe(403);
    expect(res.json.error).toBe('credential "shop-team" may not report 1 of these 2 alerts; nothing was started');
    expect(res.json.details).toEqual([
      'alerts[1]: credential "shop-team" of source "normalized" may not report on namespace "payments" (it may report on: shop)',
    ]);
    expect(await started(`pod-incident:bound-a:shop:${inShop}`)).toBe(false);
    expect(await started(`pod-incident:bound-a:payments:${outside}`)).toBe(false);
  });

  it('rate limits are per credential and cluster: a storm on one cluster does not hold back the other', async () => {
    const xdr = (cluster: string, pod: string) =>
      freshFixture('xdr-cryptominer', { cluster, namespace: 'scopes', pod, id: `x-${uid()}` });
    const [p1, p2, p3] = [`miner-${uid()}`, `miner-${uid()}`, `miner-${uid()}`];
    const first = await fwd.post('/v1/alerts/xdr', xdr('bound-a', p1), bearer(CENTRAL_XDR_TOKEN));
    expect(first.status, JSON.stringify(first.json)).toBe(202);
    const second = await fwd.post('/v1/alerts/xdr', xdr('bound-a', p2), bearer(CENTRAL_XDR_TOKEN));
    expect(second.status).toBe(429);
    expect(second.json.results[0]).toMatchObject({ outcome: 'rate-limited' });
    const otherCluster = await fwd.post('/v1/alerts/xdr', xdr('bound-b', p3), bearer(CENTRAL_XDR_TOKEN));
    expect(otherCluster.status, JSON.stringify(otherCluster.json)).toBe(202);
    const unbound = await fwd.post('/v1/alerts/xdr', xdr('bound-c', p3), bearer(CENTRAL_XDR_TOKEN));
    expect(unbound.status).toBe(403);
    expect(await started(`pod-incident:bound-a:scopes:${p1}`)).toBe(true);
    expect(await started(`pod-incident:bound-a:scopes:${p2}`)).toBe(false);
    expect(await started(`pod-incident:bound-b:scopes:${p3}`)).toBe(true);
    expect(await started(`pod-incident:bound-c:scopes:${p3}`)).toBe(false);
  });
});

describe('an SQS queue bound to its clusters', () => {
  it(
    'dead-letters a finding about another cluster with the reason, and starts nothing',
    { timeout: 60_000 },
    async () => {
      const aws = awsStack();
      const sqs = new SQSClient({ region: aws.region, endpoint: aws.endpoint });
      const [queue, dlq] = (await Promise.all(
        ['gd', 'gd-dlq'].map(
          async (n) => (await sqs.send(new CreateQueueCommand({ QueueName: `${n}-${uid()}` }))).QueueUrl!,
        ),
      )) as [string, string];
      const pod = `miner-${uid()}`;
      const finding = freshFixture('guardduty-miner-executed', {
        cluster: 'other-cluster',
        namespace: 'scopes',
        pod,
        id: `gd-${uid()}`,
      });
      await sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: JSON.stringify(finding) }));
      const fwd = await startForwarder({ config: { eks: { endpoint: aws.endpoint } } });
      const intake = SqsIntake.create(
        { url: queue, source: 'guardduty', clusters: ['bound-a'], deadLetterUrl: dlq, waitSeconds: 1, retrySeconds: 1 },
        fwd.config,
        fwd.pipeline,
        fwd.metrics,
        fwd.app.log,
      );
      intake.start();
      try {
        const dead = await until(
          'dead-lettered',
          async () =>
            (
              await sqs.send(
                new ReceiveMessageCommand({ QueueUrl: dlq, MessageAttributeNames: ['All'], WaitTimeSeconds: 1 }),
              )
            ).Messages?.[0],
        );
        expect(dead.MessageAttributes?.['pod-responder-reason']?.StringValue).toBe(
          `not allowed: queue ${queue} may not report on cluster "other-cluster" (it may report on: bound-a)`,
        );
        expect(await started(`pod-incident:other-cluster:scopes:${pod}`)).toBe(false);
      } finally {
        await intake.stop();
        await fwd.close();
        sqs.destroy();
      }
    },
  );
});

describe('a task queue per cluster', () => {
  let central: Responder;
  let inCluster: Responder;
  let fwd: TestForwarder;
  beforeAll(async () => {
    // The central worker serves cluster `qa` on the default queue; cluster `qb` runs its own worker on its own queue.
    // Each refuses the other's cluster (needs-manual-action), so a pod terminated proves which worker ran it.
    [central, inCluster] = await Promise.all([startResponder({ cluster: 'qa' }), startResponder({ cluster: 'qb' })]);
    fwd = await startForwarder({
      taskQueue: central.config.temporal.taskQueue,
      temporal: { clusterTaskQueues: { qb: inCluster.config.temporal.taskQueue } },
    });
  });
  afterAll(async () => {
    await fwd?.close();
    await Promise.all([central?.close(), inCluster?.close()]);
  });

  it.each([
    ['qb', () => inCluster],
    ['qa', () => central],
  ])("an alert for %s is handled on that cluster's queue", async (cluster, serving) => {
    const ns = await createNamespace(kube, 'tq');
    const w = await createWorkload(kube, ns, 'Pod');
    const body = freshFixture('falco-stratum', {
      cluster,
      namespace: ns,
      pod: w.name,
      id: `tq-${uid()}`,
      uid: w.uid,
      containerId: w.pod.containerId,
      containerName: 'app',
    });
    const res = await fwd.post(`/v1/alerts/falco?cluster=${cluster}`, body, bearer(TOKENS.falco));
    expect(res.status, JSON.stringify(res.json)).toBe(202);
    const handle = client.workflow.getHandle(res.json.results[0].workflowId);
    expect((await handle.describe()).taskQueue).toBe(serving().config.temporal.taskQueue);
    expect(await handle.result()).toMatchObject({ outcome: 'pod-terminated' });
    expect(await podExists(kube, ns, w.name)).toBe(false);
  });
});

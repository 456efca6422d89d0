/**
 * The containment steps under a SIGKILL: a worker process (the CLI's `worker`, direct executor) is killed while
 * the evidence bundle is being captured, after the pod was isolated. Restarted, the incident finishes from its
 * history: the capture had its one attempt (the kill waits for no second one, docs/kill-first.md) and is listed as
 * missing with why, the pod is killed, and the isolation does not outlive it.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { respondToAlert } from '../../temporal-client/incidents.js';
import { isolationNames } from '../../remediation/isolate.js';
import { configSchema } from '../../config/config.js';
import { awsStack } from '../support/aws.js';
import { createNamespace, createPod, podExists, testKube, type TestKube } from '../support/cluster.js';
import { startKubelet, type KubeletStandIn } from '../support/kubelet.js';
import { alertFor } from '../support/responder.js';
import { killProcessGroup, startWorkerProcess } from '../support/worker-process.js';
import { closedStatus } from '../support/closed-status.js';

const aws = awsStack();
const bucket = `crash-evidence-${randomBytes(4).toString('hex')}`;
const taskQueue = `containment-crash-${randomBytes(4).toString('hex')}`;
const s3 = new S3Client({ region: aws.region, endpoint: aws.endpoint, forcePathStyle: true });
let kube: TestKube;
let kubelet: KubeletStandIn;
let client: Client;
let worker: ChildProcess | undefined;

function startWorker(): Promise<ChildProcess> {
  return startWorkerProcess({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    POD_RESPONDER_TASK_QUEUE: taskQueue,
    KUBECONFIG: inject('kubeconfigPath'),
    POD_RESPONDER_CLUSTER: 'local',
    POD_RESPONDER_EVIDENCE_BUCKET: bucket,
    POD_RESPONDER_EVIDENCE_ENDPOINT: aws.endpoint,
    POD_RESPONDER_LOG_LEVEL: 'INFO',
    AWS_ACCESS_KEY_ID: aws.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.secretAccessKey,
    AWS_REGION: aws.region,
  });
}
const kill = killProcessGroup;

beforeAll(async () => {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  kube = testKube();
  kubelet = await startKubelet();
  client = new Client({ connection: await Connection.connect({ address: inject('temporalAddress') }) });
});
afterAll(async () => {
  if (worker && worker.exitCode === null && worker.signalCode === null) await kill(worker);
  await kubelet?.close();
  await client?.connection.close();
  s3.destroy();
});

describe('worker killed during containment', () => {
  it('while the evidence is captured (the pod isolated): restarted, no second capture, the bundle says why, the pod killed, the isolation gone', async () => {
    const ns = await createNamespace(kube, 'crash-evidence');
    const pod = await createPod(kube, ns, `miner-${randomBytes(2).toString('hex')}`, undefined, {}, kubelet.node);
    const name = pod.metadata!.name!;
    kubelet.logs.set(`${ns}/${name}/app`, 'xmrig: accepted share\n');
    // The node holds the logs back: the capture is running when the worker dies.
    kubelet.delays.set(`${ns}/${name}/app`, 120_000);
    worker = await startWorker();
    const config = configSchema.parse({
      temporal: { address: inject('temporalAddress'), taskQueue },
      policy: { evidenceSeconds: 5 },
    });
    const started = await respondToAlert(
      client,
      config,
      alertFor(ns, { kind: 'Pod', name, uid: pod.metadata!.uid!, pod }),
    );
    const handle = client.workflow.getHandle(started.workflowId);
    let capturing = false;
    for (let i = 0; i < 300 && !capturing; i++) {
      capturing = ((await handle.describe()).raw.pendingActivities ?? []).some(
        (a) => a.activityType?.name === 'captureEvidence',
      );
      if (!capturing) await new Promise((r) => setTimeout(r, 100));
    }
    expect(capturing).toBe(true);
    expect(
      await kube.networking.readNamespacedNetworkPolicy({
        namespace: ns,
        name: isolationNames(started.workflowId).policy,
      }),
    ).toBeDefined();
    await kill(worker);
    kubelet.delays.delete(`${ns}/${name}/app`);
    worker = await startWorker();

    const result = await closedStatus(handle);
    expect(result.outcome).toBe('pod-terminated');
    expect(await podExists(kube, ns, name)).toBe(false);
    expect(result.isolation).toMatchObject({ state: 'released' });
    expect(
      await kube.networking
        .readNamespacedNetworkPolicy({ namespace: ns, name: isolationNames(started.workflowId).policy })
        .catch(() => null),
    ).toBeNull();
    // One attempt: the capture that died with the worker timed out and was not tried again before the kill.
    const ev = result.evidence!;
    expect(ev.location).toBeNull();
    expect(ev.missing).toEqual(['everything: captureEvidence failed: activity Heartbeat timeout']);
    expect(result.timeline.filter((e) => e.event === 'evidence')).toEqual([
      expect.objectContaining({ detail: expect.stringMatching(/^not captured \(.*\); going on with the response$/) }),
    ]);
    const history = await handle.fetchHistory();
    expect(
      history.events!.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'captureEvidence'),
    ).toHaveLength(1);
    expect(
      history.events!.filter(
        (e) =>
          e.activityTaskStartedEventAttributes?.attempt &&
          e.activityTaskStartedEventAttributes.attempt > 1 &&
          e.activityTaskStartedEventAttributes.scheduledEventId?.toString() ===
            String(
              history.events!.find(
                (x) => x.activityTaskScheduledEventAttributes?.activityType?.name === 'captureEvidence',
              )!.eventId,
            ),
      ),
    ).toEqual([]);
    await kill(worker);
  }, 120_000);
});

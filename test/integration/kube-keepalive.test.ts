/**
 * The remediation core's Kubernetes clients keep their connection to the API server alive: client-node alone
 * makes a new agent, so a new TCP connection and TLS handshake, for every request. Counted on the real
 * kube-apiserver by the connections the HTTPS agents open.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { Agent } from 'node:https';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { kubeClients, kubeConfigFromFile } from '../../remediation/kube.js';

const proto = Agent.prototype as unknown as { createConnection: (...a: unknown[]) => unknown };
const original = proto.createConnection;
let opened = 0;
proto.createConnection = function (this: Agent, ...args: unknown[]) {
  opened += 1;
  return original.apply(this, args);
};
afterEach(() => {
  opened = 0;
});

const reads = async (core: CoreV1Api) => {
  for (let i = 0; i < 10; i++) await core.readNamespace({ name: 'default' });
};

describe("the remediation core's Kubernetes clients", () => {
  it('reuse one kept-alive connection for sequential requests', async () => {
    const { core } = kubeClients(kubeConfigFromFile(inject('kubeconfigPath')));
    await reads(core);
    expect(opened).toBe(1);
  });

  it('(client-node on its own opens one per request: what this fixes)', async () => {
    await reads(kubeConfigFromFile(inject('kubeconfigPath')).makeApiClient(CoreV1Api));
    expect(opened).toBe(10);
  });
});

/** The two pieces of remediation/kube.ts that take what client-node hands them: agent reuse and ApiException bodies. */
import { KubeConfig } from '@kubernetes/client-node';
import type { AgentOptions } from 'node:https';
import { describe, expect, it } from 'vitest';
import { keepAlive, kubeFailure } from '../../remediation/kube.js';

type CreateAgent = (cluster: { server?: string } | null, options: AgentOptions) => unknown;

describe('keepAlive', () => {
  const createAgent = () => (keepAlive(new KubeConfig()) as unknown as { createAgent: CreateAgent }).createAgent;
  const cluster = { server: 'https://kube.example:6443' };

  it('reuses one agent for the same TLS identity', () => {
    const agent = createAgent();
    expect(agent(cluster, { key: 'KEY-A', cert: 'CERT' })).toBe(agent(cluster, { key: 'KEY-A', cert: 'CERT' }));
  });

  it('keeps apart client keys given as { pem } objects, which String() would have made one "[object Object]"', () => {
    const agent = createAgent();
    expect(agent(cluster, { key: [{ pem: 'KEY-A' }] })).not.toBe(agent(cluster, { key: [{ pem: 'KEY-B' }] }));
  });
});

describe('kubeFailure', () => {
  it('reads reason and message from a JSON Status body', () => {
    expect(kubeFailure({ code: 409, body: JSON.stringify({ reason: 'AlreadyExists', message: 'exists' }) })).toEqual({
      status: 409,
      reason: 'AlreadyExists',
      message: 'exists',
    });
  });

  it('keeps the exception message when the body is JSON null', () => {
    expect(kubeFailure({ code: 500, body: 'null', message: 'HTTP 500' })).toEqual({
      status: 500,
      reason: 'Unknown',
      message: 'HTTP 500',
    });
  });
});

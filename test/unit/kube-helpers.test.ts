/**
 * The two pieces of remediation/kube.ts that take what client-node hands them: the agent its KubeConfig puts on a
 * request (swapped for a kept-alive one) and ApiException bodies. The first fails here, not as a slow worker, if
 * a client-node upgrade stops handing over an https.Agent that carries the cluster's TLS options.
 */
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { Agent } from 'node:https';
import { describe, expect, it } from 'vitest';
import { keptAliveAgents, keptAliveConfiguration, kubeFailure } from '../../remediation/kube.js';

const server = 'https://kube.example:6443';

function kubeConfig(user: { certData?: string; keyData?: string; token?: string }): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, caData: Buffer.from('CA-PEM').toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'u', ...user }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return kc;
}

/** A request as client-node prepares it: authenticated by the KubeConfig, then through our middleware. */
async function agentFor(kc: KubeConfig, middleware = keptAliveAgents()) {
  const ctx = new RequestContext(`${server}/api/v1/namespaces/default`, HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  const given = ctx.getAgent();
  return { given, sent: (await middleware.pre(ctx)).getAgent() };
}

describe('keptAliveAgents', () => {
  const cert = { certData: Buffer.from('CERT').toString('base64') };
  const keyA = { ...cert, keyData: Buffer.from('KEY-A').toString('base64') };

  it("replaces client-node's one-request https.Agent with a kept-alive one carrying the same TLS options", async () => {
    const { given, sent } = await agentFor(kubeConfig(keyA));
    // What the seam relies on: client-node hands over an https.Agent made from the cluster's TLS options.
    expect(given).toBeInstanceOf(Agent);
    expect(String((given as Agent).options.ca)).toBe('CA-PEM');
    expect(sent).toBeInstanceOf(Agent);
    expect(sent).not.toBe(given);
    expect((sent as Agent).options).toMatchObject({ keepAlive: true });
    expect(String((sent as Agent).options.ca)).toBe('CA-PEM');
    expect(String((sent as Agent).options.key)).toBe('KEY-A');
  });

  it('reuses one agent for the same TLS identity, and makes another for another client key', async () => {
    const middleware = keptAliveAgents();
    const first = await agentFor(kubeConfig(keyA), middleware);
    const again = await agentFor(kubeConfig(keyA), middleware);
    const otherKey = await agentFor(
      kubeConfig({ ...cert, keyData: Buffer.from('KEY-B').toString('base64') }),
      middleware,
    );
    expect(again.sent).toBe(first.sent);
    expect(otherKey.sent).not.toBe(first.sent);
  });

  it('keeps apart client keys given as { pem } objects, which String() would have made one "[object Object]"', async () => {
    const middleware = keptAliveAgents();
    const withKey = (pem: string) => {
      const ctx = new RequestContext(`${server}/api`, HttpMethod.GET);
      ctx.setAgent(new Agent({ key: [{ pem }] }));
      return middleware.pre(ctx).then((c) => c.getAgent());
    };
    expect(await withKey('KEY-A')).not.toBe(await withKey('KEY-B'));
  });

  it('is on the configuration of an HTTPS cluster, and not of a proxied one (client-node keeps its proxy agents)', () => {
    expect(keptAliveConfiguration(kubeConfig({ token: 't' })).middleware).toHaveLength(1);
    const proxied = new KubeConfig();
    proxied.loadFromOptions({
      clusters: [{ name: 'c', server, skipTLSVerify: false, proxyUrl: 'http://proxy.example:3128' }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
      currentContext: 'ctx',
    });
    expect(keptAliveConfiguration(proxied).middleware).toHaveLength(0);
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

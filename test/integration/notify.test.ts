/**
 * Notifications through a real worker to real HTTP endpoints on loopback: a signed JSON webhook, a Slack-style
 * webhook, one that fails once then answers, and one that is dead. The response never waits on them.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNATURE_HEADER, signNotification, TIMESTAMP_HEADER } from '../../activities/notify.js';
import { createNamespace, createWorkload, testKube, type TestKube } from '../support/cluster.js';
import { alertFor, startResponder, type Responder } from '../support/responder.js';
import { until } from '../support/until.js';
import { closedStatus } from '../support/closed-status.js';

const SECRET = 'notify-secret-0123456789abcdef';
interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}
let server: Server;
let base: string;
const received: Received[] = [];
let flakyFailures = 1;
let r: Responder;
let kube: TestKube;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.url === '/flaky' && flakyFailures > 0) {
        flakyFailures -= 1;
        res.writeHead(503).end();
        return;
      }
      received.push({ path: req.url ?? '', headers: req.headers, body });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // A port nothing listens on: connections are refused, as from a receiver that is down.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  r = await startResponder({
    notify: [
      { name: 'soc', kind: 'webhook', url: `${base}/soc`, secret: SECRET },
      { name: 'chat', kind: 'slack', url: `${base}/slack`, events: ['awaiting-approval', 'needs-manual-action'] },
      { name: 'flaky', kind: 'webhook', url: `${base}/flaky` },
      { name: 'dead', kind: 'webhook', url: `http://127.0.0.1:${deadPort}/hook` },
    ],
  });
  kube = testKube();
});
afterAll(async () => {
  await r?.close();
  server?.close();
});

const at = (path: string, incidentId: string) => received.filter((m) => m.path === path && m.body.includes(incidentId));

describe('notifications', () => {
  it('awaiting approval: the exact commands and the UI link, signed; then acted; a dead target is in the status, and the kill never waited on it', async () => {
    const ns = await createNamespace(kube, 'notify');
    const w = await createWorkload(kube, ns, 'Pod');
    const h = await r.respond(alertFor(ns, w), { requireApprovalFor: ['terminate-pod'] });
    await r.waitForStage(h, 'awaiting-approval');
    const signed = await until('approval request at the webhook', async () => at('/soc', h.workflowId)[0]);
    const ts = signed.headers[TIMESTAMP_HEADER] as string;
    expect(signed.headers[SIGNATURE_HEADER]).toBe(signNotification(SECRET, ts, signed.body));
    const message = JSON.parse(signed.body);
    expect(message).toMatchObject({
      event: 'awaiting-approval',
      incidentId: h.workflowId,
      proposal: { id: 'p1', action: 'terminate-pod' },
    });
    expect(message.commands).toEqual([
      `pod-responder approve '${h.workflowId}' --proposal p1 --by <you> [--reason <why>]`,
      `pod-responder deny '${h.workflowId}' --proposal p1 --by <you> --reason <why>`,
    ]);
    expect(message.ui).toBe(`http://localhost:8233/namespaces/default/workflows/${encodeURIComponent(h.workflowId)}`);
    const slack = JSON.parse((await until('slack message', async () => at('/slack', h.workflowId)[0])).body);
    expect(slack.text).toContain(`pod-responder approve '${h.workflowId}' --proposal p1`);

    await r.approve(h, 'lead');
    const result = await closedStatus(h);
    expect(result.outcome).toBe('pod-terminated');
    const events = at('/soc', h.workflowId).map((m) => JSON.parse(m.body).event);
    expect(events).toEqual(['awaiting-approval', 'acted']);
    expect(at('/slack', h.workflowId)).toHaveLength(1); // chat takes approvals and manual action only
    // The flaky target answered on its second try; the dead one is reported, twice (both events), and cost nothing.
    expect(at('/flaky', h.workflowId).length).toBe(2);
    expect(result.notifications).toMatchObject({ sent: 2, delivered: 5 }); // soc 2, chat 1, flaky 2
    expect(result.notifications!.failed.map((f) => [f.event, f.target])).toEqual([
      ['awaiting-approval', 'dead'],
      ['acted', 'dead'],
    ]);
    expect(result.notifications!.failed[0]!.error).toMatch(/ECONNREFUSED.*\(after 3 attempts\)$/);
    // The kill did not wait on the dead target: the pod was deleted before its failure came back.
    const events2 = result.timeline.map((e) => `${e.event} ${e.detail}`);
    expect(events2.findIndex((e) => e.startsWith('delete-pod'))).toBeLessThan(
      events2.findIndex((e) => e.startsWith('notify-failed acted to dead')),
    );
  });

  it('needs a person: sent before the incident closes', async () => {
    const ns = await createNamespace(kube, 'notify-manual');
    const w = await createWorkload(kube, ns, 'Deployment');
    const h = await r.respond({ ...alertFor(ns, w), cluster: { name: 'elsewhere' } });
    const result = await closedStatus(h);
    expect(result.outcome).toBe('needs-manual-action');
    const manual = at('/soc', h.workflowId).map((m) => JSON.parse(m.body));
    expect(manual).toEqual([
      expect.objectContaining({
        event: 'needs-manual-action',
        outcome: 'needs-manual-action',
        problem: result.problem,
      }),
    ]);
    expect(at('/slack', h.workflowId)).toHaveLength(1);
  });
});

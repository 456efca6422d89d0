/**
 * Malformed and hostile requests: each gets its exact 4xx and error, and none starts a workflow.
 * The forwarder talks to the real dev server, so "none started" is checked there, not assumed.
 */
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createHmac } from 'node:crypto';
import { signBody } from '../../forwarder/auth.js';
import { fixture } from '../support/alert-fixtures.js';
import { bearer, HMAC_SECRET, startForwarder, TOKENS, type TestForwarder } from '../support/forwarder.js';

let fwd: TestForwarder;
let connection: Connection;

beforeAll(async () => {
  connection = await Connection.connect({ address: inject('temporalAddress') });
  // A small body limit and batch size, to reach them cheaply.
  fwd = await startForwarder({ forwarder: { bodyLimitBytes: 64 * 1024, maxBatch: 10 } });
});
afterAll(async () => {
  await fwd?.close();
  await connection?.close();
});

const FALCO = '/v1/alerts/falco?cluster=prod';
const GD = '/v1/alerts/guardduty';
const falco = (edit: (f: Record<string, any>) => void = () => {}) => {
  const f = fixture('falco-stratum');
  f.time = new Date().toISOString();
  edit(f);
  return f;
};
/** A vendor fixture with one thing broken by `edit`. */
const edited =
  (name: string) =>
  (edit: (f: Record<string, any>) => void): Record<string, any> => {
    const f = fixture(name);
    edit(f);
    return f;
  };
const gd = edited('guardduty-miner-executed');
const xdr = edited('xdr-cryptominer');
const norm = edited('normalized');
/** The normalized endpoint authenticates by HMAC of the exact bytes. */
const signed = (body: unknown) => {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  return { raw, headers: signBody(HMAC_SECRET, raw) };
};

interface Case {
  path: string;
  body: unknown;
  headers?: Record<string, string>;
  method?: string;
  status: number;
  /** Exact, or a pattern where the message carries the clock. */
  error: string | RegExp;
  details?: string[];
}

const NOW = () => Math.floor(Date.now() / 1000);

const auth = bearer(TOKENS.falco);
const CASES: Record<string, Case> = {
  // --- credentials
  'no credentials': { path: FALCO, body: falco(), status: 401, error: 'missing or invalid credentials' },
  'wrong token': {
    path: FALCO,
    body: falco(),
    headers: bearer('falco-token-0123456789abcdeX'),
    status: 401,
    error: 'missing or invalid credentials',
  },
  "another source's token": {
    path: FALCO,
    body: falco(),
    headers: bearer(TOKENS.xdr),
    status: 401,
    error: 'missing or invalid credentials',
  },
  'token as Basic auth': {
    path: FALCO,
    body: falco(),
    headers: { authorization: `Basic ${Buffer.from(`x:${TOKENS.falco}`).toString('base64')}` },
    status: 401,
    error: 'missing or invalid credentials',
  },
  'token prefix': {
    path: FALCO,
    body: falco(),
    headers: bearer(TOKENS.falco.slice(0, 10)),
    status: 401,
    error: 'missing or invalid credentials',
  },
  'bearer on an HMAC-only source': {
    path: '/v1/alerts',
    body: norm(() => {}),
    headers: bearer(HMAC_SECRET),
    status: 401,
    error: 'missing or invalid credentials',
  },
  'HMAC of another body': {
    path: '/v1/alerts',
    body: JSON.stringify(norm(() => {})),
    headers: signBody(HMAC_SECRET, '{}'),
    status: 401,
    error: 'missing or invalid credentials',
  },
  'HMAC with the wrong key': {
    path: '/v1/alerts',
    body: JSON.stringify(norm(() => {})),
    headers: signBody('another-secret-0123456789', JSON.stringify(norm(() => {}))),
    status: 401,
    error: 'missing or invalid credentials',
  },
  'HMAC not hex': {
    path: '/v1/alerts',
    body: norm(() => {}),
    headers: { 'x-signature-256': `sha256=${'z'.repeat(64)}` },
    status: 401,
    error: 'missing or invalid credentials',
  },
  'HMAC truncated': {
    path: '/v1/alerts',
    body: JSON.stringify(norm(() => {})),
    headers: {
      ...signBody(HMAC_SECRET, JSON.stringify(norm(() => {}))),
      'x-signature-256': signBody(HMAC_SECRET, JSON.stringify(norm(() => {})))['x-signature-256']!.slice(0, 40),
    },
    status: 401,
    error: 'missing or invalid credentials',
  },
  'HMAC replayed after the window': {
    path: '/v1/alerts',
    body: JSON.stringify(norm(() => {})),
    headers: signBody(HMAC_SECRET, JSON.stringify(norm(() => {})), NOW() - 301),
    status: 401,
    error:
      /^signature timestamp \d+ is 3\d\d s old; it must be within 300 s of the forwarder's clock \(a replayed request, or a clock to fix\)$/,
  },
  'HMAC timestamp in the future': {
    path: '/v1/alerts',
    body: JSON.stringify(norm(() => {})),
    headers: signBody(HMAC_SECRET, JSON.stringify(norm(() => {})), NOW() + 3600),
    status: 401,
    error:
      /^signature timestamp \d+ is 3[56]\d\d s in the future; it must be within 300 s of the forwarder's clock \(a replayed request, or a clock to fix\)$/,
  },
  'HMAC of the body without a timestamp': {
    path: '/v1/alerts',
    body: JSON.stringify(norm(() => {})),
    headers: {
      'x-signature-256': `sha256=${createHmac('sha256', HMAC_SECRET)
        .update(JSON.stringify(norm(() => {})))
        .digest('hex')}`,
    },
    status: 401,
    error:
      'x-signature-timestamp is required: sign "<unix seconds>.<body>" and send the seconds in x-signature-timestamp',
  },
  'HMAC with its timestamp changed': {
    path: '/v1/alerts',
    body: JSON.stringify(norm(() => {})),
    headers: {
      ...signBody(HMAC_SECRET, JSON.stringify(norm(() => {})), NOW() - 1000),
      'x-signature-timestamp': String(NOW()),
    },
    status: 401,
    error: 'missing or invalid credentials',
  },
  // --- endpoints
  'unknown source': { path: '/v1/alerts/splunk', body: {}, headers: auth, status: 404, error: 'not found' },
  'GET on an alert endpoint': {
    path: FALCO,
    method: 'GET',
    body: undefined,
    headers: auth,
    status: 404,
    error: 'not found',
  },
  // --- transport
  'text/plain body': {
    path: FALCO,
    body: JSON.stringify(falco()),
    headers: { ...auth, 'content-type': 'text/plain' },
    status: 415,
    error: 'Unsupported Media Type',
  },
  'form-encoded body': {
    path: FALCO,
    body: 'rule=x',
    headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
    status: 415,
    error: 'Unsupported Media Type',
  },
  'body over the limit': {
    path: FALCO,
    body: falco((f) => (f.output = 'A'.repeat(70 * 1024))),
    headers: auth,
    status: 413,
    error: 'Request body is too large',
  },
  'batch over the limit': {
    path: FALCO,
    body: Array(11).fill(falco()),
    headers: auth,
    status: 400,
    error: 'invalid request',
    details: ['(root): batch of 11 alerts exceeds the limit of 10'],
  },
  // --- JSON
  'not JSON': {
    path: FALCO,
    body: '{"rule": ',
    headers: auth,
    status: 400,
    error: 'invalid JSON',
    details: ['(root): Unexpected end of JSON input'],
  },
  'empty body': {
    path: FALCO,
    body: '',
    headers: auth,
    status: 400,
    error: 'invalid JSON',
    details: ['(root): Unexpected end of JSON input'],
  },
  'prototype poisoning': {
    path: FALCO,
    body: '{"__proto__": {"admin": true}}',
    headers: auth,
    status: 400,
    error: 'invalid JSON',
    details: ['(root): Object contains forbidden prototype property'],
  },
  'constructor poisoning': {
    path: FALCO,
    body: '{"constructor": {"prototype": {"admin": true}}}',
    headers: auth,
    status: 400,
    error: 'invalid JSON',
    details: ['(root): Object contains forbidden prototype property'],
  },
  'a bare string': {
    path: FALCO,
    body: '"xmrig"',
    headers: auth,
    status: 400,
    error: 'invalid alert',
    details: ['(root): must be a JSON object or an array of them'],
  },
  null: {
    path: FALCO,
    body: 'null',
    headers: auth,
    status: 400,
    error: 'invalid alert',
    details: ['(root): must be a JSON object or an array of them'],
  },
  'empty batch': {
    path: FALCO,
    body: [],
    headers: auth,
    status: 400,
    error: 'invalid request',
    details: ['(root): batch is empty'],
  },
  'a number in a batch': {
    path: FALCO,
    body: [falco(), 7],
    headers: auth,
    status: 400,
    error: 'invalid alert batch',
    details: ['[1]: must be a JSON object'],
  },
  // --- Falco
  'Falco: no cluster in the URL': {
    path: '/v1/alerts/falco',
    body: falco(),
    headers: auth,
    status: 400,
    error: 'invalid request',
    details: ['query.cluster: Invalid input: expected string, received undefined'],
  },
  'Falco: path traversal as cluster': {
    path: '/v1/alerts/falco?cluster=..%2Fetc',
    body: falco(),
    headers: auth,
    status: 400,
    error: 'invalid request',
    details: ['query.cluster: must be a cluster name (letters, digits, "-" and "_")'],
  },
  'Falco: unknown query parameter': {
    path: `${FALCO}&debug=1`,
    body: falco(),
    headers: auth,
    status: 400,
    error: 'invalid request',
    details: ['query: Unrecognized key: "debug"'],
  },
  'Falco: no rule': {
    path: FALCO,
    body: falco((f) => delete f.rule),
    headers: auth,
    status: 400,
    error: 'invalid alert',
    details: ['rule: Invalid input: expected string, received undefined'],
  },
  'Falco: unknown priority': {
    path: FALCO,
    body: falco((f) => (f.priority = 'LOUD')),
    headers: auth,
    status: 400,
    error: 'invalid alert',
    details: [
      'priority: must be a Falco priority (Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug)',
    ],
  },
  'Falco: time in words': {
    path: FALCO,
    body: falco((f) => (f.time = 'yesterday')),
    headers: auth,
    status: 400,
    error: 'invalid alert',
    details: ['time: must be an RFC 3339 timestamp with a time zone'],
  },
  'Falco: time without a zone': {
    path: FALCO,
    body: falco((f) => (f.time = '2026-11-27T10:21:07.123456789')),
    headers: auth,
    status: 400,
    error: 'invalid alert',
    details: ['time: must be an RFC 3339 timestamp with a time zone'],
  },
  'Falco: upper-case pod name': {
    path: FALCO,
    body: falco((f) => (f.output_fields['k8s.pod.name'] = 'Checkout')),
    headers: auth,
    status: 400,
    error: 'invalid alert',
    details: ['output_fields["k8s.pod.name"]: must be a DNS-1123 subdomain'],
  },
  'Falco: log injection in the namespace': {
    path: FALCO,
    body: falco((f) => (f.output_fields['k8s.ns.name'] = 'shop\n{"level":"INFO","msg":"forged"}')),
    headers: auth,
    status: 400,
    error: 'invalid alert',
    details: ['output_fields["k8s.ns.name"]: must be a DNS-1123 label (lowercase alphanumerics and "-")'],
  },
  'Falco: container ID not hex': {
    path: FALCO,
    body: falco((f) => (f.output_fields['container.id'] = '$(reboot)')),
    headers: auth,
    status: 400,
    error: 'invalid alert',
    details: ['output_fields["container.id"]: must be a container ID: [runtime://]hex, 12 to 64 hex digits'],
  },
  'Falco: pod UID not a UUID': {
    path: FALCO,
    body: falco((f) => (f.output_fields['k8s.pod.uid'] = '1234')),
    headers: auth,
    status: 400,
    error: 'invalid alert',
    details: ['output_fields["k8s.pod.uid"]: Invalid UUID'],
  },
  'Falco: tags not a list': {
    path: FALCO,
    body: falco((f) => (f.tags = 'T1496')),
    headers: auth,
    status: 400,
    error: 'invalid alert',
    details: ['tags: Invalid input: expected array, received string'],
  },
  'Falco: negative pid': {
    path: FALCO,
    body: falco((f) => (f.output_fields['proc.pid'] = -1)),
    headers: auth,
    status: 400,
    error: 'invalid alert',
    details: ['output_fields["proc.pid"]: Too small: expected number to be >=0'],
  },
  'Falco: output_fields missing': {
    path: FALCO,
    body: falco((f) => delete f.output_fields),
    headers: auth,
    status: 400,
    error: 'invalid alert',
    details: ['output_fields: Invalid input: expected object, received undefined'],
  },
  'Falco: 10 kB rule name': {
    path: FALCO,
    body: falco((f) => (f.rule = 'x'.repeat(10_000))),
    headers: auth,
    status: 400,
    error: 'invalid alert',
    details: ['rule: Too big: expected string to have <=256 characters'],
  },
  // --- GuardDuty
  'GuardDuty: another event type': {
    path: GD,
    body: gd((f) => (f['detail-type'] = 'AWS API Call via CloudTrail')),
    headers: bearer(TOKENS.guardduty),
    status: 400,
    error: 'invalid alert',
    details: ['detail-type: Invalid input: expected "GuardDuty Finding"'],
  },
  'GuardDuty: not from aws.guardduty': {
    path: GD,
    body: gd((f) => (f.source = 'my.app')),
    headers: bearer(TOKENS.guardduty),
    status: 400,
    error: 'invalid alert',
    details: ['source: Invalid input: expected "aws.guardduty"'],
  },
  'GuardDuty: 11-digit account': {
    path: GD,
    body: gd((f) => (f.account = '12345678901')),
    headers: bearer(TOKENS.guardduty),
    status: 400,
    error: 'invalid alert',
    details: ['account: must be a 12-digit AWS account ID'],
  },
  'GuardDuty: severity as a word': {
    path: GD,
    body: gd((f) => (f.detail.severity = 'HIGH')),
    headers: bearer(TOKENS.guardduty),
    status: 400,
    error: 'invalid alert',
    details: ['detail.severity: Invalid input: expected number, received string'],
  },
  'GuardDuty: severity 11': {
    path: GD,
    body: gd((f) => (f.detail.severity = 11)),
    headers: bearer(TOKENS.guardduty),
    status: 400,
    error: 'invalid alert',
    details: ['detail.severity: Too big: expected number to be <=10'],
  },
  'GuardDuty: no finding ID': {
    path: GD,
    body: gd((f) => delete f.detail.id),
    headers: bearer(TOKENS.guardduty),
    status: 400,
    error: 'invalid alert',
    details: ['detail.id: Invalid input: expected string, received undefined'],
  },
  'GuardDuty: region not a region': {
    path: GD,
    body: gd((f) => (f.region = 'eu-west')),
    headers: bearer(TOKENS.guardduty),
    status: 400,
    error: 'invalid alert',
    details: ['region: must be an AWS region such as us-east-1'],
  },
  'GuardDuty: workload namespace with a slash': {
    path: GD,
    body: gd((f) => (f.detail.resource.kubernetesDetails.kubernetesWorkloadDetails.namespace = 'shop/../kube-system')),
    headers: bearer(TOKENS.guardduty),
    status: 400,
    error: 'invalid alert',
    details: [
      'detail.resource.kubernetesDetails.kubernetesWorkloadDetails.namespace: must be a DNS-1123 label (lowercase alphanumerics and "-")',
    ],
  },
  // --- XDR
  'XDR: no alert_id': {
    path: '/v1/alerts/xdr',
    body: xdr((f) => delete f.alert_id),
    headers: bearer(TOKENS.xdr),
    status: 400,
    error: 'invalid alert',
    details: ['alert_id: must be a string or a non-negative integer'],
  },
  'XDR: unknown severity': {
    path: '/v1/alerts/xdr',
    body: xdr((f) => (f.severity = 'urgent')),
    headers: bearer(TOKENS.xdr),
    status: 400,
    error: 'invalid alert',
    details: ['severity: must be an XDR severity (informational, low, medium, high, critical)'],
  },
  'XDR: timestamp as text': {
    path: '/v1/alerts/xdr',
    body: xdr((f) => (f.detection_timestamp = '2026-11-27')),
    headers: bearer(TOKENS.xdr),
    status: 400,
    error: 'invalid alert',
    details: ['detection_timestamp: Invalid input: expected number, received string'],
  },
  'XDR: cluster name with spaces': {
    path: '/v1/alerts/xdr',
    body: xdr((f) => (f.original_alert.event.cluster_name = 'prod eks')),
    headers: bearer(TOKENS.xdr),
    status: 400,
    error: 'invalid alert',
    details: ['original_alert.event.cluster_name: must be a cluster name (letters, digits, "-" and "_")'],
  },
  'XDR: bad namespace in runtimeInfo': {
    path: '/v1/alerts/xdr',
    body: xdr((f) => (f.original_alert.messageData.containers[0].runtimeInfo.namespace = 'Kube_System')),
    headers: bearer(TOKENS.xdr),
    status: 400,
    error: 'invalid alert',
    details: [
      'original_alert.messageData.containers[0].runtimeInfo.namespace: must be a DNS-1123 label (lowercase alphanumerics and "-")',
    ],
  },
  'XDR: query parameters': {
    path: '/v1/alerts/xdr?cluster=prod',
    body: xdr(() => {}),
    headers: bearer(TOKENS.xdr),
    status: 400,
    error: 'invalid request',
    details: ['query: this endpoint takes no query parameters (got "cluster")'],
  },
  // --- normalized
  'normalized: unknown field': {
    path: '/v1/alerts',
    ...body(norm((f) => (f.admin = true))),
    status: 400,
    error: 'invalid alert',
    details: ['(root): Unrecognized key: "admin"'],
  },
  'normalized: unknown source': {
    path: '/v1/alerts',
    ...body(norm((f) => (f.source = 'splunk'))),
    status: 400,
    error: 'invalid alert',
    details: ['source: Invalid option: expected one of "xdr"|"falco"|"guardduty"|"manual"|"generic"'],
  },
  'normalized: empty alert ID': {
    path: '/v1/alerts',
    ...body(norm((f) => (f.alertId = ''))),
    status: 400,
    error: 'invalid alert',
    details: ['alertId: Too small: expected string to have >=1 characters'],
  },
  'normalized: detectedAt not a time': {
    path: '/v1/alerts',
    ...body(norm((f) => (f.detectedAt = 'now'))),
    status: 400,
    error: 'invalid alert',
    details: ['detectedAt: Invalid ISO datetime'],
  },
  'normalized: 300-character pod name': {
    path: '/v1/alerts',
    ...body(norm((f) => (f.podName = 'a'.repeat(300)))),
    status: 400,
    error: 'invalid alert',
    details: ['podName: Too big: expected string to have <=253 characters'],
  },
  'normalized: control characters in the pod name': {
    path: '/v1/alerts',
    ...body(norm((f) => (f.podName = 'web\u001b[2J'))),
    status: 400,
    error: 'invalid alert',
    details: ['podName: must be a DNS-1123 subdomain'],
  },
  'normalized: region not a region': {
    path: '/v1/alerts',
    ...body(norm((f) => (f.cluster.region = 'mars'))),
    status: 400,
    error: 'invalid alert',
    details: ['cluster.region: must be an AWS region such as us-east-1'],
  },
};

function body(value: unknown): { body: string; headers: Record<string, string> } {
  const s = signed(value);
  return { body: s.raw, headers: s.headers };
}

describe('hostile and malformed input', () => {
  it('has at least 40 cases', () => {
    expect(Object.keys(CASES).length).toBeGreaterThanOrEqual(40);
  });

  it.each(Object.entries(CASES))('%s', async (_name, c) => {
    const res = await fetch(`${fwd.url}${c.path}`, {
      method: c.method ?? 'POST',
      headers: { 'content-type': 'application/json', ...c.headers },
      ...(c.body === undefined ? {} : { body: typeof c.body === 'string' ? c.body : JSON.stringify(c.body) }),
    });
    const json = (await res.json()) as { error: string; details?: string[] };
    expect({ status: res.status, ...json }).toEqual({
      status: c.status,
      error: typeof c.error === 'string' ? c.error : expect.stringMatching(c.error),
      ...(c.details ? { details: c.details } : {}),
    });
    // Nothing internal leaks: no stack frames, no file paths.
    expect(JSON.stringify(json)).not.toMatch(/at .*\(|\/work\/|node_modules/);
  });

  it('answers 404 for a source without credentials configured', async () => {
    const falcoOnly = await startForwarder({
      taskQueue: fwd.config.temporal.taskQueue,
      forwarder: { sources: { falco: { token: TOKENS.falco } } },
    });
    try {
      const res = await falcoOnly.post(
        '/v1/alerts/guardduty',
        fixture('guardduty-miner-executed'),
        bearer(TOKENS.guardduty),
      );
      expect({ status: res.status, body: res.json }).toEqual({
        status: 404,
        body: { error: 'source "guardduty" is not enabled on this forwarder' },
      });
    } finally {
      await falcoOnly.close();
    }
  });

  it('started no workflow and accepted nothing', async () => {
    const client = new Client({ connection });
    expect(await client.workflow.count(`TaskQueue = "${fwd.config.temporal.taskQueue}"`)).toMatchObject({ count: 0 });
    const metrics = await (await fetch(`${fwd.url}/metrics`)).text();
    expect(metrics).not.toMatch(/alerts_accepted_total\{source="\w+"\} [1-9]/);
    expect(metrics).toMatch(/requests_rejected_total\{source="falco",status="401",reason="unauthenticated"\} 5/);
  });
});

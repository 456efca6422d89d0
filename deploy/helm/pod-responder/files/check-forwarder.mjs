// `helm test`: the forwarder answers. Reads the forwarder Service's EndpointSlices (what the Service routes to) and
// asks every ready endpoint for /readyz and /healthz: each replica checked, and no cluster DNS or Service proxy
// needed, so it holds in clusters without kube-proxy too. Node's own modules only.
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

const SA = '/var/run/secrets/kubernetes.io/serviceaccount';
const { FORWARDER_SERVICE: service, EXPECTED_READY, KUBERNETES_SERVICE_HOST: apiHost } = process.env;
const apiPort = process.env.KUBERNETES_SERVICE_PORT ?? '443';
const expected = Number(EXPECTED_READY ?? '1');
const deadline = Date.now() + Number(process.env.CHECK_SECONDS ?? '60') * 1000;

function get(request, options) {
  return new Promise((resolve, reject) => {
    const req = request({ method: 'GET', timeout: 5000, ...options }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 5 s')));
    req.on('error', reject);
    req.end();
  });
}

async function readyEndpoints() {
  const namespace = readFileSync(`${SA}/namespace`, 'utf8').trim();
  const res = await get(httpsRequest, {
    host: apiHost,
    port: apiPort,
    path: `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${service}`)}`,
    ca: readFileSync(`${SA}/ca.crt`),
    headers: { authorization: `Bearer ${readFileSync(`${SA}/token`, 'utf8').trim()}` },
  });
  if (res.status !== 200) throw new Error(`listing the EndpointSlices of ${service}: HTTP ${res.status} ${res.body}`);
  const found = [];
  for (const slice of JSON.parse(res.body).items ?? []) {
    const port = (slice.ports ?? []).find((p) => p.name === 'http')?.port;
    for (const e of slice.endpoints ?? [])
      if (e.conditions?.ready !== false && port) found.push({ pod: e.targetRef?.name, address: e.addresses[0], port });
  }
  return found;
}

async function check() {
  const endpoints = await readyEndpoints();
  if (endpoints.length < expected)
    throw new Error(`Service ${service} routes to ${endpoints.length} ready forwarder(s), expected ${expected}`);
  for (const e of endpoints) {
    for (const path of ['/readyz', '/healthz']) {
      const res = await get(httpRequest, { host: e.address, port: e.port, path });
      if (res.status !== 200)
        throw new Error(`${e.pod} (${e.address}:${e.port}) ${path}: HTTP ${res.status} ${res.body}`);
      console.log(`${e.pod} (${e.address}:${e.port}) ${path}: ${res.status} ${res.body}`);
    }
  }
  console.log(`ok: ${endpoints.length} forwarder(s) behind Service ${service} answer`);
}

for (;;) {
  try {
    await check();
    break;
  } catch (err) {
    if (Date.now() > deadline) {
      console.error(`FAILED: ${err.message}`);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

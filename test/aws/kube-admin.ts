/** The front's own Kubernetes client: admin token, JSON in and out, nothing else. */
import { request } from 'node:https';

export interface KubeTarget {
  url: string;
  caPem: string;
  adminToken: string;
}

export interface KubeAnswer {
  status: number;
  body: unknown;
}

export function kubeRequest(
  kube: KubeTarget,
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<KubeAnswer> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, kube.url),
      {
        method,
        ca: kube.caPem,
        timeout: 10_000,
        headers: {
          authorization: `Bearer ${kube.adminToken}`,
          accept: 'application/json',
          ...(payload ? { 'content-type': contentType, 'content-length': String(payload.length) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`kube ${method} ${path}: timeout`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Names an AWS call (service + action) the way AWS would, from the request alone, so faults and call
 * counts can say "the 1st CreateRole" whatever SDK sent it.
 *
 * - service: the SigV4 credential scope (Authorization header, or X-Amz-Credential when presigned);
 * - action: `Action=` for query protocols (EC2, IAM, STS), `X-Amz-Target` for JSON protocols, and for
 *   REST services (Lambda, EKS) the operation whose HTTP binding matches method + path, taken from
 *   the AWS SDK's own schemas so the tables cannot drift from what the SDK sends.
 */
import * as eksSdk from '@aws-sdk/client-eks';
import * as lambdaSdk from '@aws-sdk/client-lambda';
import type { InboundRequest } from './http.js';

export type Protocol = 'ec2' | 'query' | 'json' | 'rest-json';

export interface Classified {
  service: string;
  action: string;
  protocol: Protocol;
  /** REST path labels, percent-decoded (e.g. clusterName, principalArn, FunctionName). */
  labels: Record<string, string>;
  /** Query protocol parameters (form body and URL query together). */
  params: URLSearchParams;
}

interface Route {
  action: string;
  method: string;
  pattern: RegExp;
  labelNames: string[];
  literalQuery: [string, string][];
  specificity: number;
}

/** An operation schema in @aws-sdk/* v3: [9, namespace, name, { http: [method, uri, code] }, ...]. */
function routesOf(sdk: Record<string, unknown>): Route[] {
  const routes: Route[] = [];
  for (const value of Object.values(sdk)) {
    if (!Array.isArray(value) || value[0] !== 9) continue;
    const http = (value[3] as { http?: [string, string, number] } | undefined)?.http;
    if (!http) continue;
    const [method, uri] = http;
    const [pathTemplate = '', literal = ''] = uri.split('?');
    const labelNames: string[] = [];
    let specificity = 0;
    const source = pathTemplate
      .split('/')
      .map((seg) => {
        const label = /^\{(\w+)(\+?)\}$/.exec(seg);
        if (!label) {
          if (seg) specificity += 10;
          return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        }
        labelNames.push(label[1]!);
        if (!label[2]) specificity += 1;
        return label[2] ? '(.+)' : '([^/]+)';
      })
      .join('/');
    const literalQuery = [...new URLSearchParams(literal)].map(([k, v]) => [k, v] as [string, string]);
    specificity += literalQuery.length * 10;
    routes.push({
      action: value[2] as string,
      method,
      pattern: new RegExp(`^${source}$`),
      labelNames,
      literalQuery,
      specificity,
    });
  }
  return routes.sort((a, b) => b.specificity - a.specificity);
}

const REST_ROUTES: Record<string, Route[]> = {
  eks: routesOf(eksSdk),
  lambda: routesOf(lambdaSdk),
};

/** `Credential=AKID/20240101/us-east-1/iam/aws4_request` → { accessKeyId, region, service }. */
export function credentialScope(
  req: InboundRequest,
): { accessKeyId: string; region: string; service: string } | undefined {
  const auth = req.headers['authorization'];
  const credential =
    (typeof auth === 'string' ? /Credential=([^,\s]+)/.exec(auth)?.[1] : undefined) ??
    req.query.get('X-Amz-Credential');
  const parts = credential?.split('/');
  if (!parts || parts.length < 5) return undefined;
  return { accessKeyId: parts[0]!, region: parts[2]!, service: parts[3]! };
}

export function classify(req: InboundRequest): Classified {
  const service = credentialScope(req)?.service ?? 'unknown';
  const params = new URLSearchParams(req.query);
  const contentType = String(req.headers['content-type'] ?? '');
  if (contentType.startsWith('application/x-www-form-urlencoded')) {
    for (const [k, v] of new URLSearchParams(req.body.toString('utf8'))) params.append(k, v);
  }
  const action = params.get('Action');
  if (action) return { service, action, protocol: service === 'ec2' ? 'ec2' : 'query', labels: {}, params };

  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') {
    return { service, action: target.slice(target.lastIndexOf('.') + 1), protocol: 'json', labels: {}, params };
  }

  for (const route of REST_ROUTES[service] ?? []) {
    if (route.method !== req.method) continue;
    const m = route.pattern.exec(req.path);
    if (!m || !route.literalQuery.every(([k, v]) => req.query.get(k) === v)) continue;
    const labels = Object.fromEntries(route.labelNames.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
    return { service, action: route.action, protocol: 'rest-json', labels, params };
  }
  return { service, action: `${req.method} ${req.path}`, protocol: 'rest-json', labels: {}, params };
}

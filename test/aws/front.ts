/**
 * The AWS front: a thin HTTP server in front of moto that tests and the code under test use as their
 * AWS endpoint. Every call is passed to moto unchanged, except what moto lacks or gets wrong:
 *
 *   EKS      access entries and access policies (eks-access-entries.ts, RBAC via eks-rbac.ts);
 *            Pod Identity associations (eks-pod-identity.ts);
 *            authentication mode, cluster security group, kube-apiserver endpoint/CA (eks-clusters.ts)
 *   Lambda   Invoke really runs the function's code (lambda-functions.ts, lambda-runner.ts); a new
 *            function is Pending for a while, and Invoke refuses it meanwhile; a VPC function reaches
 *            only what its security groups allow (function-network.ts)
 *   EKS      a new access entry authenticates nobody for a while (token-webhook.ts)
 *   EC2      DeleteSecurityGroup's DependencyViolation, and the Lambda network interfaces that hold a
 *            group in DescribeNetworkInterfaces (security-groups.ts); DescribeSecurityGroups' pages (ec2-pages.ts)
 *   STS      issued credentials are remembered for the token webhook (credentials.ts)
 *   S3       a function role's calls are authorized by its inline policies and boundary, after IAM's
 *            propagation delay (s3-role-access.ts); moto would let any credentials write anywhere
 *   IAM      calls signed by a role the front saw issued (the stack's worker role) are authorized by its
 *            policies, conditions included, and PassRole with lambda:CreateFunction (iam-authorization.ts)
 *
 * It also serves the kube-apiserver's token webhook (POST /_authenticate, token-webhook.ts), injects
 * faults and counts calls (POST|GET|DELETE /_faults, DELETE /_faults/<id>, GET|DELETE /_calls; client: faults.ts), and
 * talks to the stack (GET /_ready, PUT /_kube).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { awsError } from './aws-errors.js';
import { classify, type Classified } from './classify.js';
import { motoClients, type FrontContext, type Interceptor } from './context.js';
import { CredentialsRegistry } from './credentials.js';
import { EksAccessEntries } from './eks-access-entries.js';
import { EksClusters } from './eks-clusters.js';
import { EksPodIdentity } from './eks-pod-identity.js';
import { FaultInjector } from './fault-injector.js';
import { ec2Pages } from './ec2-pages.js';
import { FunctionNetwork } from './function-network.js';
import type { FailCallFault } from './faults.js';
import { forward, jsonReply, readBody, type InboundRequest, type Reply } from './http.js';
import type { KubeTarget } from './kube-admin.js';
import { LambdaFunctions } from './lambda-functions.js';
import { LambdaRunner } from './lambda-runner.js';
import { IamAuthorization } from './iam-authorization.js';
import { S3RoleAccess } from './s3-role-access.js';
import { SecurityGroupDependencies } from './security-groups.js';
import { reviewToken } from './token-webhook.js';

export interface FrontOptions {
  motoUrl: string;
  region: string;
  accountId: string;
  /** Listen port on 127.0.0.1; 0 or undefined for any free one. */
  port?: number;
  /** Clusters the kube-apiserver stands in for (DescribeCluster gets its endpoint and CA). */
  kubeBackedClusters: string[];
  /** The cluster the token webhook authenticates for (x-k8s-aws-id). */
  tokenCluster: string;
  /** Default ENI release delay after a VPC Lambda function is deleted. */
  eniReleaseSeconds: number;
  /** Default seconds a new function stays Pending, and a new access entry authenticates nobody. */
  functionPendingSeconds: number;
  accessEntryDelaySeconds: number;
  /** Default seconds before a change to a role's inline policies reaches S3 (default 1). */
  rolePolicyDelaySeconds?: number;
  /** Temp dir for unpacked Lambda code; must be outside the repository. */
  lambdaWorkDir: string;
  log: (line: string) => void;
}

export interface Front {
  url: string;
  faultsUrl: string;
  /** For the kube-apiserver's --authentication-token-webhook-config-file. */
  webhookUrl: string;
  setKube(kube: KubeTarget): void;
  /** What GET /_ready answers (503 until then): the stack waits on it. */
  setReady(info: unknown): void;
  resetCalls(): void;
  close(): Promise<void>;
}

export async function startFront(opts: FrontOptions): Promise<Front> {
  let kube: KubeTarget | undefined;
  let ready: unknown;
  let url = '';
  const ctx: FrontContext = {
    region: opts.region,
    accountId: opts.accountId,
    moto: motoClients(opts.motoUrl, opts.region),
    kube: () => kube,
    log: opts.log,
  };
  const faults = new FaultInjector(opts.eniReleaseSeconds, {
    functionPending: opts.functionPendingSeconds,
    accessEntry: opts.accessEntryDelaySeconds,
    rolePolicy: opts.rolePolicyDelaySeconds ?? 1,
  });
  const credentials = new CredentialsRegistry();
  const clusters = new EksClusters(ctx, new Set(opts.kubeBackedClusters));
  const entries = new EksAccessEntries(ctx, clusters, (principalArn) => faults.delayFor('accessEntry', principalArn));
  const podIdentity = new EksPodIdentity(ctx, clusters);
  const runner = new LambdaRunner(opts.lambdaWorkDir, opts.log);
  const network = new FunctionNetwork(
    ctx,
    () => url,
    () => clusters.kubeBackedGroups(),
  );
  const functions = new LambdaFunctions(
    ctx,
    runner,
    credentials,
    () => url,
    (name) => faults.delayFor('functionPending', name),
    network,
  );
  const groups = new SecurityGroupDependencies(
    ctx,
    () => faults.eniReleaseSeconds,
    () => functions.groupsInUse(),
  );
  functions.onGroupsReleased = (ids) => groups.released(ids);

  const rememberCredentials: Interceptor = (call, _req, fwd) => {
    if (call.service !== 'sts' || call.action !== 'AssumeRole') return undefined;
    return fwd().then((reply) => {
      if (reply.status === 200) credentials.rememberAssumeRoleAnswer(reply.body.toString('utf8'));
      return reply;
    });
  };
  const s3Access = new S3RoleAccess(ctx, credentials, (role) => faults.delayFor('rolePolicy', role));
  // IAM's verdict comes first: a refused call changes nothing anywhere.
  const iamAuthorization = new IamAuthorization(ctx, credentials);
  const interceptors: Interceptor[] = [
    iamAuthorization.intercept,
    entries.intercept,
    podIdentity.intercept,
    clusters.intercept,
    functions.intercept,
    groups.intercept,
    groups.interfaces,
    ec2Pages,
    rememberCredentials,
    s3Access.intercept,
  ];

  async function awsCall(req: InboundRequest): Promise<Reply> {
    const call = classify(req);
    const haystack = `${req.url}\n${req.body.toString('utf8')}`;
    const before = faults.take(call.service, call.action, haystack, 'before');
    let injected = before !== undefined;
    let reply: Reply;
    if (before) reply = faultReply(call, before);
    else {
      try {
        reply = await intercepted(call, req);
      } catch (err) {
        opts.log(
          `[aws-front] ${call.service}:${call.action} failed in the front: ${(err as Error).stack ?? String(err)}`,
        );
        reply = awsError(call.protocol, call.service, 500, 'InternalFailure', `test front: ${(err as Error).message}`);
      }
      const after = faults.take(call.service, call.action, haystack, 'after');
      if (after) {
        reply = faultReply(call, after);
        injected = true;
      }
    }
    faults.calls.push({ service: call.service, action: call.action, status: reply.status });
    if (reply.status >= 400)
      opts.log(`[aws-front] ${call.service}:${call.action} → ${reply.status}${injected ? ' (injected)' : ''}`);
    return reply;
  }

  async function intercepted(call: Classified, req: InboundRequest): Promise<Reply> {
    const fwd = (changed?: InboundRequest) => forward(opts.motoUrl, changed ?? req);
    for (const intercept of interceptors) {
      const reply = await intercept(call, req, fwd);
      if (reply) return reply;
    }
    return fwd();
  }

  async function control(method: string, path: string, query: URLSearchParams, body: Buffer): Promise<Reply> {
    const json = () => (body.length ? JSON.parse(body.toString('utf8')) : undefined);
    const owner = query.get('owner') ?? undefined;
    if (method === 'DELETE' && path.startsWith('/_faults/')) {
      faults.remove(decodeURIComponent(path.slice('/_faults/'.length)));
      return jsonReply(200, {});
    }
    switch (`${method} ${path}`) {
      case 'POST /_authenticate':
        return jsonReply(
          200,
          reviewToken(json(), { clusterName: opts.tokenCluster, credentials, entries, log: opts.log }),
        );
      case 'POST /_faults':
        try {
          return jsonReply(200, { ids: faults.add(json(), owner) });
        } catch (err) {
          return jsonReply(400, { message: (err as Error).message });
        }
      case 'GET /_faults':
        return jsonReply(200, faults.state(owner));
      case 'DELETE /_faults':
        faults.clear(owner);
        return jsonReply(200, {});
      case 'GET /_calls':
        return jsonReply(200, faults.calls.slice(Number(query.get('since') ?? 0)));
      case 'DELETE /_calls':
        faults.calls.length = 0;
        return jsonReply(200, {});
      case 'GET /_ready':
        return ready === undefined ? jsonReply(503, { message: 'not ready' }) : jsonReply(200, ready);
      case 'PUT /_kube':
        // The stack's kube-apiserver, once it is up (its URL, CA and admin token; loopback only).
        kube = json() as KubeTarget;
        return jsonReply(200, {});
      default:
        return jsonReply(404, { message: `no ${method} ${path} on the AWS front` });
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const parsed = new URL(req.url ?? '/', 'http://front');
    // AWS paths never start with /_ (REST URIs start with a version or a resource name).
    const reply = parsed.pathname.startsWith('/_')
      ? await control(req.method ?? 'GET', parsed.pathname, parsed.searchParams, body)
      : await awsCall({
          method: req.method ?? 'GET',
          path: parsed.pathname,
          query: parsed.searchParams,
          url: req.url ?? '/',
          headers: req.headers,
          body,
        });
    res.writeHead(reply.status, { ...reply.headers, 'content-length': String(reply.body.length) });
    res.end(reply.body);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      opts.log(`[aws-front] ${req.method} ${req.url}: ${(err as Error).stack ?? String(err)}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: String(err) }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', resolve);
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    faultsUrl: `${url}/_faults`,
    webhookUrl: `${url}/_authenticate`,
    setKube: (k) => (kube = k),
    setReady: (info) => (ready = info),
    resetCalls: () => (faults.calls.length = 0),
    close: async () => {
      runner.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      for (const c of Object.values(ctx.moto)) c.destroy();
    },
  };
}

function faultReply(call: Classified, fault: FailCallFault): Reply {
  const status = fault.status ?? 500;
  const code = fault.code ?? 'InternalFailure';
  return awsError(
    call.protocol,
    call.service,
    status,
    code,
    fault.message ?? `injected fault: ${call.service}:${call.action} ${status} ${code}`,
  );
}

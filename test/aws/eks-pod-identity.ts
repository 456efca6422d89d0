/**
 * EKS Pod Identity associations, which moto 5.2 does not implement: Create, List, Describe and Delete with the
 * REST-JSON shapes and errors of @aws-sdk/client-eks (associations `a-` + 17 characters, ARNs
 * `arn:aws:eks:<region>:<account>:podidentityassociation/<cluster>/<id>`, epoch-second timestamps), state kept here.
 * One association per ServiceAccount, as EKS allows; the role must exist in moto's IAM.
 */
import { randomBytes } from 'node:crypto';
import { GetRoleCommand } from '@aws-sdk/client-iam';
import { awsError } from './aws-errors.js';
import type { Classified } from './classify.js';
import { parseJson, type FrontContext, type Interceptor } from './context.js';
import type { EksClusters } from './eks-clusters.js';
import { jsonReply, paginate, type InboundRequest, type Reply } from './http.js';

interface Association {
  clusterName: string;
  namespace: string;
  serviceAccount: string;
  roleArn: string;
  associationArn: string;
  associationId: string;
  tags: Record<string, string>;
  createdAt: number;
  modifiedAt: number;
  disableSessionTags: boolean;
  targetRoleArn?: string;
}

const ACTIONS = new Set([
  'CreatePodIdentityAssociation',
  'ListPodIdentityAssociations',
  'DescribePodIdentityAssociation',
  'DeletePodIdentityAssociation',
]);
const ROLE_ARN = /^arn:aws:iam::\d{12}:role\/(?:.*\/)?([\w+=,.@-]+)$/;
const ID_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';

class EksError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const now = () => Date.now() / 1000;
const newId = () => `a-${[...randomBytes(17)].map((b) => ID_CHARS[b % ID_CHARS.length]).join('')}`;

export class EksPodIdentity {
  /** cluster name → association ID → association */
  private readonly associations = new Map<string, Map<string, Association>>();

  constructor(
    private readonly ctx: FrontContext,
    private readonly clusters: EksClusters,
  ) {
    const before = clusters.onDeleted;
    clusters.onDeleted = async (name) => {
      await before(name);
      this.associations.delete(name);
    };
  }

  intercept: Interceptor = (call, req) => {
    if (call.service !== 'eks' || !ACTIONS.has(call.action)) return undefined;
    return this.answer(() => this.act(call, req));
  };

  private async answer(run: () => Promise<unknown>): Promise<Reply> {
    try {
      return jsonReply(200, await run());
    } catch (err) {
      if (err instanceof EksError) return awsError('rest-json', 'eks', err.status, err.code, err.message);
      throw err;
    }
  }

  private async act(call: Classified, req: InboundRequest): Promise<unknown> {
    const clusterName = call.labels['clusterName']!;
    const facts = await this.clusters.facts(clusterName);
    if (!facts) throw new EksError(404, 'ResourceNotFoundException', `No cluster found for name: ${clusterName}.`);
    const byId = this.associations.get(clusterName) ?? new Map<string, Association>();
    this.associations.set(clusterName, byId);

    if (call.action === 'CreatePodIdentityAssociation')
      return { association: await this.create(clusterName, facts.arn, byId, parseJson(req.body)) };
    if (call.action === 'ListPodIdentityAssociations') {
      const ns = req.query.get('namespace');
      const sa = req.query.get('serviceAccount');
      const matching = [...byId.values()]
        .filter((a) => (!ns || a.namespace === ns) && (!sa || a.serviceAccount === sa))
        .map(summary);
      const page = paginate(matching, req.query);
      return { associations: page.items, ...(page.nextToken ? { nextToken: page.nextToken } : {}) };
    }
    const associationId = call.labels['associationId']!;
    const found = byId.get(associationId);
    if (!found)
      throw new EksError(
        404,
        'ResourceNotFoundException',
        `No Pod Identity Association found for id: ${associationId}.`,
      );
    if (call.action === 'DeletePodIdentityAssociation') byId.delete(associationId);
    return { association: show(found) };
  }

  private async create(
    clusterName: string,
    clusterArn: string,
    byId: Map<string, Association>,
    body: Record<string, unknown>,
  ): Promise<unknown> {
    const namespace = String(body['namespace'] ?? '');
    const serviceAccount = String(body['serviceAccount'] ?? '');
    const roleArn = String(body['roleArn'] ?? '');
    if (!namespace || !serviceAccount)
      throw new EksError(400, 'InvalidParameterException', 'namespace and serviceAccount are required.');
    const role = ROLE_ARN.exec(roleArn);
    if (!role || !(await this.roleExists(role[1]!)))
      throw new EksError(400, 'InvalidParameterException', `Role ${roleArn} does not exist or is not valid.`);
    const taken = [...byId.values()].find((a) => a.namespace === namespace && a.serviceAccount === serviceAccount);
    if (taken) throw new EksError(409, 'ResourceInUseException', `Association already exists: ${taken.associationId}`);
    const associationId = newId();
    const t = now();
    const a: Association = {
      clusterName,
      namespace,
      serviceAccount,
      roleArn,
      associationArn: `${clusterArn.replace(/:cluster\/.*$/, ':podidentityassociation/')}${clusterName}/${associationId}`,
      associationId,
      tags: (body['tags'] ?? {}) as Record<string, string>,
      createdAt: t,
      modifiedAt: t,
      disableSessionTags: body['disableSessionTags'] === true,
      ...(typeof body['targetRoleArn'] === 'string' ? { targetRoleArn: body['targetRoleArn'] } : {}),
    };
    byId.set(associationId, a);
    return show(a);
  }

  private async roleExists(name: string): Promise<boolean> {
    try {
      await this.ctx.moto.iam.send(new GetRoleCommand({ RoleName: name }));
      return true;
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchEntityException') return false;
      throw err;
    }
  }
}

function summary(a: Association): unknown {
  return {
    clusterName: a.clusterName,
    namespace: a.namespace,
    serviceAccount: a.serviceAccount,
    associationArn: a.associationArn,
    associationId: a.associationId,
  };
}

function show(a: Association): unknown {
  return { ...a };
}

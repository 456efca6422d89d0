/**
 * EKS access entries and access policy associations, which moto 5.2 does not implement: the
 * REST-JSON operations of @aws-sdk/client-eks with EKS's shapes and errors, state kept here, and each
 * association turned into RBAC bindings on the devstack's kube-apiserver (eks-rbac.ts).
 *
 * One deliberate difference: an entry's default Kubernetes username is its principal ARN (EKS's is
 * the assumed-role ARN template), so a RoleBinding names exactly the role that deployed it.
 */
import { randomUUID } from 'node:crypto';
import { GetRoleCommand, GetUserCommand } from '@aws-sdk/client-iam';
import { awsError } from './aws-errors.js';
import type { Classified } from './classify.js';
import { parseJson, type FrontContext, type Interceptor } from './context.js';
import type { EksClusters } from './eks-clusters.js';
import { ACCESS_POLICY_CLUSTER_ROLES, grant, revoke, type AccessScope, type BindingRef } from './eks-rbac.js';
import { jsonReply, paginate, type InboundRequest, type Reply } from './http.js';

interface Association {
  policyArn: string;
  accessScope: AccessScope;
  associatedAt: number;
  modifiedAt: number;
  bindings: BindingRef[];
}

export interface AccessEntry {
  clusterName: string;
  principalArn: string;
  kubernetesGroups: string[];
  accessEntryArn: string;
  createdAt: number;
  modifiedAt: number;
  tags: Record<string, string>;
  username: string;
  type: string;
  policies: Map<string, Association>;
  /** EKS applies a new entry after a delay: until then (ms epoch) it authenticates nobody. */
  effectiveAt: number;
}

const ENTRY_ACTIONS = new Set([
  'CreateAccessEntry',
  'DescribeAccessEntry',
  'ListAccessEntries',
  'DeleteAccessEntry',
  'AssociateAccessPolicy',
  'DisassociateAccessPolicy',
  'ListAssociatedAccessPolicies',
]);

const ENTRY_TYPES = new Set([
  'STANDARD',
  'EC2_LINUX',
  'EC2_WINDOWS',
  'FARGATE_LINUX',
  'EC2',
  'HYBRID_LINUX',
  'HYPERPOD_LINUX',
]);
const PRINCIPAL_ARN = /^arn:aws:iam::(\d{12}):(role|user)\/(?:.*\/)?([\w+=,.@-]+)$/;

class EksError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const now = () => Date.now() / 1000; // restJson1 timestamps are epoch seconds

export class EksAccessEntries {
  /** cluster name → principal ARN → entry */
  private readonly entries = new Map<string, Map<string, AccessEntry>>();

  constructor(
    private readonly ctx: FrontContext,
    private readonly clusters: EksClusters,
    private readonly delaySeconds: (principalArn: string) => number = () => 0,
  ) {
    clusters.onDeleted = async (name) => {
      for (const entry of this.entries.get(name)?.values() ?? []) await this.dropBindings(entry);
      this.entries.delete(name);
    };
  }

  /** The entry the token webhook authenticates against. */
  lookup(clusterName: string, principalArn: string): AccessEntry | undefined {
    return this.entries.get(clusterName)?.get(principalArn);
  }

  intercept: Interceptor = (call, req) => {
    if (call.service !== 'eks') return undefined;
    if (ENTRY_ACTIONS.has(call.action)) return this.answer(() => this.entryAction(call, req));
    if (call.action === 'ListAccessPolicies') return this.answer(async () => this.listAccessPolicies());
    // Tags on access entries; moto keeps the tags of everything else.
    if (
      ['TagResource', 'UntagResource', 'ListTagsForResource'].includes(call.action) &&
      call.labels['resourceArn']?.includes(':access-entry/')
    ) {
      return this.answer(async () => this.tags(call, req));
    }
    return undefined;
  };

  private async answer(run: () => Promise<unknown>): Promise<Reply> {
    try {
      return jsonReply(200, await run());
    } catch (err) {
      if (err instanceof EksError) return awsError('rest-json', 'eks', err.status, err.code, err.message, err.extra);
      throw err;
    }
  }

  private async entryAction(call: Classified, req: InboundRequest): Promise<unknown> {
    const clusterName = call.labels['clusterName']!;
    const facts = await this.clusters.facts(clusterName);
    if (!facts)
      throw new EksError(404, 'ResourceNotFoundException', `No cluster found for name: ${clusterName}.`, {
        clusterName,
      });
    if (facts.authenticationMode === 'CONFIG_MAP') {
      throw new EksError(
        400,
        'InvalidRequestException',
        "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation.",
        { clusterName },
      );
    }
    const byPrincipal = this.entries.get(clusterName) ?? new Map<string, AccessEntry>();
    this.entries.set(clusterName, byPrincipal);
    const body = parseJson(req.body);

    if (call.action === 'CreateAccessEntry')
      return { accessEntry: show(await this.create(clusterName, facts.arn, byPrincipal, body)) };
    if (call.action === 'ListAccessEntries') {
      const policy = req.query.get('associatedPolicyArn');
      const arns = [...byPrincipal.values()]
        .filter((e) => !policy || e.policies.has(policy))
        .map((e) => e.principalArn);
      const page = paginate(arns, req.query);
      return { accessEntries: page.items, ...(page.nextToken ? { nextToken: page.nextToken } : {}) };
    }

    const principalArn = call.labels['principalArn']!;
    const entry = byPrincipal.get(principalArn);
    if (!entry) {
      throw new EksError(
        404,
        'ResourceNotFoundException',
        `The specified principalArn could not be found. You can view your available access entries with 'list-access-entries'.`,
        { clusterName },
      );
    }
    switch (call.action) {
      case 'DescribeAccessEntry':
        return { accessEntry: show(entry) };
      case 'DeleteAccessEntry':
        await this.dropBindings(entry);
        byPrincipal.delete(principalArn);
        return {};
      case 'AssociateAccessPolicy':
        return this.associate(entry, body);
      case 'DisassociateAccessPolicy': {
        const association = entry.policies.get(call.labels['policyArn']!);
        if (association) {
          await revoke(this.kube(), association.bindings);
          entry.policies.delete(association.policyArn);
        }
        return {};
      }
      case 'ListAssociatedAccessPolicies': {
        const page = paginate([...entry.policies.values()].map(showAssociation), req.query);
        return {
          clusterName,
          principalArn,
          associatedAccessPolicies: page.items,
          ...(page.nextToken ? { nextToken: page.nextToken } : {}),
        };
      }
    }
    throw new Error(`unreachable: ${call.action}`);
  }

  private async create(
    clusterName: string,
    clusterArn: string,
    byPrincipal: Map<string, AccessEntry>,
    body: Record<string, unknown>,
  ): Promise<AccessEntry> {
    const principalArn = String(body['principalArn'] ?? '');
    const match = PRINCIPAL_ARN.exec(principalArn);
    if (!match || !(await this.principalExists(match[2]!, match[3]!))) {
      throw new EksError(400, 'InvalidParameterException', `The specified principalArn is invalid: invalid principal`, {
        clusterName,
      });
    }
    if (byPrincipal.has(principalArn)) {
      throw new EksError(
        409,
        'ResourceInUseException',
        'The specified access entry resource is already in use on this cluster.',
        { clusterName },
      );
    }
    const type = String(body['type'] ?? 'STANDARD');
    if (!ENTRY_TYPES.has(type))
      throw new EksError(400, 'InvalidParameterException', `The access entry type ${type} is invalid.`, {
        clusterName,
      });
    const groups = (body['kubernetesGroups'] ?? []) as string[];
    const reserved = groups.find((g) => g.startsWith('system:'));
    if (reserved)
      throw new EksError(
        400,
        'InvalidParameterException',
        `The kubernetes group ${reserved} is invalid: names that start with system: are reserved.`,
        { clusterName },
      );
    const t = now();
    const entry: AccessEntry = {
      clusterName,
      principalArn,
      kubernetesGroups: groups,
      accessEntryArn: `${clusterArn.replace(':cluster/', ':access-entry/')}/${match[2]}/${match[1]}/${match[3]}/${randomUUID()}`,
      createdAt: t,
      modifiedAt: t,
      tags: (body['tags'] ?? {}) as Record<string, string>,
      username: typeof body['username'] === 'string' ? body['username'] : principalArn,
      type,
      policies: new Map(),
      effectiveAt: Date.now() + this.delaySeconds(principalArn) * 1000,
    };
    byPrincipal.set(principalArn, entry);
    return entry;
  }

  private async principalExists(kind: string, name: string): Promise<boolean> {
    try {
      const { iam } = this.ctx.moto;
      await (kind === 'role'
        ? iam.send(new GetRoleCommand({ RoleName: name }))
        : iam.send(new GetUserCommand({ UserName: name })));
      return true;
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchEntityException') return false;
      throw err;
    }
  }

  private async associate(entry: AccessEntry, body: Record<string, unknown>): Promise<unknown> {
    const { clusterName, principalArn } = entry;
    const policyArn = String(body['policyArn'] ?? '');
    if (!(policyArn in ACCESS_POLICY_CLUSTER_ROLES)) {
      throw new EksError(400, 'InvalidParameterException', `The specified policyArn is invalid: ${policyArn}`, {
        clusterName,
      });
    }
    if (entry.type !== 'STANDARD') {
      throw new EksError(
        400,
        'InvalidParameterException',
        `Access policies can only be associated with access entries of type STANDARD.`,
        { clusterName },
      );
    }
    const scope = (body['accessScope'] ?? {}) as AccessScope;
    const namespaces = scope.namespaces ?? [];
    if (scope.type !== 'cluster' && scope.type !== 'namespace') {
      throw new EksError(
        400,
        'InvalidParameterException',
        `The access scope type must be one of [cluster, namespace].`,
        { clusterName },
      );
    }
    if (scope.type === 'namespace' ? namespaces.length === 0 : namespaces.length > 0) {
      throw new EksError(
        400,
        'InvalidParameterException',
        `Namespaces must be given for a namespace scope, and only for one.`,
        { clusterName },
      );
    }
    // Re-associating a policy replaces its scope.
    const previous = entry.policies.get(policyArn);
    if (previous) await revoke(this.kube(), previous.bindings);
    const bindings = await grant(this.kube(), this.ctx.log, {
      principalArn,
      username: entry.username,
      policyArn,
      scope,
    });
    const t = now();
    const association: Association = {
      policyArn,
      accessScope: scope.type === 'cluster' ? { type: 'cluster', namespaces: [] } : { type: 'namespace', namespaces },
      associatedAt: previous?.associatedAt ?? t,
      modifiedAt: t,
      bindings,
    };
    entry.policies.set(policyArn, association);
    return { clusterName, principalArn, associatedAccessPolicy: showAssociation(association) };
  }

  private listAccessPolicies(): unknown {
    return {
      accessPolicies: Object.keys(ACCESS_POLICY_CLUSTER_ROLES).map((arn) => ({
        name: arn.slice(arn.lastIndexOf('/') + 1),
        arn,
      })),
    };
  }

  private tags(call: Classified, req: InboundRequest): unknown {
    const arn = call.labels['resourceArn']!;
    const entry = [...this.entries.values()].flatMap((m) => [...m.values()]).find((e) => e.accessEntryArn === arn);
    if (!entry) throw new EksError(404, 'NotFoundException', `Resource ${arn} not found.`);
    if (call.action === 'TagResource') Object.assign(entry.tags, parseJson(req.body)['tags'] ?? {});
    if (call.action === 'UntagResource') for (const key of req.query.getAll('tagKeys')) delete entry.tags[key];
    return call.action === 'ListTagsForResource' ? { tags: entry.tags } : {};
  }

  private async dropBindings(entry: AccessEntry): Promise<void> {
    for (const association of entry.policies.values()) await revoke(this.kube(), association.bindings);
    entry.policies.clear();
  }

  private kube() {
    const kube = this.ctx.kube();
    if (!kube) throw new Error('access policies need the kube-apiserver, which is not up yet');
    return kube;
  }
}

function show(e: AccessEntry): unknown {
  return {
    clusterName: e.clusterName,
    principalArn: e.principalArn,
    kubernetesGroups: e.kubernetesGroups,
    accessEntryArn: e.accessEntryArn,
    createdAt: e.createdAt,
    modifiedAt: e.modifiedAt,
    tags: e.tags,
    username: e.username,
    type: e.type,
  };
}

function showAssociation(a: Association): unknown {
  return { policyArn: a.policyArn, accessScope: a.accessScope, associatedAt: a.associatedAt, modifiedAt: a.modifiedAt };
}

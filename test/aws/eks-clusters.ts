/**
 * What EKS clusters have and moto's do not: an authentication mode (moto ignores accessConfig), the
 * cluster security group EKS creates in the cluster's VPC, and, for the clusters the devstack's
 * kube-apiserver stands in for, that apiserver's endpoint and CA in DescribeCluster.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  DescribeSubnetsCommand,
  AuthorizeSecurityGroupIngressCommand,
} from '@aws-sdk/client-ec2';
import { DescribeClusterCommand } from '@aws-sdk/client-eks';
import { awsError } from './aws-errors.js';
import { parseJson, type FrontContext, type Interceptor } from './context.js';
import type { Reply } from './http.js';

export const AUTHENTICATION_MODES = ['CONFIG_MAP', 'API_AND_CONFIG_MAP', 'API'] as const;
export type AuthenticationMode = (typeof AUTHENTICATION_MODES)[number];

export interface ClusterFacts {
  name: string;
  arn: string;
  authenticationMode: AuthenticationMode;
  bootstrapClusterCreatorAdminPermissions: boolean;
  clusterSecurityGroupId?: string;
  vpcId?: string;
}

type Json = Record<string, unknown>;

export class EksClusters {
  private readonly clusters = new Map<string, ClusterFacts>();
  /** Called when a cluster is deleted, so its access entries go too. */
  onDeleted: (name: string) => Promise<void> = async () => {};

  constructor(
    private readonly ctx: FrontContext,
    /** Names of clusters whose API server is the devstack's kube-apiserver. */
    private readonly kubeBacked: ReadonlySet<string>,
  ) {}

  intercept: Interceptor = (call, req, forward) => {
    if (call.service !== 'eks') return undefined;
    switch (call.action) {
      case 'CreateCluster':
        return this.create(parseJson(req.body), forward);
      case 'DescribeCluster':
        return this.describe(forward);
      case 'UpdateClusterConfig':
        return this.update(call.labels['name']!, parseJson(req.body), forward);
      case 'DeleteCluster':
        return this.remove(call.labels['name']!, forward);
      default:
        return undefined;
    }
  };

  /** The cluster's facts; a cluster moto has but the front never saw created gets EKS's API default, CONFIG_MAP. */
  async facts(name: string): Promise<ClusterFacts | undefined> {
    const known = this.clusters.get(name);
    if (known) return known;
    try {
      const { cluster } = await this.ctx.moto.eks.send(new DescribeClusterCommand({ name }));
      const facts: ClusterFacts = {
        name,
        arn: cluster!.arn!,
        authenticationMode: 'CONFIG_MAP',
        bootstrapClusterCreatorAdminPermissions: true,
      };
      this.clusters.set(name, facts);
      return facts;
    } catch (err) {
      if ((err as { name?: string }).name === 'ResourceNotFoundException') return undefined;
      throw err;
    }
  }

  /** The cluster security groups of the clusters whose API server the kube-apiserver stands in for. */
  async kubeBackedGroups(): Promise<string[]> {
    const facts = await Promise.all([...this.kubeBacked].map((name) => this.facts(name)));
    return facts.flatMap((f) => (f?.clusterSecurityGroupId ? [f.clusterSecurityGroupId] : []));
  }

  private async create(body: Json, forward: () => Promise<Reply>): Promise<Reply> {
    const accessConfig = (body['accessConfig'] ?? {}) as Json;
    const mode = (accessConfig['authenticationMode'] ?? 'CONFIG_MAP') as AuthenticationMode;
    if (!AUTHENTICATION_MODES.includes(mode)) {
      return awsError('rest-json', 'eks', 400, 'InvalidParameterException', `Unsupported authentication mode: ${mode}`);
    }
    const reply = await forward();
    if (reply.status !== 200) return reply;
    const out = parseJson(reply.body);
    const cluster = out['cluster'] as Json;
    const name = cluster['name'] as string;
    const facts: ClusterFacts = {
      name,
      arn: cluster['arn'] as string,
      authenticationMode: mode,
      bootstrapClusterCreatorAdminPermissions: accessConfig['bootstrapClusterCreatorAdminPermissions'] !== false,
    };
    const subnetIds = ((body['resourcesVpcConfig'] as Json | undefined)?.['subnetIds'] ?? []) as string[];
    if (subnetIds.length > 0) Object.assign(facts, await this.createClusterSecurityGroup(name, subnetIds[0]!));
    this.clusters.set(name, facts);
    return this.rewrite(reply, out);
  }

  /** EKS makes one security group per cluster, in its VPC, that lets the control plane and nodes talk. */
  private async createClusterSecurityGroup(
    name: string,
    subnetId: string,
  ): Promise<{ vpcId: string; clusterSecurityGroupId: string }> {
    const { ec2 } = this.ctx.moto;
    const { Subnets } = await ec2.send(new DescribeSubnetsCommand({ SubnetIds: [subnetId] }));
    const vpcId = Subnets![0]!.VpcId!;
    const groupName = `eks-cluster-sg-${name}-${randomBytes(4).readUInt32BE()}`;
    const { GroupId } = await ec2.send(
      new CreateSecurityGroupCommand({
        GroupName: groupName,
        Description:
          'EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, as well as any managed workloads.',
        VpcId: vpcId,
        TagSpecifications: [
          {
            ResourceType: 'security-group',
            Tags: [
              { Key: 'Name', Value: groupName },
              { Key: 'aws:eks:cluster-name', Value: name },
              { Key: `kubernetes.io/cluster/${name}`, Value: 'owned' },
            ],
          },
        ],
      }),
    );
    await ec2.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId,
        IpPermissions: [
          { IpProtocol: '-1', UserIdGroupPairs: [{ GroupId, Description: 'Allow cluster members to talk' }] },
        ],
      }),
    );
    return { vpcId, clusterSecurityGroupId: GroupId! };
  }

  private async describe(forward: () => Promise<Reply>): Promise<Reply> {
    const reply = await forward();
    if (reply.status !== 200) return reply;
    return this.rewrite(reply, parseJson(reply.body));
  }

  private async update(name: string, body: Json, forward: () => Promise<Reply>): Promise<Reply> {
    const mode = (body['accessConfig'] as Json | undefined)?.['authenticationMode'] as AuthenticationMode | undefined;
    if (mode === undefined) return forward();
    const facts = await this.facts(name);
    if (!facts) return forward(); // moto's own not-found answer
    // EKS only moves towards API: CONFIG_MAP → API_AND_CONFIG_MAP → API.
    const rank = (m: AuthenticationMode) => AUTHENTICATION_MODES.indexOf(m);
    if (!AUTHENTICATION_MODES.includes(mode) || rank(mode) < rank(facts.authenticationMode)) {
      return awsError(
        'rest-json',
        'eks',
        400,
        'InvalidParameterException',
        `Unsupported authentication mode update from ${facts.authenticationMode} to ${mode}`,
      );
    }
    // moto ignores accessConfig: it only needs the call when something else changes too.
    const { accessConfig: _access, clientRequestToken: _token, ...rest } = body;
    const reply = Object.keys(rest).length > 0 ? await forward() : undefined;
    if (reply && reply.status !== 200) return reply;
    facts.authenticationMode = mode;
    return (
      reply ?? {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: Buffer.from(
          JSON.stringify({
            update: {
              id: randomUUID(),
              status: 'Successful',
              type: 'AccessConfigUpdate',
              params: [{ type: 'AuthenticationMode', value: mode }],
              createdAt: Date.now() / 1000,
              errors: [],
            },
          }),
        ),
      }
    );
  }

  private async remove(name: string, forward: () => Promise<Reply>): Promise<Reply> {
    const reply = await forward();
    if (reply.status !== 200) return reply;
    const facts = this.clusters.get(name);
    this.clusters.delete(name);
    await this.onDeleted(name);
    if (facts?.clusterSecurityGroupId) {
      await this.ctx.moto.ec2
        .send(new DeleteSecurityGroupCommand({ GroupId: facts.clusterSecurityGroupId }))
        .catch(() => undefined);
    }
    return reply;
  }

  private async rewrite(reply: Reply, out: Json): Promise<Reply> {
    const cluster = out['cluster'] as Json;
    const name = cluster['name'] as string;
    const facts = await this.facts(name);
    if (facts) {
      cluster['accessConfig'] = {
        authenticationMode: facts.authenticationMode,
        bootstrapClusterCreatorAdminPermissions: facts.bootstrapClusterCreatorAdminPermissions,
      };
      const vpc = (cluster['resourcesVpcConfig'] ?? {}) as Json;
      if (facts.clusterSecurityGroupId) vpc['clusterSecurityGroupId'] = facts.clusterSecurityGroupId;
      if (facts.vpcId) vpc['vpcId'] = facts.vpcId;
      cluster['resourcesVpcConfig'] = vpc;
    }
    const kube = this.ctx.kube();
    if (kube && this.kubeBacked.has(name)) {
      cluster['endpoint'] = kube.url;
      cluster['certificateAuthority'] = { data: Buffer.from(kube.caPem).toString('base64') };
    }
    return { ...reply, body: Buffer.from(JSON.stringify(out)) };
  }
}

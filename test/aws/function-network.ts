/**
 * Where a VPC Lambda function may connect, decided as EC2 would from its security groups: every TCP connect
 * of a function's process is asked here first (lambda-bootstrap.mjs holds it until the answer; lambda-runner.ts
 * carries the question). A connection the rules do not allow is never made: like a dropped SYN, it hangs until
 * the function times out. Not a kernel-level sandbox (the function's process is on the host network, and a
 * handler that bypassed Node's net module would not be asked); what it models is the rules, read from moto at
 * each connect, so a rule revoked while a function runs cuts its next connection.
 *
 * What a destination on this machine stands for:
 *   the kube-apiserver  the EKS cluster's private endpoint, in the cluster security group: reachable with
 *                       egress tcp/443 to that group (or 0.0.0.0/0) AND the cluster group's ingress tcp/443
 *                       from one of the function's groups (or 0.0.0.0/0);
 *   the front           AWS's public service endpoints (S3 among them): reachable with egress tcp/443 to
 *                       0.0.0.0/0 or to the S3 prefix list (the front serves every service at one address,
 *                       so a prefix-list rule opens the other services too: kinder than AWS there);
 *   anything else       nothing in the VPC: unreachable.
 * A function without VpcConfig has Lambda's own internet access: everything is reachable.
 */
import {
  DescribeManagedPrefixListsCommand,
  DescribeSecurityGroupsCommand,
  type IpPermission,
} from '@aws-sdk/client-ec2';
import type { FrontContext } from './context.js';

export interface ConnectAnswer {
  allow: boolean;
  /** What the destination stands for and which rule decided. */
  why: string;
}

const HTTPS = 443;
const covers443 = (p: IpPermission) =>
  p.IpProtocol === '-1' || (p.IpProtocol === 'tcp' && (p.FromPort ?? 0) <= HTTPS && (p.ToPort ?? 65535) >= HTTPS);
const anywhere = (p: IpPermission) => (p.IpRanges ?? []).some((r) => r.CidrIp === '0.0.0.0/0');
const hostPort = (url: string) => {
  const u = new URL(url);
  return `${u.hostname === 'localhost' ? '127.0.0.1' : u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`;
};

export class FunctionNetwork {
  private s3PrefixList: string | undefined;

  constructor(
    private readonly ctx: FrontContext,
    /** The front's own URL: AWS's public endpoints. */
    private readonly frontUrl: () => string,
    /** The cluster security groups of the clusters the kube-apiserver stands in for. */
    private readonly clusterGroups: () => Promise<string[]>,
  ) {}

  async decide(functionGroups: string[], host: string, port: number): Promise<ConnectAnswer> {
    if (functionGroups.length === 0) return { allow: true, why: 'not in a VPC: Lambda-managed internet access' };
    const target = `${host === 'localhost' || host === '::1' ? '127.0.0.1' : host}:${port}`;
    const kube = this.ctx.kube();
    if (kube && target === hostPort(kube.url)) return this.toCluster(functionGroups);
    if (target === hostPort(this.frontUrl())) return this.toAwsEndpoints(functionGroups);
    return { allow: false, why: `${target} stands for nothing the function's VPC can reach` };
  }

  private async groups(ids: string[]) {
    const { SecurityGroups = [] } = await this.ctx.moto.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: ids }));
    return SecurityGroups;
  }

  private async toCluster(functionGroups: string[]): Promise<ConnectAnswer> {
    const clusterGroups = await this.clusterGroups();
    const mine = await this.groups(functionGroups);
    const egress = mine.flatMap((g) => g.IpPermissionsEgress ?? []).filter(covers443);
    const out = egress.some(
      (p) => anywhere(p) || (p.UserIdGroupPairs ?? []).some((u) => clusterGroups.includes(u.GroupId ?? '')),
    );
    if (!out)
      return {
        allow: false,
        why: `the cluster API: no egress tcp/443 from ${functionGroups.join(', ')} to a cluster security group (${clusterGroups.join(', ')})`,
      };
    const theirs = clusterGroups.length ? await this.groups(clusterGroups) : [];
    const ingress = theirs.flatMap((g) => g.IpPermissions ?? []).filter(covers443);
    const inbound = ingress.some(
      (p) => anywhere(p) || (p.UserIdGroupPairs ?? []).some((u) => functionGroups.includes(u.GroupId ?? '')),
    );
    if (!inbound)
      return {
        allow: false,
        why: `the cluster API: the cluster security group (${clusterGroups.join(', ')}) has no ingress tcp/443 from ${functionGroups.join(', ')}`,
      };
    return { allow: true, why: "the cluster API: egress and the cluster group's ingress on 443" };
  }

  private async toAwsEndpoints(functionGroups: string[]): Promise<ConnectAnswer> {
    const s3 = await this.s3PrefixListId();
    const egress = (await this.groups(functionGroups)).flatMap((g) => g.IpPermissionsEgress ?? []).filter(covers443);
    const rule = egress.find((p) => anywhere(p) || (p.PrefixListIds ?? []).some((pl) => pl.PrefixListId === s3));
    if (!rule)
      return {
        allow: false,
        why: `AWS service endpoints (S3): no egress tcp/443 from ${functionGroups.join(', ')} to 0.0.0.0/0 or the S3 prefix list ${s3}`,
      };
    return { allow: true, why: `AWS service endpoints (S3): egress to ${anywhere(rule) ? '0.0.0.0/0' : s3}` };
  }

  /** EC2's AWS-managed prefix list of S3 in the front's region (moto has it). */
  async s3PrefixListId(): Promise<string> {
    if (this.s3PrefixList) return this.s3PrefixList;
    const name = `com.amazonaws.${this.ctx.region}.s3`;
    const { PrefixLists = [] } = await this.ctx.moto.ec2.send(
      new DescribeManagedPrefixListsCommand({ Filters: [{ Name: 'prefix-list-name', Values: [name] }] }),
    );
    const id = PrefixLists[0]?.PrefixListId;
    if (!id) throw new Error(`moto has no prefix list ${name}`);
    return (this.s3PrefixList = id);
  }
}

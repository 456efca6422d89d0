/**
 * DeleteSecurityGroup as EC2 answers it, which moto does not (it deletes any group at once):
 * DependencyViolation while the group is still in use, that is while
 *  - a Lambda function's VpcConfig uses it (its ENIs are attached),
 *  - a Lambda function that used it was deleted less than `eniReleaseSeconds` ago (Lambda releases
 *    those ENIs slowly; the stack's default is 2 s, tests set it through /_faults),
 *  - another group's rule references it.
 * And those Lambda ENIs in DescribeNetworkInterfaces (moto makes none for a function), so a caller can see
 * that a group is in use before it changes anything.
 */
import { createHash } from 'node:crypto';
import { DescribeSecurityGroupsCommand } from '@aws-sdk/client-ec2';
import { awsError } from './aws-errors.js';
import type { FrontContext, Interceptor } from './context.js';

export class SecurityGroupDependencies {
  /** group id → time (ms) until which released Lambda ENIs still hold it */
  private readonly releasing = new Map<string, number>();

  constructor(
    private readonly ctx: FrontContext,
    private readonly eniReleaseSeconds: () => number,
    private readonly groupsInUse: () => Set<string>,
  ) {}

  released(groupIds: string[]): void {
    const until = Date.now() + this.eniReleaseSeconds() * 1000;
    for (const id of groupIds) this.releasing.set(id, Math.max(until, this.releasing.get(id) ?? 0));
  }

  intercept: Interceptor = (call) => {
    if (call.service !== 'ec2' || call.action !== 'DeleteSecurityGroup') return undefined;
    const groupId = call.params.get('GroupId');
    if (!groupId) return undefined; // by name: moto's answer
    return this.dependency(groupId).then((why) => {
      if (!why) return undefined;
      this.ctx.log(`[aws-front] ec2: DeleteSecurityGroup ${groupId}: DependencyViolation (${why})`);
      return awsError('ec2', 'ec2', 400, 'DependencyViolation', `resource ${groupId} has a dependent object`);
    });
  };

  /** DescribeNetworkInterfaces: moto's answer, plus an ENI of type lambda for each group a function holds (group-id filter honoured). */
  interfaces: Interceptor = (call, _req, forward) => {
    if (call.service !== 'ec2' || call.action !== 'DescribeNetworkInterfaces') return undefined;
    const wanted: string[] = [];
    for (const [key, value] of call.params) {
      const m = /^Filter\.(\d+)\.Name$/.exec(key);
      if (m && value === 'group-id')
        for (const [k, v] of call.params) if (k.startsWith(`Filter.${m[1]}.Value.`)) wanted.push(v);
    }
    const now = Date.now();
    const held = new Set([
      ...this.groupsInUse(),
      ...[...this.releasing].filter(([, until]) => now < until).map(([id]) => id),
    ]);
    const groups = [...held].filter((g) => wanted.length === 0 || wanted.includes(g));
    if (groups.length === 0) return undefined;
    const item = (g: string) =>
      `<item><networkInterfaceId>eni-${createHash('sha256').update(g).digest('hex').slice(0, 17)}</networkInterfaceId><interfaceType>lambda</interfaceType>` +
      `<description>AWS Lambda VPC ENI-${g}</description><status>in-use</status><requesterManaged>true</requesterManaged><ownerId>${this.ctx.accountId}</ownerId>` +
      `<groupSet><item><groupId>${g}</groupId><groupName>${g}</groupName></item></groupSet><tagSet/></item>`;
    return forward().then((reply) => {
      if (reply.status !== 200) return reply;
      const xml = reply.body
        .toString('utf8')
        .replace('<networkInterfaceSet/>', '<networkInterfaceSet></networkInterfaceSet>');
      return {
        ...reply,
        body: Buffer.from(xml.replace('</networkInterfaceSet>', `${groups.map(item).join('')}</networkInterfaceSet>`)),
      };
    });
  };

  private async dependency(groupId: string): Promise<string | undefined> {
    if (this.groupsInUse().has(groupId)) return 'a Lambda function uses it';
    const until = this.releasing.get(groupId) ?? 0;
    if (Date.now() < until) return `Lambda ENIs are released in ${((until - Date.now()) / 1000).toFixed(1)}s`;
    this.releasing.delete(groupId);
    const { SecurityGroups = [] } = await this.ctx.moto.ec2.send(new DescribeSecurityGroupsCommand({}));
    const referrer = SecurityGroups.find(
      (g) =>
        g.GroupId !== groupId &&
        [...(g.IpPermissions ?? []), ...(g.IpPermissionsEgress ?? [])].some((p) =>
          p.UserIdGroupPairs?.some((pair) => pair.GroupId === groupId),
        ),
    );
    return referrer ? `a rule of ${referrer.GroupId} references it` : undefined;
  }
}

import { DeleteLogGroupCommand } from '@aws-sdk/client-cloudwatch-logs';
import { DescribeAccessEntryCommand } from '@aws-sdk/client-eks';
import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  InvokeCommand,
} from '@aws-sdk/client-lambda';
import { ApplicationFailure, heartbeat, log, sleep } from '@temporalio/activity';
import { readFileSync } from 'node:fs';
import { ownerTags, REMEDIATOR_GROUP, type Owner } from '../../domain/aws-resources.js';
import type { RemediationEvent, RemediationResult } from '../../lambda/handler.js';
import { PERMANENT_KUBE_STATUSES } from '../../remediation/kube.js';
import { awsCode, ignoring, type AwsClients } from './clients.js';
import { leaveIfForeign, refuseIfForeign, type Removal } from './ownership.js';

/** A VPC cold start plus a few API calls: the reference playbook's 3 s default timed out. */
export const FUNCTION_TIMEOUT_SECONDS = 30;
export const FUNCTION_MEMORY_MB = 256;
/** Lambda refuses to create functions on deprecated runtimes; nodejs20.x reached end of support in 2026. */
export const FUNCTION_RUNTIME = 'nodejs22.x';
/**
 * How long after its access entry was made a 401/403 from the API server is taken for propagation
 * (EKS applies a new entry and its policy within seconds, occasionally a minute), not a refusal.
 */
export const ACCESS_PROPAGATION_SECONDS = 120;

export async function createFunction(
  aws: AwsClients,
  p: { name: string; owner: Owner; roleArn: string; subnetIds: string[]; groupId: string; zipPath: string },
): Promise<{ functionArn: string }> {
  try {
    await aws.lambda.send(
      new CreateFunctionCommand({
        FunctionName: p.name,
        Runtime: FUNCTION_RUNTIME,
        Handler: 'index.handler',
        Role: p.roleArn,
        Code: { ZipFile: readFileSync(p.zipPath) },
        Timeout: FUNCTION_TIMEOUT_SECONDS,
        MemorySize: FUNCTION_MEMORY_MB,
        VpcConfig: { SubnetIds: p.subnetIds, SecurityGroupIds: [p.groupId] },
        Description: `pod-responder remediation for ${p.owner.incidentId}`.slice(0, 256),
        Tags: ownerTags(p.owner),
      }),
    );
  } catch (err) {
    const code = awsCode(err);
    if (code === 'InvalidParameterValueException' && /cannot be assumed/i.test((err as Error).message)) {
      // A new role takes seconds to propagate through IAM; Temporal retries with backoff.
      throw ApplicationFailure.retryable(
        `IAM role not yet assumable by Lambda: ${(err as Error).message}`,
        'RoleNotReady',
      );
    }
    if (code !== 'ResourceConflictException') throw err;
    const { Tags } = await aws.lambda.send(new GetFunctionCommand({ FunctionName: p.name }));
    refuseIfForeign(`function ${p.name}`, Tags, p.owner);
  }
  // Created or adopted, a VPC function is Pending while Lambda makes its network interfaces (tens of
  // seconds), and Invoke fails until it is Active. The activity's timeout and retries bound the wait.
  return { functionArn: await waitActive(aws, p.name) };
}

/** Polls with short backoff (0.25 s doubling to 5 s), heartbeating, until the function is Active. */
export async function waitActive(aws: AwsClients, name: string): Promise<string> {
  for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
    const cfg = await aws.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name }));
    if (cfg.State === 'Active' || cfg.State === undefined) return cfg.FunctionArn!;
    if (cfg.State === 'Failed') {
      throw ApplicationFailure.nonRetryable(
        `function ${name} failed to start: ${cfg.StateReasonCode}: ${cfg.StateReason}`,
        'FunctionFailed',
      );
    }
    heartbeat({ state: cfg.State });
    await sleep(delay);
  }
}

export async function deleteFunction(aws: AwsClients, name: string, owner: Owner): Promise<Removal> {
  const found = await ignoring(['ResourceNotFoundException'], () =>
    aws.lambda.send(new GetFunctionCommand({ FunctionName: name })),
  );
  const foreign = found && leaveIfForeign(`function ${name}`, found.Tags, owner);
  if (foreign) return foreign;
  const out =
    found &&
    (await ignoring(['ResourceNotFoundException'], () =>
      aws.lambda.send(new DeleteFunctionCommand({ FunctionName: name })),
    ));
  // Lambda creates the log group on first write; the playbook left it behind.
  await ignoring(['ResourceNotFoundException'], () =>
    aws.logs.send(new DeleteLogGroupCommand({ logGroupName: `/aws/lambda/${name}` })),
  );
  return { deleted: out !== undefined };
}

/**
 * Invokes the function; a function error or a Kubernetes refusal fails this step with its message.
 * A 401 while the function's access entry is new is EKS still propagating it: invoked again, heartbeating.
 * A 403 is RBAC's answer (the groups are bound, or not, by the cluster owner): final, and said how to fix.
 */
export async function invokeFunction(aws: AwsClients, name: string, event: RemediationEvent): Promise<unknown> {
  for (let delay = 1000; ; delay = Math.min(delay * 2, 10_000)) {
    try {
      return await invokeOnce(aws, name, event);
    } catch (err) {
      if ((err as ApplicationFailure).type !== 'Kube401') throw err;
      const age = await accessEntryAgeSeconds(aws, name, event.cluster.name);
      if (age === undefined || age > ACCESS_PROPAGATION_SECONDS) throw err;
      log.info('access entry not yet in effect: invoking again', {
        function: name,
        accessEntryAgeSeconds: Math.round(age),
      });
      heartbeat({ waitingForAccessEntry: true });
      await sleep(delay);
    }
  }
}

async function accessEntryAgeSeconds(
  aws: AwsClients,
  functionName: string,
  clusterName: string,
): Promise<number | undefined> {
  const { Role } = await aws.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: functionName }));
  if (!Role) return undefined;
  const out = await ignoring(['ResourceNotFoundException'], () =>
    aws.eks.send(new DescribeAccessEntryCommand({ clusterName, principalArn: Role })),
  );
  const createdAt = out?.accessEntry?.createdAt;
  return createdAt ? (Date.now() - createdAt.getTime()) / 1000 : undefined;
}

async function invokeOnce(aws: AwsClients, name: string, event: RemediationEvent): Promise<unknown> {
  const out = await aws.lambda.send(
    new InvokeCommand({
      FunctionName: name,
      InvocationType: 'RequestResponse',
      Payload: Buffer.from(JSON.stringify(event)),
    }),
  );
  const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
  if (out.FunctionError) {
    let message = text;
    try {
      const e = JSON.parse(text) as { errorType?: string; errorMessage?: string };
      message = `${e.errorType ?? 'Error'}: ${e.errorMessage ?? text}`;
    } catch {
      /* not JSON: keep the raw payload */
    }
    throw ApplicationFailure.retryable(`function ${name} failed (${out.FunctionError}): ${message}`, 'FunctionError');
  }
  const result = JSON.parse(text) as RemediationResult;
  if (result.ok) return result.response;
  const status = result.error.kube?.status ?? 0;
  const hint =
    status === 403
      ? ` (RBAC: is the namespace bound, a RoleBinding of pod-responder-remediator to group ${REMEDIATOR_GROUP}:<namespace>? See deploy/kubernetes/eks-remediator-rbac.yaml)`
      : '';
  const failure = `function ${name}: ${result.error.message}${hint}`;
  throw PERMANENT_KUBE_STATUSES.has(status)
    ? ApplicationFailure.nonRetryable(failure, `Kube${status}`, result.error.kube)
    : ApplicationFailure.retryable(failure, status ? `Kube${status}` : 'KubeUnreachable', result.error.kube);
}

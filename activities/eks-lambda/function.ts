import { DeleteLogGroupCommand } from '@aws-sdk/client-cloudwatch-logs';
import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetFunctionConfigurationCommand,
  InvokeCommand,
} from '@aws-sdk/client-lambda';
import { ApplicationFailure, heartbeat, sleep } from '@temporalio/activity';
import { readFileSync } from 'node:fs';
import { incidentTags } from '../../domain/aws-resources.js';
import type { RemediationEvent, RemediationResult } from '../../lambda/handler.js';
import { PERMANENT_KUBE_STATUSES } from '../../remediation/kube.js';
import { awsCode, ignoring, type AwsClients } from './clients.js';

/** A VPC cold start plus a few API calls: the reference playbook's 3 s default timed out. */
export const FUNCTION_TIMEOUT_SECONDS = 30;
export const FUNCTION_MEMORY_MB = 256;

export async function createFunction(
  aws: AwsClients,
  p: { name: string; incidentId: string; roleArn: string; subnetIds: string[]; groupId: string; zipPath: string },
): Promise<{ functionArn: string }> {
  let functionArn: string | undefined;
  try {
    const out = await aws.lambda.send(
      new CreateFunctionCommand({
        FunctionName: p.name,
        Runtime: 'nodejs20.x',
        Handler: 'index.handler',
        Role: p.roleArn,
        Code: { ZipFile: readFileSync(p.zipPath) },
        Timeout: FUNCTION_TIMEOUT_SECONDS,
        MemorySize: FUNCTION_MEMORY_MB,
        VpcConfig: { SubnetIds: p.subnetIds, SecurityGroupIds: [p.groupId] },
        Description: `pod-responder remediation for ${p.incidentId}`.slice(0, 256),
        Tags: incidentTags(p.incidentId),
      }),
    );
    functionArn = out.FunctionArn;
  } catch (err) {
    const code = awsCode(err);
    if (code === 'InvalidParameterValueException' && /cannot be assumed/i.test((err as Error).message)) {
      // A new role takes seconds to propagate through IAM; Temporal retries with backoff.
      throw ApplicationFailure.retryable(`IAM role not yet assumable by Lambda: ${(err as Error).message}`, 'RoleNotReady');
    }
    if (code !== 'ResourceConflictException') throw err;
  }
  return { functionArn: functionArn ?? (await waitActive(aws, p.name)) };
}

/** Polls with short backoff (0.25 s doubling to 5 s), heartbeating, until the function is Active. */
export async function waitActive(aws: AwsClients, name: string): Promise<string> {
  for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
    const cfg = await aws.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name }));
    if (cfg.State === 'Active' || cfg.State === undefined) return cfg.FunctionArn!;
    if (cfg.State === 'Failed') {
      throw ApplicationFailure.nonRetryable(`function ${name} failed to start: ${cfg.StateReasonCode}: ${cfg.StateReason}`, 'FunctionFailed');
    }
    heartbeat({ state: cfg.State });
    await sleep(delay);
  }
}

export async function deleteFunction(aws: AwsClients, name: string): Promise<{ deleted: boolean }> {
  const out = await ignoring(['ResourceNotFoundException'], () => aws.lambda.send(new DeleteFunctionCommand({ FunctionName: name })));
  // Lambda creates the log group on first write; the playbook left it behind.
  await ignoring(['ResourceNotFoundException'], () => aws.logs.send(new DeleteLogGroupCommand({ logGroupName: `/aws/lambda/${name}` })));
  return { deleted: out !== undefined };
}

/** Invokes the function; a function error or a Kubernetes refusal fails this step with its message. */
export async function invokeFunction(aws: AwsClients, name: string, event: RemediationEvent): Promise<unknown> {
  const out = await aws.lambda.send(
    new InvokeCommand({ FunctionName: name, InvocationType: 'RequestResponse', Payload: Buffer.from(JSON.stringify(event)) }),
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
  const failure = `function ${name}: ${result.error.message}`;
  throw PERMANENT_KUBE_STATUSES.has(status)
    ? ApplicationFailure.nonRetryable(failure, `Kube${status}`, result.error.kube)
    : ApplicationFailure.retryable(failure, status ? `Kube${status}` : 'KubeUnreachable', result.error.kube);
}

import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { EC2Client } from '@aws-sdk/client-ec2';
import { EKSClient } from '@aws-sdk/client-eks';
import { IAMClient } from '@aws-sdk/client-iam';
import { LambdaClient } from '@aws-sdk/client-lambda';

export interface AwsConfig {
  /** Override every service endpoint (local test stack); normally unset. */
  endpoint?: string;
}

export interface AwsClients {
  iam: IAMClient;
  ec2: EC2Client;
  eks: EKSClient;
  lambda: LambdaClient;
  logs: CloudWatchLogsClient;
}

/** One set of clients per region. The SDK's own retries stay on (throttling); Temporal retries the rest. */
export function awsClientFactory(config: AwsConfig): (region: string) => AwsClients {
  const cache = new Map<string, AwsClients>();
  return (region) => {
    let c = cache.get(region);
    if (!c) {
      const opts = { region, ...(config.endpoint ? { endpoint: config.endpoint } : {}) };
      c = {
        // IAM is global; its endpoint does not depend on the region.
        iam: new IAMClient({ ...opts, region: 'us-east-1' }),
        ec2: new EC2Client(opts),
        eks: new EKSClient(opts),
        lambda: new LambdaClient(opts),
        logs: new CloudWatchLogsClient(opts),
      };
      cache.set(region, c);
    }
    return c;
  };
}

/** The AWS error code (SDK v3 puts it in `name`). */
export function awsCode(err: unknown): string {
  return (err as { name?: string })?.name ?? '';
}

/** Errors that no retry fixes: missing permissions, bad input. Everything else (5xx, throttling, races) is retried. */
const PERMANENT_CODES = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'ValidationError',
  'ValidationException',
  'MalformedPolicyDocument',
  'LimitExceeded',
  'LimitExceededException',
]);

export function isPermanentAwsError(err: unknown): boolean {
  return PERMANENT_CODES.has(awsCode(err));
}

export async function ignoring<T>(codes: string[], call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (err) {
    if (codes.includes(awsCode(err))) return undefined;
    throw err;
  }
}

const HEARTBEAT_EVERY_MS = 2000;

/**
 * An AWS activity: errors no retry can fix become non-retryable, naming the step (a failure the activity raised
 * itself passes as it is); the rest (throttling, 5xx) are retried. It heartbeats meanwhile, so Temporal notices
 * a dead worker within the heartbeat timeout, not the whole start-to-close.
 */
export function classified<A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    const beat = setInterval(() => heartbeat(), HEARTBEAT_EVERY_MS);
    try {
      return await fn(...args);
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      if (isPermanentAwsError(err)) throw ApplicationFailure.nonRetryable(`${name}: ${awsCode(err)}: ${(err as Error).message}`, awsCode(err));
      throw err;
    } finally {
      clearInterval(beat);
    }
  };
}

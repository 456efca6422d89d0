import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { EC2Client } from '@aws-sdk/client-ec2';
import { EKSClient } from '@aws-sdk/client-eks';
import { IAMClient } from '@aws-sdk/client-iam';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { clientCache, type ClientCache } from '../../remediation/client-cache.js';

export interface AwsConfig {
  /** Override every service endpoint (local test stack); normally unset. */
  endpoint?: string;
  /**
   * Sign with these instead of the SDK's default chain (Pod Identity, IRSA, environment). Only the test stack sets
   * them: its worker role's session, so the test front holds the worker to deploy/aws/worker-policy.json.
   */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

export interface AwsClients {
  iam: IAMClient;
  ec2: EC2Client;
  eks: EKSClient;
  lambda: LambdaClient;
  logs: CloudWatchLogsClient;
}

/** Regions whose clients are kept; the least recently used beyond this are destroyed. */
export const AWS_CLIENT_REGIONS = 8;
/** An evicted region's clients are destroyed this long after, when no activity can still be calling through them. */
export const EVICTED_CLIENT_GRACE_MS = 5 * 60_000;

/**
 * One set of clients per region, for the regions used last (the region comes from the alert, so the set is
 * bounded here, not by who sends alerts). The SDK's own retries stay on (throttling); Temporal retries the rest.
 */
export function awsClientFactory(
  config: AwsConfig,
  limits = { regions: AWS_CLIENT_REGIONS, graceMs: EVICTED_CLIENT_GRACE_MS },
): ((region: string) => AwsClients) & { cache: ClientCache<AwsClients> } {
  const cache = clientCache<AwsClients>({
    max: limits.regions,
    graceMs: limits.graceMs,
    make: (region) => {
      const opts = {
        region,
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
        ...(config.credentials ? { credentials: config.credentials } : {}),
      };
      return {
        // IAM is global; its endpoint does not depend on the region.
        iam: new IAMClient({ ...opts, region: 'us-east-1' }),
        ec2: new EC2Client(opts),
        eks: new EKSClient(opts),
        lambda: new LambdaClient(opts),
        logs: new CloudWatchLogsClient(opts),
      };
    },
    destroy: (c) => Object.values(c).forEach((client: { destroy(): void }) => client.destroy()),
  });
  return Object.assign((region: string) => cache.get(region), { cache });
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
export function classified<A extends unknown[], R>(
  name: string,
  fn: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  return async (...args: A) => {
    const beat = setInterval(() => heartbeat(), HEARTBEAT_EVERY_MS);
    try {
      return await fn(...args);
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      if (isPermanentAwsError(err))
        throw ApplicationFailure.nonRetryable(`${name}: ${awsCode(err)}: ${(err as Error).message}`, awsCode(err));
      throw err;
    } finally {
      clearInterval(beat);
    }
  };
}

/**
 * Typed client for the AWS front's control API: inject failures and read the AWS calls it saw.
 *
 *   const faults = new AwsFaults(inject('aws').faultsUrl);
 *   await faults.failCall('iam', 'CreateRole', { status: 500, code: 'InternalFailure' });
 *   await faults.failCall('lambda', 'Invoke', { status: 429, code: 'TooManyRequestsException', times: 2 });
 *   await faults.eniReleaseSeconds(5);
 *   const calls = await faults.calls();   // [{ service: 'iam', action: 'CreateRole', status: 500 }, ...]
 *
 * Test files run in parallel against one front, so each AwsFaults instance owns the faults it adds:
 * state() and clear() see only those. A fault still hits every matching call, whoever makes it:
 * narrow it with `match` (e.g. a name prefix your test owns) so other files' calls pass.
 */

/** Fail matching calls, counted from when the fault is added. */
export interface FailCallFault {
  kind: 'fail';
  /** SigV4 service name: iam, ec2, sts, eks, lambda, logs, tagging... */
  service: string;
  /** Operation name as AWS spells it: CreateRole, DeleteSecurityGroup, CreateAccessEntry, Invoke... */
  action: string;
  /** The first matching call that fails (1 = the next one). Default 1. */
  nth?: number;
  /** How many matching calls fail from the nth on; 0 = all of them. Default 1. */
  times?: number;
  /** HTTP status. Default 500. */
  status?: number;
  /** AWS error code. Default InternalFailure. */
  code?: string;
  message?: string;
  /** Only calls whose path, query or body contains this string match (e.g. a role or function name). */
  match?: string;
  /** 'before' (default): AWS never sees the call. 'after': the call takes effect, then its answer is replaced by the error. */
  when?: 'before' | 'after';
}

/**
 * After a Lambda function with VpcConfig is deleted (or its VpcConfig changes), DeleteSecurityGroup on
 * its security groups answers DependencyViolation for this long, as Lambda's ENIs are released slowly.
 * On by default (the stack's default is 2 s); 0 turns it off.
 */
export interface EniReleaseFault {
  kind: 'eniRelease';
  seconds: number;
}

/**
 * How long AWS takes to bring up what matches (a function or principal name containing `match`; all if
 * unset): `functionPending`, seconds a new function stays Pending (Invoke answers ResourceConflictException);
 * `accessEntry`, seconds a new access entry authenticates nobody; `rolePolicy`, seconds before a change to a role's
 * inline policies reaches S3 (role name). The newest matching delay wins; the stack's defaults (2 s, 1 s, 1 s)
 * apply otherwise.
 */
export interface LifecycleDelay {
  kind: 'functionPending' | 'accessEntry' | 'rolePolicy';
  seconds: number;
  match?: string;
}

export type Fault = FailCallFault | EniReleaseFault | LifecycleDelay;

export interface FaultStatus {
  id: string;
  /** The AwsFaults instance that added it. */
  owner?: string;
  fault: FailCallFault;
  /** Matching calls seen since the fault was added, and how many of them it failed. */
  seen: number;
  fired: number;
}

export interface FaultsState {
  faults: FaultStatus[];
  eniReleaseSeconds: number;
}

export interface AwsCall {
  service: string;
  action: string;
  status: number;
}

export type FailCallOptions = Omit<FailCallFault, 'kind' | 'service' | 'action'>;

export class AwsFaults {
  private readonly base: string;
  readonly owner = `faults-${Math.random().toString(36).slice(2, 10)}`;

  /** `faultsUrl` is the stack's `aws.faultsUrl` (the front's `/_faults`). */
  constructor(faultsUrl: string) {
    this.base = faultsUrl.replace(/\/_faults\/?$/, '');
  }

  async add(fault: Fault): Promise<string | undefined> {
    const { ids } = (await this.call('POST', `/_faults?owner=${this.owner}`, fault)) as { ids: (string | null)[] };
    return ids[0] ?? undefined;
  }

  /** Fails the nth (default: next) call of service:action; returns the fault's id. */
  async failCall(service: string, action: string, opts: FailCallOptions = {}): Promise<string> {
    return (await this.add({ kind: 'fail', service, action, ...opts }))!;
  }

  async eniReleaseSeconds(seconds: number): Promise<void> {
    await this.add({ kind: 'eniRelease', seconds });
  }

  /** Makes new functions (or those whose name contains `match`) stay Pending this long. */
  async functionPendingSeconds(seconds: number, match?: string): Promise<void> {
    await this.add({ kind: 'functionPending', seconds, ...(match ? { match } : {}) });
  }

  /** Makes new access entries (of principals whose ARN contains `match`) authenticate nobody for this long. */
  async accessEntryDelaySeconds(seconds: number, match?: string): Promise<void> {
    await this.add({ kind: 'accessEntry', seconds, ...(match ? { match } : {}) });
  }

  /** Makes a change to the inline policies of roles (whose name contains `match`) reach S3 only after this long. */
  async rolePolicyDelaySeconds(seconds: number, match?: string): Promise<void> {
    await this.add({ kind: 'rolePolicy', seconds, ...(match ? { match } : {}) });
  }

  /** This instance's faults (with how often each matched and fired) and the current ENI release delay. */
  async state(): Promise<FaultsState> {
    return (await this.call('GET', `/_faults?owner=${this.owner}`)) as FaultsState;
  }

  /** Removes one fault (no error if it is already gone). */
  async remove(id: string): Promise<void> {
    await this.call('DELETE', `/_faults/${encodeURIComponent(id)}`);
  }

  /** Removes this instance's faults, and restores the default ENI release delay if this instance changed it. */
  async clear(): Promise<void> {
    await this.call('DELETE', `/_faults?owner=${this.owner}`);
  }

  /** Removes every fault, whoever added it, and restores the default ENI release delay. */
  async clearAll(): Promise<void> {
    await this.call('DELETE', '/_faults');
  }

  /** Every AWS call through the front, in order (since the last resetCalls(), from index `since`). */
  async calls(since = 0): Promise<AwsCall[]> {
    return (await this.call('GET', `/_calls?since=${since}`)) as AwsCall[];
  }

  async resetCalls(): Promise<void> {
    await this.call('DELETE', '/_calls');
  }

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(this.base + path, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`AWS front ${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }
}

/**
 * Containment before destruction: the pod is cut off the network (remediation/isolate.ts) before it is
 * killed or its workload suspended, and at once when an action waits for approval, so a miner stops
 * reaching its pool while a person decides. The kill keeps the policy past the pod object (no longer owned
 * by the pod); it is released once the kill is verified on a node that is not NotReady, or when the incident
 * ends without killing (dismissed, denied, cancelled, restored); kept otherwise, and the problem says so.
 * Isolation that cannot cut the pod off is `not-enforceable`, with why, never `isolated`.
 */
import { isCancellation } from '@temporalio/workflow';
import type { PodFacts } from '../../domain/workload.js';
import type { IsolationRecord, PodTarget } from '../../remediation/protocol.js';
import type { IsolationStatus } from '../messages.js';
import type { ExecutorSession } from '../executor.js';
import { failureMessage } from './failures.js';
import type { Incident } from './incident.js';

/** The most isolation may hold back the kill, retries included: past it, the kill goes on without isolation. */
export const ISOLATION_BUDGET_SECONDS = 30;

export async function isolateFirst(i: Incident, exec: ExecutorSession, pod: PodTarget): Promise<void> {
  if (i.state.isolation || i.policy.isolate === false) return;
  const at = () => new Date().toISOString();
  try {
    const { result, record, notEnforceable } = await exec.run(
      { op: 'isolate-pod', incidentId: i.id, pod },
      `isolate pod ${pod.namespace}/${pod.name}: deny-all NetworkPolicy (within ${ISOLATION_BUDGET_SECONDS}s)`,
      ISOLATION_BUDGET_SECONDS,
    );
    const networkPolicy = record ? `${record.namespace}/${record.networkPolicy}` : null;
    const state = notEnforceable ? 'not-enforceable' : record ? 'isolated' : 'failed';
    i.state.isolation = { state, networkPolicy, record, at: at(), detail: result.message };
    i.note('isolate-pod', `${result.target}: ${result.status} (${result.message})`);
  } catch (err) {
    if (isCancellation(err)) throw err;
    // Containment that fails must not hold back the kill: say so, and go on.
    const why = failureMessage(err);
    i.state.isolation = { state: 'failed', networkPolicy: null, record: null, at: at(), detail: why };
    i.note('isolate-pod', `failed (${why}); going on without isolation`);
  }
}

/** Our NetworkPolicy is in place (isolating, or kept for what it still denies): the kill keeps it past the pod. */
export function isolationToKeep(i: Incident): IsolationRecord | null {
  const iso = i.state.isolation;
  return iso && inPlace(iso) ? iso.record : null;
}

const inPlace = (iso: IsolationStatus): boolean =>
  !!iso.record && (iso.state === 'isolated' || iso.state === 'not-enforceable');

/** The pod is cut off the network: what evidence waits for, and what nothing else is (docs/kill-first.md). */
export const podIsolated = (i: Incident): boolean => i.state.isolation?.state === 'isolated';

/** Removes the isolation, if in place, in the executor stretch given. A failure is noted, never fatal. */
export async function releaseIsolation(i: Incident, exec: ExecutorSession, why: string): Promise<void> {
  const iso = i.state.isolation;
  if (!iso || !inPlace(iso) || !iso.record) return;
  try {
    const { result } = await exec.run(
      { op: 'release-isolation', record: iso.record },
      `remove NetworkPolicy ${iso.networkPolicy} (${why})`,
    );
    i.state.isolation = {
      ...iso,
      state: result.status === 'conflict' ? 'kept' : 'released',
      at: new Date().toISOString(),
      detail: `${why}: ${result.message}`,
    };
    i.note('release-isolation', `${result.target}: ${result.status} (${why}: ${result.message})`);
  } catch (err) {
    if (isCancellation(err)) throw err;
    const error = failureMessage(err);
    i.state.isolation = {
      ...iso,
      state: 'kept',
      at: new Date().toISOString(),
      detail: `removal failed (${error}); ${i.state.killedAt ? 'delete it by hand' : 'it is deleted with the pod, or delete it by hand'}`,
    };
    i.note('release-isolation', `failed: ${error}`);
  }
}

/** The same in a stretch of its own, for an incident that ends outside one (dismissed after a wait, cancelled). */
export async function releaseIsolationAlone(i: Incident, why: string): Promise<void> {
  const iso = i.state.isolation;
  if (!iso || !inPlace(iso)) return;
  try {
    await i.withExecutor((exec) => releaseIsolation(i, exec, why));
  } catch (err) {
    if (isCancellation(err)) throw err;
    // The executor could not be opened: the incident's outcome stands, the policy stays with the pod.
    const error = failureMessage(err);
    i.state.isolation = {
      ...iso,
      state: 'kept',
      at: new Date().toISOString(),
      detail: `${why}, but removal failed (${error}); it is deleted with the pod, or delete it by hand`,
    };
    i.note('release-isolation', `failed: ${error}`);
  }
}

/** For the problem text of an incident that ends with its isolation in place: the pod alive, or its kill unconfirmed. */
export function isolationLeft(i: Incident): string {
  const iso = i.state.isolation;
  if (!iso || !inPlace(iso)) return '';
  if (i.state.killedAt)
    return `; NetworkPolicy ${iso.networkPolicy} is kept until the container is confirmed stopped (no longer owned by the pod: delete it by hand then)`;
  return `; the pod stays isolated by NetworkPolicy ${iso.networkPolicy} (deleted with the pod)`;
}

/**
 * The isolation goes only once the last verification confirmed the kill: the pod gone after a graceful delete
 * (its kubelet removes the object once the containers stopped) and its node not NotReady. While the pod is still
 * terminating, or gone from the API from a node that is NotReady (force-deleted, its container may still run),
 * the policy stays: the kill took its ownership away, so nothing else removes it (the problem says so).
 */
export async function releaseIsolationIfKillVerified(i: Incident, exec: ExecutorSession, p: PodFacts): Promise<void> {
  const check = i.state.verification.find((c) => c.target.startsWith(`pod ${p.namespace}/${p.name} `));
  if (check?.ok) await releaseIsolation(i, exec, `the kill is verified (${check.observed})`);
}

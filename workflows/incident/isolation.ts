/**
 * Containment before destruction: the pod is cut off the network (remediation/isolate.ts) before it is
 * killed or its workload suspended, and at once when an action waits for approval, so a miner stops
 * reaching its pool while a person decides. Released when the pod is gone, or when the incident ends
 * without killing it (dismissed, denied, cancelled, restored); kept with a living pod otherwise (the
 * policy is owned by the pod and goes with it).
 */
import { isCancellation } from '@temporalio/workflow';
import type { PodTarget } from '../../remediation/protocol.js';
import type { ExecutorSession } from '../executor.js';
import { failureMessage } from './failures.js';
import type { Incident } from './incident.js';

export async function isolateFirst(i: Incident, exec: ExecutorSession, pod: PodTarget): Promise<void> {
  if (i.state.isolation || i.policy.isolate === false) return;
  const at = () => new Date().toISOString();
  try {
    const { result, record } = await exec.run({ op: 'isolate-pod', incidentId: i.id, pod }, `isolate pod ${pod.namespace}/${pod.name}: deny-all NetworkPolicy`);
    const networkPolicy = record ? `${record.namespace}/${record.networkPolicy}` : null;
    i.state.isolation = { state: record ? 'isolated' : 'failed', networkPolicy, record, at: at(), detail: result.message };
    i.note('isolate-pod', `${result.target}: ${result.status} (${result.message})`);
  } catch (err) {
    if (isCancellation(err)) throw err;
    // Containment that fails must not hold back the kill: say so, and go on.
    const why = failureMessage(err);
    i.state.isolation = { state: 'failed', networkPolicy: null, record: null, at: at(), detail: why };
    i.note('isolate-pod', `failed (${why}); going on without isolation`);
  }
}

/** Removes the isolation, if in place, in the executor stretch given. A failure is noted, never fatal. */
export async function releaseIsolation(i: Incident, exec: ExecutorSession, why: string): Promise<void> {
  const iso = i.state.isolation;
  if (iso?.state !== 'isolated' || !iso.record) return;
  try {
    const { result } = await exec.run({ op: 'release-isolation', record: iso.record }, `remove NetworkPolicy ${iso.networkPolicy} (${why})`);
    i.state.isolation = { ...iso, state: result.status === 'conflict' ? 'kept' : 'released', at: new Date().toISOString(), detail: `${why}: ${result.message}` };
    i.note('release-isolation', `${result.target}: ${result.status} (${why}: ${result.message})`);
  } catch (err) {
    if (isCancellation(err)) throw err;
    const error = failureMessage(err);
    i.state.isolation = { ...iso, state: 'kept', at: new Date().toISOString(), detail: `removal failed (${error}); it is deleted with the pod, or delete it by hand` };
    i.note('release-isolation', `failed: ${error}`);
  }
}

/** The same in a stretch of its own, for an incident that ends outside one (dismissed after a wait, cancelled). */
export async function releaseIsolationAlone(i: Incident, why: string): Promise<void> {
  const iso = i.state.isolation;
  if (iso?.state !== 'isolated') return;
  try {
    await i.withExecutor((exec) => releaseIsolation(i, exec, why));
  } catch (err) {
    if (isCancellation(err)) throw err;
    // The executor could not be opened: the incident's outcome stands, the policy stays with the pod.
    const error = failureMessage(err);
    i.state.isolation = { ...iso, state: 'kept', at: new Date().toISOString(), detail: `${why}, but removal failed (${error}); it is deleted with the pod, or delete it by hand` };
    i.note('release-isolation', `failed: ${error}`);
  }
}

/** For the problem text of an incident that ends with the pod alive and isolated. */
export function isolationLeft(i: Incident): string {
  const iso = i.state.isolation;
  return iso?.state === 'isolated' ? `; the pod stays isolated by NetworkPolicy ${iso.networkPolicy} (deleted with the pod)` : '';
}

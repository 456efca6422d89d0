/** Test-only workflows that drive the saga undo stack the executors build on. */
import { ApplicationFailure, CancellationScope, defineQuery, proxyActivities, setHandler } from '@temporalio/workflow';
import { Compensations, type CompensationOutcome } from '../../workflows/compensations.js';

export interface SagaActivities {
  deploy(step: string): Promise<void>;
  undo(step: string): Promise<void>;
}

const { deploy } = proxyActivities<SagaActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 1 },
});
// Undo retries until done, as the real executors' compensations do.
const { undo } = proxyActivities<SagaActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '50 milliseconds', backoffCoefficient: 1 },
});

export const parkedQuery = defineQuery<boolean>('parked');

/** Deploys `steps` in order, registering each undo first; fails at `failAt`, or parks at `parkAt` until cancelled. */
export async function sagaWorkflow(steps: string[], failAt?: string, parkAt?: string): Promise<CompensationOutcome[]> {
  const compensations = new Compensations();
  let parked = false;
  setHandler(parkedQuery, () => parked);
  let failed = false;
  let failure: unknown;
  try {
    for (const step of steps) {
      compensations.add(`undo ${step}`, () => undo(step));
      if (step === parkAt) {
        parked = true;
        await CancellationScope.current().cancelRequested;
      }
      if (step === failAt) throw ApplicationFailure.nonRetryable(`step ${step} failed`);
      await deploy(step);
    }
  } catch (err) {
    failed = true;
    failure = err;
  }
  const outcomes = await compensations.runAll();
  if (failed) throw failure;
  return outcomes;
}

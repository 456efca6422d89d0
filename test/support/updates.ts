import { WorkflowUpdateFailedError } from '@temporalio/client';
import { expect } from 'vitest';

/** The message a refused update carries (the validator's words); fails the test if the update was taken. */
export async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
  return (err as WorkflowUpdateFailedError).cause?.message ?? '';
}

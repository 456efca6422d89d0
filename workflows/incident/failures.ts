import { ActivityFailure } from '@temporalio/workflow';

/** The innermost cause of a failure, with the activity that raised it: what an analyst needs to act. */
export function failureMessage(err: unknown): string {
  let e: unknown = err;
  let activity: string | undefined;
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) {
    if (e instanceof ActivityFailure) activity ??= e.activityType;
    e = (e as { cause?: unknown }).cause;
  }
  const message = e instanceof Error ? e.message : String(e);
  return activity ? `${activity} failed: ${message}` : message;
}

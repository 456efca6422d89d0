import { ApplicationFailure, Context } from '@temporalio/activity';
import { notOwnedBecause, type Owner } from '../../domain/aws-resources.js';

/** What an undo did: deleted it, found it gone, or found it is not ours and left it as it is. */
export interface Removal {
  deleted: boolean;
  /** Set when the resource exists but its tags do not prove it ours: why it was left intact. */
  leftIntact?: string;
}

/**
 * The owner an undo removes for: the incident named, or else the workflow that scheduled the activity
 * (an incident's own undo), always of this worker's installation.
 */
export function ownerFor(installationId: string, incidentId?: string): Owner {
  const scheduledBy = Context.current().info.workflowExecution?.workflowId;
  if (incidentId === undefined && scheduledBy === undefined)
    throw new Error('an undo outside a workflow must name the incident it removes for');
  return { installationId, incidentId: incidentId ?? scheduledBy! };
}

/** An existing resource with our name that is not ours: never adopted, and the incident says why. */
export function foreignResource(what: string, why: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`${what} exists but is not ours (${why}); left intact`, 'ForeignResource');
}

/** What an undo reports for a resource it found is not ours. */
export const leftIntact = (what: string, why: string): Removal => ({
  deleted: false,
  leftIntact: `${what} is not ours (${why}); left intact`,
});

/** Undefined if ours; otherwise the Removal that leaves it. */
export function leaveIfForeign(
  what: string,
  tags: Record<string, string | undefined> | undefined,
  owner: Owner,
): Removal | undefined {
  const why = notOwnedBecause(tags, owner);
  return why ? leftIntact(what, why) : undefined;
}

export function refuseIfForeign(
  what: string,
  tags: Record<string, string | undefined> | undefined,
  owner: Owner,
): void {
  const why = notOwnedBecause(tags, owner);
  if (why) throw foreignResource(what, why);
}

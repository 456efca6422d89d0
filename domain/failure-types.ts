/** Failure types the workflow tells apart, raised in workflow code or by activities. */

/** The executor cannot be used for this cluster (no mapping, no region, no access entries): the incident needs a person. */
export const EXECUTOR_UNAVAILABLE = 'ExecutorUnavailable';

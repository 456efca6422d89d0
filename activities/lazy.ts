/**
 * Activities whose module is loaded by their first call, not at worker start. The EKS executor's and the
 * credentials revocation's activities pull in five AWS SDK clients: about 1 s of a worker's start CPU and 30 MiB
 * of its idle RSS (`npm run bench:worker-start`). A worker that never runs them (the direct executor, no
 * `revokeCredentials`) never pays for them.
 */
type ActivityFunctions = Record<string, (...args: never[]) => Promise<unknown>>;

/** The names, which Temporal needs when the worker starts; every activity the module creates must be listed. */
type EveryName<T, N extends readonly string[]> = [Exclude<keyof T, N[number]>] extends [never]
  ? N
  : { unlisted: Exclude<keyof T, N[number]> };

export function lazyActivities<T extends ActivityFunctions, const N extends readonly (keyof T & string)[]>(
  names: N & EveryName<T, N>,
  load: () => Promise<T>,
): T {
  let loading: Promise<T> | undefined;
  // A failed load (a missing file, say) is tried again by the activity's next attempt, not remembered.
  const loaded = () => (loading ??= load().catch((err: unknown) => ((loading = undefined), Promise.reject(err))));
  const activities: Record<string, (...args: never[]) => Promise<unknown>> = {};
  for (const name of names) activities[name] = async (...args: never[]) => (await loaded())[name]!(...args);
  return activities as T;
}

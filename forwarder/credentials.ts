/**
 * Who may report what. Each source has credentials (its own token/HMAC key, named "default", and any
 * listed under `credentials`), each bound to the clusters and namespaces it may report on. An alert
 * its credential may not report on is refused before anything starts: a token taken from one
 * cluster's Falcosidekick cannot suspend workloads in another cluster.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { PodAlert } from '../domain/alert.js';
import type { SourceName } from '../domain/sources/index.js';
import type { Config } from '../config/config.js';
import { authenticate } from './auth.js';
import { TokenBucket } from './rate-limit.js';

type SourceConfig = Config['forwarder']['sources'][SourceName];

/** Whoever delivered an alert: a credential of an HTTP source, or an SQS queue. */
export interface Sender {
  source: SourceName;
  /** The credential's name, or `sqs:<queue url>`: in logs, in the spool, and the rate limit's key. */
  name: string;
  clusters?: readonly string[] | undefined;
  namespaces?: readonly string[] | undefined;
  ratePerSecond: number;
  burst: number;
  overRate: 'spool' | 'refuse';
}

export interface Credential extends Sender {
  token?: string | undefined;
  hmacSecret?: string | undefined;
}

export const DEFAULT_CREDENTIAL = 'default';

/** The source's credentials, its own first. None: the source is disabled. */
export function credentialsOf(source: SourceName, cfg: SourceConfig): Credential[] {
  const limits = { ratePerSecond: cfg.ratePerSecond, burst: cfg.burst, overRate: cfg.overRate };
  const own: Credential[] =
    cfg.token || cfg.hmacSecret
      ? [
          {
            source,
            name: DEFAULT_CREDENTIAL,
            token: cfg.token,
            hmacSecret: cfg.hmacSecret,
            clusters: cfg.clusters,
            namespaces: cfg.namespaces,
            ...limits,
          },
        ]
      : [];
  return [
    ...own,
    ...cfg.credentials.map((c) => ({
      source,
      name: c.name,
      token: c.token,
      hmacSecret: c.hmacSecret,
      clusters: c.clusters,
      namespaces: c.namespaces,
      ...limits,
      ratePerSecond: c.ratePerSecond ?? cfg.ratePerSecond,
      burst: c.burst ?? cfg.burst,
    })),
  ];
}

/**
 * The credential the request carries, or why a signature made with one is refused (outside the time
 * window), or null. Every credential is tried, each in constant time.
 */
export function authenticateSender(
  credentials: readonly Credential[],
  headers: IncomingHttpHeaders,
  body: Buffer,
  windowSeconds: number,
): Credential | { refused: string } | null {
  let found: Credential | null = null;
  let refused: string | null = null;
  for (const c of credentials) {
    const a = authenticate(c, headers, body, windowSeconds);
    if (a.result === 'ok') found ??= c;
    else if (a.result === 'refused') refused ??= a.reason;
  }
  return found ?? (refused ? { refused } : null);
}

/** Why `sender` may not report `alert`, or null when it may. */
export function refusal(sender: Sender, alert: Pick<PodAlert, 'cluster' | 'namespace'>): string | null {
  const who = sender.name.startsWith('sqs:')
    ? `queue ${sender.name.slice(4)}`
    : `credential "${sender.name}" of source "${sender.source}"`;
  if (sender.clusters && !sender.clusters.includes(alert.cluster.name)) {
    return `${who} may not report on cluster "${alert.cluster.name}" (it may report on: ${sender.clusters.join(', ')})`;
  }
  if (sender.namespaces && !sender.namespaces.includes(alert.namespace)) {
    return `${who} may not report on namespace "${alert.namespace}" (it may report on: ${sender.namespaces.join(', ')})`;
  }
  return null;
}

/**
 * The cluster a Falco request names in its query, filled in when the sender is bound to exactly one:
 * a cluster's own Falcosidekick then needs no `?cluster=` in its URL.
 */
export function withBoundCluster(query: Record<string, unknown>, sender: Sender): Record<string, unknown> {
  return query.cluster === undefined && sender.clusters?.length === 1
    ? { ...query, cluster: sender.clusters[0] }
    : query;
}

/**
 * Token buckets for alerts that start incidents: one per sender and cluster, so one cluster's storm does
 * not hold back another's alerts on a shared credential. A sender bound to no cluster gets one bucket for
 * everything it reports: the cluster it names is its own word, and a bucket per name would let it
 * multiply its rate (and this map) by inventing clusters.
 */
export class SenderLimits {
  private readonly buckets = new Map<string, TokenBucket>();

  /** 0 when the alert may start an incident now, else the seconds until it may. */
  take(sender: Sender, cluster: string): number {
    const key = sender.clusters
      ? `${sender.source}\u0000${sender.name}\u0000${cluster}`
      : `${sender.source}\u0000${sender.name}`;
    let bucket = this.buckets.get(key);
    if (!bucket) this.buckets.set(key, (bucket = new TokenBucket(sender.ratePerSecond, sender.burst)));
    return bucket.take(1);
  }
}

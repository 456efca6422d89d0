/**
 * A small least-recently-used cache of SDK clients, keyed by what the client is for (a region, an endpoint).
 * Regions come from alerts, so the set of keys is not ours to bound: without a limit every region an alert
 * names would keep its clients (and their sockets) for the life of the worker. An evicted client is destroyed
 * once no call made through it can still be running (`graceMs`, longer than any activity's start-to-close).
 */
export interface ClientCache<V> {
  get(key: string): V;
  readonly size: number;
  /** Destroys every client now (worker shutdown, tests). */
  close(): void;
}

export function clientCache<V>(opts: {
  max: number;
  graceMs: number;
  make: (key: string) => V;
  destroy: (client: V) => void;
}): ClientCache<V> {
  const entries = new Map<string, V>(); // insertion order is recency order: a hit is moved to the end
  const retiring = new Map<ReturnType<typeof setTimeout>, V>();
  const retire = (client: V) => {
    const timer = setTimeout(() => {
      retiring.delete(timer);
      opts.destroy(client);
    }, opts.graceMs);
    timer.unref?.();
    retiring.set(timer, client);
  };
  return {
    get(key) {
      let client = entries.get(key);
      if (client !== undefined) entries.delete(key);
      else client = opts.make(key);
      entries.set(key, client);
      while (entries.size > opts.max) {
        const [oldest, evicted] = entries.entries().next().value as [string, V];
        entries.delete(oldest);
        retire(evicted);
      }
      return client;
    },
    get size() {
      return entries.size;
    },
    close() {
      for (const [timer, client] of retiring) {
        clearTimeout(timer);
        opts.destroy(client);
      }
      retiring.clear();
      for (const client of entries.values()) opts.destroy(client);
      entries.clear();
    },
  };
}

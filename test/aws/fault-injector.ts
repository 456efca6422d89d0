/** Server side of the front's /_faults and /_calls: fault state, matching, and the call log. */
import type { AwsCall, Fault, FailCallFault, FaultStatus, FaultsState, LifecycleDelay } from './faults.js';

export class FaultInjector {
  private faults: FaultStatus[] = [];
  private nextId = 1;
  private eniSeconds: number;
  private eniOwner: string | undefined;
  private delays: (LifecycleDelay & { owner?: string })[] = [];
  readonly calls: AwsCall[] = [];

  constructor(
    private readonly defaultEniReleaseSeconds: number,
    private readonly defaultDelays: Record<LifecycleDelay['kind'], number> = {
      functionPending: 0,
      accessEntry: 0,
      rolePolicy: 0,
    },
  ) {
    this.eniSeconds = defaultEniReleaseSeconds;
  }

  /** Seconds `kind` takes for the resource named `name`: the newest matching delay, else the default. */
  delayFor(kind: LifecycleDelay['kind'], name: string): number {
    const d = this.delays.findLast((x) => x.kind === kind && (!x.match || name.includes(x.match)));
    return d ? d.seconds : this.defaultDelays[kind];
  }

  get eniReleaseSeconds(): number {
    return this.eniSeconds;
  }

  /** Validates and installs; returns the id of each fail fault (null for settings). */
  add(input: unknown, owner?: string): (string | null)[] {
    const list = Array.isArray(input) ? input : [input];
    list.forEach((f) => this.validate(f as Fault));
    return list.map((f) => this.addOne(f as Fault, owner));
  }

  private validate(fault: Fault): void {
    if (fault?.kind === 'eniRelease') {
      if (typeof fault.seconds !== 'number' || fault.seconds < 0)
        throw new Error('eniRelease: seconds must be a number >= 0');
      return;
    }
    if (fault?.kind === 'functionPending' || fault?.kind === 'accessEntry' || fault?.kind === 'rolePolicy') {
      if (typeof fault.seconds !== 'number' || fault.seconds < 0)
        throw new Error(`${fault.kind}: seconds must be a number >= 0`);
      return;
    }
    if (fault?.kind !== 'fail')
      throw new Error(`unknown fault kind ${JSON.stringify((fault as { kind?: unknown })?.kind)}`);
    if (typeof fault.service !== 'string' || typeof fault.action !== 'string')
      throw new Error('fail: service and action are required');
    if (fault.when !== undefined && fault.when !== 'before' && fault.when !== 'after')
      throw new Error(`fail: when must be before or after`);
  }

  private addOne(fault: Fault, owner: string | undefined): string | null {
    if (fault.kind === 'eniRelease') {
      this.eniSeconds = fault.seconds;
      this.eniOwner = owner;
      return null;
    }
    if (fault.kind === 'functionPending' || fault.kind === 'accessEntry' || fault.kind === 'rolePolicy') {
      this.delays.push({ ...fault, ...(owner ? { owner } : {}) });
      return null;
    }
    const id = `f${this.nextId++}`;
    this.faults.push({ id, ...(owner ? { owner } : {}), fault: { ...(fault as FailCallFault) }, seen: 0, fired: 0 });
    return id;
  }

  remove(id: string): void {
    this.faults = this.faults.filter((f) => f.id !== id);
  }

  /** Without an owner: everything. With one: that owner's faults, and the ENI delay if it set it. */
  clear(owner?: string): void {
    this.faults = owner ? this.faults.filter((f) => f.owner !== owner) : [];
    this.delays = owner ? this.delays.filter((d) => d.owner !== owner) : [];
    if (!owner || this.eniOwner === owner) {
      this.eniSeconds = this.defaultEniReleaseSeconds;
      this.eniOwner = undefined;
    }
  }

  state(owner?: string): FaultsState {
    return {
      faults: owner ? this.faults.filter((f) => f.owner === owner) : this.faults,
      eniReleaseSeconds: this.eniSeconds,
    };
  }

  /**
   * Counts this call against every matching fault and returns the one that fires for it, if any.
   * `when` is asked separately for 'before' and 'after' so each fault counts a call once.
   */
  take(service: string, action: string, haystack: string, when: 'before' | 'after'): FailCallFault | undefined {
    let firing: FailCallFault | undefined;
    for (const f of this.faults) {
      const { fault } = f;
      if ((fault.when ?? 'before') !== when || fault.service !== service || fault.action !== action) continue;
      if (fault.match && !haystack.includes(fault.match)) continue;
      f.seen++;
      const nth = fault.nth ?? 1;
      const times = fault.times ?? 1;
      if (f.seen >= nth && (times === 0 || f.seen < nth + times) && !firing) {
        f.fired++;
        firing = fault;
      }
    }
    return firing;
  }
}

import { CancellationScope, log } from '@temporalio/workflow';

export interface CompensationOutcome {
  name: string;
  /** left-intact: the resource exists but is not ours (its tags say whose), so it was not touched. */
  status: 'done' | 'failed' | 'left-intact';
  error?: string;
  /** Why it was left intact. */
  note?: string;
}

/** An undo returns why it left its resource alone, if it did. */
export type Undo = () => Promise<string | undefined | void>;

/**
 * A saga's undo stack. Each step registers its undo *before* the next step starts, so whatever
 * happened (a failure, a cancellation, a crash replayed from history) exactly the steps that ran are undone.
 * Undo runs newest first, outside cancellation, and each undo carries its own retry policy (usually unbounded).
 */
export class Compensations {
  private readonly stack: { name: string; undo: Undo }[] = [];

  add(name: string, undo: Undo): void {
    this.stack.push({ name, undo });
  }

  get size(): number {
    return this.stack.length;
  }

  async runAll(): Promise<CompensationOutcome[]> {
    const outcomes: CompensationOutcome[] = [];
    await CancellationScope.nonCancellable(async () => {
      for (let step = this.stack.pop(); step; step = this.stack.pop()) {
        const { name, undo } = step;
        try {
          const leftIntact = await undo();
          outcomes.push(leftIntact ? { name, status: 'left-intact', note: leftIntact } : { name, status: 'done' });
        } catch (err) {
          // Keep going: one stuck undo must not leave the others' resources behind.
          const error = err instanceof Error ? err.message : String(err);
          log.error('compensation failed', { compensation: name, error });
          outcomes.push({ name, status: 'failed', error });
        }
      }
    });
    return outcomes;
  }
}

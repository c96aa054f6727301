/**
 * Many small requests of one consumer invocation as few D1 round trips: the requests waiting
 * at a moment go in one `run`, one run in flight at a time, and what arrives during a run goes
 * into the next. The first request waits for the end of the current task (setTimeout 0), so
 * the groups of a batch that start together share the first run; after that a request waits at
 * most for the run in flight. The orders of a batch each read and write a few rows beside the
 * ledger (links, once-ever claims): coalesced, a hundred of them cost a few round trips, not
 * a few hundred. Per invocation only: workerd does not resolve a promise for a request other
 * than the one that made it.
 *
 * When a shared run fails (D1 rejects the whole batch, for one bad statement or a passing
 * error), each request is run on its own, so one bad request fails alone.
 */
export class Coalescer<I, O> {
  private queue: { input: I; resolve(output: O): void; reject(error: unknown): void }[] = [];
  private running = false;
  private scheduled = false;

  /** @param run answers every input, in order */
  constructor(private readonly run: (inputs: I[]) => Promise<O[]>) {}

  add(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (!this.running && !this.scheduled) {
        this.scheduled = true;
        setTimeout(() => {
          this.scheduled = false;
          void this.flush();
        }, 0);
      }
    });
  }

  private async flush(): Promise<void> {
    if (this.running || this.queue.length === 0) return;
    this.running = true;
    const entries = this.queue;
    this.queue = [];
    try {
      const outputs = await this.run(entries.map((e) => e.input));
      entries.forEach((e, i) => e.resolve(outputs[i]!));
    } catch (error) {
      if (entries.length === 1) entries[0]!.reject(error);
      else {
        await Promise.all(
          entries.map((e) =>
            this.run([e.input]).then(
              ([output]) => e.resolve(output!),
              (alone: unknown) => e.reject(alone),
            ),
          ),
        );
      }
    } finally {
      this.running = false;
      if (this.queue.length > 0) void this.flush();
    }
  }
}

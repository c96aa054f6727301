/**
 * Bulk calls across the entity groups of one queue batch (CONTRACT 4.11): every group decides
 * on its own, through its Durable Object, and asks for its vendor reads and writes through
 * lanes; a lane holds what it is asked until every group of the batch is either waiting on a
 * lane or finished (or BULK_WAIT_MS passed since the lane's first request), then sends it as
 * few vendor calls as the vendor's bulk endpoint allows. Each request still gets its own answer, or its own failure, so each
 * action settles on its own.
 *
 * A lane decides how its inputs become calls (`send`): one input is the single-item endpoint,
 * several the bulk one. Inputs with the same key (one contact, one member) never share a call.
 *
 * Audit: every call is one audit row, written with the settle of the first group it served,
 * and naming every event it served (`served`).
 */
import type { AuditSink } from "../audit/sink";
import type { Connectors } from "../connectors";
import { ActionFailure } from "../connectors/errors";
import type { CallContext } from "../connectors/http-client";

/**
 * How long the first request of a lane waits at most for the batch's other groups (their
 * Durable Object round trips end at different times). Small beside the queue's own batching wait.
 */
export const BULK_WAIT_MS = 50;

export interface Lane<I, O> {
  name: string;
  /** Most inputs one call carries (the vendor's limit). */
  max: number;
  key(input: I): string;
  /**
   * Sends `inputs` (at most `max`, keys distinct): one result per input, in order, its output or
   * its failure. `connectors(indexes)` makes the calls for those inputs (their audit rows name them).
   */
  send(inputs: I[], connectors: (indexes: number[]) => Connectors): Promise<(O | ActionFailure)[]>;
}

/** Who asks: copied into the audit rows of the calls made for it. */
export interface Requester {
  eventIds: string[];
  entityKey: string;
  action: string;
  attempt: number;
  audit: AuditSink;
  /** Every call for it must have finished by then (its lease). */
  deadline: number;
}

/** One group's handle on the batch's lanes. */
export interface BulkCalls {
  call<I, O>(lane: Lane<I, O>, input: I): Promise<O>;
}

interface Pending {
  input: unknown;
  member: Member;
  resolve(output: unknown): void;
  reject(error: unknown): void;
}

export interface BulkOptions {
  /** How many participants (entity groups) may ask; each calls `leave()` once done. */
  participants: number;
  connectorsFor(context: CallContext, audit: AuditSink, deadline: number): Connectors;
  waitMs?: number;
  /** At most this many inputs per call whatever the lane allows (1: one call per input). */
  maxInputs?: number;
  setTimer?: (run: () => void, ms: number) => unknown;
}

export class BulkScope {
  private active: number;
  /** Participants with at least one request waiting in a lane. */
  private parked = 0;
  /** Per lane: what waits to be sent (each lane's wait is timed from its own first request). */
  private readonly pending = new Map<Lane<unknown, unknown>, { items: Pending[] }>();
  private checking = false;
  private readonly setTimer: (run: () => void, ms: number) => unknown;

  constructor(private readonly options: BulkOptions) {
    this.active = options.participants;
    this.setTimer = options.setTimer ?? ((run, ms) => setTimeout(run, ms));
  }

  /** A requester's handle on the lanes. */
  join(requester: Requester): BulkCalls {
    return new Member(this, requester);
  }

  /** One of the participants will ask for nothing more (each calls this once). */
  leave(): void {
    this.active--;
    this.check();
  }

  /** @internal */
  add(member: Member, lane: Lane<unknown, unknown>, input: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (member.waiting++ === 0) this.parked++;
      let queue = this.pending.get(lane);
      if (!queue) {
        // The lane's first request: it waits at most waitMs for the others, then goes.
        const fresh = { items: [] as Pending[] };
        this.pending.set(lane, fresh);
        this.setTimer(() => {
          if (this.pending.get(lane) === fresh) this.flush(lane);
        }, this.options.waitMs ?? BULK_WAIT_MS);
        queue = fresh;
      }
      queue.items.push({ input, member, resolve, reject });
      if (queue.items.length >= this.maxOf(lane)) this.flush(lane);
      else this.check();
    });
  }

  /**
   * Once every group still running waits on a lane, nothing more can join the calls: send them.
   * Checked on the next turn, so a group's requests made together (its two writes) go together.
   */
  private check(): void {
    if (this.checking) return;
    this.checking = true;
    this.setTimer(() => {
      this.checking = false;
      if (this.parked > 0 && this.parked >= this.active) this.flushAll();
    }, 0);
  }

  private maxOf(lane: Lane<unknown, unknown>): number {
    return Math.max(1, Math.min(lane.max, this.options.maxInputs ?? Infinity));
  }

  private flushAll(): void {
    for (const lane of [...this.pending.keys()]) this.flush(lane);
  }

  private flush(lane: Lane<unknown, unknown>): void {
    const queue = this.pending.get(lane)?.items ?? [];
    this.pending.delete(lane);
    for (const chunk of chunks(queue, this.maxOf(lane), (p) => lane.key(p.input))) void this.send(lane, chunk);
  }

  private async send(lane: Lane<unknown, unknown>, chunk: Pending[]): Promise<void> {
    let results: (unknown | ActionFailure)[];
    try {
      results = await lane.send(
        chunk.map((p) => p.input),
        (indexes) => this.connectors(indexes.map((i) => chunk[i]!)),
      );
    } catch (error) {
      results = chunk.map(() => error);
    }
    chunk.forEach((p, i) => {
      if (--p.member.waiting === 0) this.parked--;
      const result = i < results.length ? results[i] : new ActionFailure("permanent", `${lane.name}: no result for this input`);
      if (result instanceof Error) p.reject(result);
      else p.resolve(result);
    });
  }

  /** Connectors whose calls are audited as made for `served`, in the first one's settle. */
  private connectors(served: Pending[]): Connectors {
    const first = served[0]!.member.requester;
    const single = served.length === 1 || served.every((p) => p.member === served[0]!.member);
    const context: CallContext = {
      eventId: first.eventIds[0] ?? null,
      entityKey: single ? first.entityKey : null,
      action: first.action,
      attempt: Math.max(...served.map((p) => p.member.requester.attempt)),
    };
    const eventIds = [...new Set(served.flatMap((p) => p.member.requester.eventIds))];
    const sink: AuditSink = {
      // One row per call: it names every event it served (a single group's row needs no list).
      record: (row) => first.audit.record(single ? row : { ...row, served: eventIds }),
    };
    const deadline = Math.min(...served.map((p) => p.member.requester.deadline));
    return this.options.connectorsFor(context, sink, deadline);
  }
}

class Member implements BulkCalls {
  waiting = 0;

  constructor(
    private readonly scope: BulkScope,
    readonly requester: Requester,
  ) {}

  call<I, O>(lane: Lane<I, O>, input: I): Promise<O> {
    return this.scope.add(this, lane as Lane<unknown, unknown>, input) as Promise<O>;
  }
}

/** Splits `items` into calls of at most `max`, no two with the same key in one call, in order. */
export function chunks<T>(items: T[], max: number, key: (item: T) => string): T[][] {
  const out: { items: T[]; keys: Set<string> }[] = [];
  for (const item of items) {
    const k = key(item);
    let target = out.find((c) => c.items.length < max && !c.keys.has(k));
    if (!target) {
      target = { items: [], keys: new Set() };
      out.push(target);
    }
    target.items.push(item);
    target.keys.add(k);
  }
  return out.map((c) => c.items);
}

/**
 * Replay of one event by a person (POST /api/events/:id/replay): which of its actions a replay
 * runs again, and the replay itself through `replayEvents` (dead-letters.ts), which puts one
 * replay delivery on the queue; the consumer resets the actions and runs them.
 *
 * `replayEvents` queues any event that exists (it reports only unknown ids as skipped), and a
 * replay with nothing failed or dead settles at once without doing anything. So this module
 * looks at the ledger first and answers `nothing_to_replay` instead of queueing a delivery that
 * can only do nothing; the API answers that with 409 and says what each action is doing.
 * The look is not a lock: an action that finishes between it and the replay's claim is what
 * the consumer sees (its reset takes only failed and dead rows, done ones too with `all`).
 */
import { eq } from "drizzle-orm";
import { actions, events } from "../db/schema";
import { replayEvents } from "./dead-letters";
import type { ActionState, Db, EventStatus } from "./ledger";
import type { PayloadStore } from "./payloads";

/** An action the replay runs again, with the state it is in now. */
export interface ReplayedAction {
  action: string;
  state: ActionState;
}

/** An action the replay leaves alone, and why. */
export interface SkippedAction {
  action: string;
  state: ActionState;
  reason: string;
}

export interface ReplayPlan {
  replayed: ReplayedAction[];
  skipped: SkippedAction[];
  /** The event died before its actions were recorded (the queue gave up on it): the replay routes it to its flows afresh. */
  rerouted: boolean;
}

// What the consumer's replay reset takes (ledger.ts `replayReset`): failed and dead rows,
// done ones too with `all`. Pending and running rows are not touched by it.
const SKIP_REASONS: Record<ActionState, string | null> = {
  failed: null,
  dead: null,
  done: "done; ?all=true runs it again",
  pending: "pending: it runs when due, without a replay",
  running: "running: the attempt in progress settles it",
};

/**
 * Which actions a replay runs, from the event's status and ledger rows.
 *
 * @example
 * replayPlan("dead", [{ action: "crm.upsert", state: "done" }, { action: "email.upsert", state: "dead" }], false);
 * // { replayed: [{ action: "email.upsert", state: "dead" }], skipped: [{ action: "crm.upsert", state: "done", reason: "done; ?all=true runs it again" }], rerouted: false }
 */
export function replayPlan(status: EventStatus, rows: ReplayedAction[], all: boolean): ReplayPlan {
  const plan: ReplayPlan = { replayed: [], skipped: [], rerouted: rows.length === 0 && status === "dead" };
  for (const row of rows) {
    const reason = all && row.state === "done" ? null : SKIP_REASONS[row.state];
    if (reason === null) plan.replayed.push({ action: row.action, state: row.state });
    else plan.skipped.push({ action: row.action, state: row.state, reason });
  }
  return plan;
}

export interface EventReplayDeps {
  db: Db;
  /** The events queue. */
  queue: Queue;
  /** Where a payload too large for a queue message goes (replayEvents asks). */
  store: PayloadStore;
  now: () => number;
}

export type EventReplayResult =
  | ({ ok: true; eventId: string; all: boolean } & ReplayPlan)
  | { ok: false; reason: "not_found" }
  /** Nothing failed or dead (nothing finished with `all`): no delivery was queued. */
  | { ok: false; reason: "nothing_to_replay"; status: EventStatus; skipped: SkippedAction[] }
  /** The queue refused the delivery; nothing changed, so the same request can be repeated. */
  | { ok: false; reason: "queue_refused"; error: unknown };

/**
 * Replays one event's failed and dead actions (every finished one with `all`), and closes its
 * open dead letters (replayEvents does).
 *
 * @example
 * const result = await replayEvent({ db, queue: env.EVENTS, store, now: Date.now }, "evt_0f1e2d3c4b5a69788796a5b4c3d2e1f0", { all: false });
 * if (result.ok) console.log(result.replayed.map((a) => a.action));
 */
export async function replayEvent(deps: EventReplayDeps, eventId: string, options: { all?: boolean } = {}): Promise<EventReplayResult> {
  const all = options.all === true;
  const event = await deps.db.select({ status: events.status }).from(events).where(eq(events.id, eventId)).get();
  if (!event) return { ok: false, reason: "not_found" };
  const rows = await deps.db.select({ action: actions.action, state: actions.state }).from(actions).where(eq(actions.eventId, eventId)).orderBy(actions.createdAt, actions.action);
  const plan = replayPlan(event.status, rows, all);
  if (plan.replayed.length === 0 && !plan.rerouted) return { ok: false, reason: "nothing_to_replay", status: event.status, skipped: plan.skipped };

  let result;
  try {
    result = await replayEvents(deps.db, deps.queue, deps.store, [eventId], deps.now(), { all });
  } catch (error) {
    return { ok: false, reason: "queue_refused", error };
  }
  // Pruned by retention between the look and the replay: there is no event to replay any more.
  if (!result.eventIds.includes(eventId)) return { ok: false, reason: "not_found" };
  return { ok: true, eventId, all, ...plan };
}

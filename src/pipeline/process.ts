/**
 * One queue batch, start to finish: claim every event (dedupe, ledger rows, due actions under a
 * lease) in one D1 round trip, run the due actions (one entity's messages in order, different
 * entities concurrently), and settle each message as it finishes: outcomes are coalesced into
 * few D1 batches, waiting for each other only briefly (settle.ts), and each message is decided
 * the moment its own settle lands, so a slow entity group holds no other message's ack.
 *
 * Free of the Queue API: decisions go to the `decide` callback, and any throw while processing
 * one message decides that message alone.
 */
import { AuditBuffer, type AuditSink } from "../audit/sink";
import type { Redactor } from "../audit/redact";
import type { Config } from "../config";
import type { Connectors } from "../connectors";
import { ActionFailure } from "../connectors/errors";
import type { CallContext } from "../connectors/http-client";
import { lookupStatement, readDirectory, type Coordinators, type Directory } from "../entities/directory";
import { route, type RoutedAction } from "../flows/registry";
import { isEntityAction, type Flow } from "../flows/types";
import { log } from "../observability/log";
import { attempt, failed, unrouted, type AttemptResult } from "./attempts";
import { BulkScope } from "./bulk";
import { D1Effects } from "./effects";
import { runEntityActions } from "./groups";
import { claimEventsWith, eventStatusOf, LEASE_MARGIN_MS, type Claim, type Db, type EventStatus, type LedgerRow, type Settlement } from "./ledger";
import type { EventMessage } from "./message";
import { resolvePayload, type PayloadStore } from "./payloads";
import { Settler } from "./settle";

export interface PipelineDeps {
  db: Db;
  store: PayloadStore;
  config: Config;
  flows: readonly Flow[];
  /** The entities' Durable Objects (the contact sync plans and settles through them). */
  coordinators: Coordinators;
  redactor: Redactor;
  /** Connectors for one action attempt, recording every call into `audit`, sending none after `deadline`. */
  connectorsFor(context: CallContext, audit: AuditSink, deadline: number): Connectors;
  now(): number;
  random(): number;
  /** How long a finished message's outcome waits for others to share its D1 write (settle.ts). */
  settleWindowMs: number;
}

export type Decision =
  | { kind: "ack"; status: EventStatus | "duplicate" }
  | { kind: "retry"; delaySeconds: number }
  /** The pipeline itself failed for this message (D1 unavailable, a bug, …): nothing was lost; retry on the schedule. */
  | { kind: "error"; error: unknown };

export type Decide = (index: number, decision: Decision) => Promise<void>;

interface Outcome {
  decision: Decision;
  settlement: Settlement | null;
}

interface Work {
  index: number;
  message: EventMessage;
  routed: RoutedAction[];
  token: string;
}

/** Processes `batch`, calling `decide` once for every message, as soon as that message's fate is known. */
export async function processBatch(deps: PipelineDeps, batch: EventMessage[], decide: Decide): Promise<void> {
  const pending: Promise<void>[] = [];
  const fail = (index: number, error: unknown) => pending.push(decide(index, { kind: "error", error }));

  // The same delivery twice in one batch would claim its actions twice: the first copy does
  // the work, the others are acknowledged at once.
  const seen = new Set<string>();
  const unique: { index: number; message: EventMessage }[] = [];
  batch.forEach((message, index) => {
    const key = `${message.event.id}\u0000${message.deliveryId}`;
    if (seen.has(key)) pending.push(decide(index, { kind: "ack", status: "duplicate" }));
    else {
      seen.add(key);
      unique.push({ index, message });
    }
  });

  // Large payloads come from the store; routing runs flow code. Either failing is that message's alone.
  const work: Work[] = [];
  await Promise.all(
    unique.map(async ({ index, message }) => {
      try {
        const event = await resolvePayload(deps.store, message.event);
        const resolved = { ...message, event };
        work.push({ index, message: resolved, routed: route(event, deps.config, deps.flows), token: crypto.randomUUID() });
      } catch (error) {
        fail(index, error);
      }
    }),
  );
  work.sort((a, b) => a.index - b.index);

  const { claims, directory } = await claimAll(deps, work);
  const settler = new Settler(deps.db, deps.now, deps.redactor, work.length, deps.settleWindowMs);
  // One group per entity: an email-platform event joins its contact's group when the index knows the address.
  const byEntity = new Map<string, number[]>();
  work.forEach((w, i) => {
    const key = groupKeyOf(w.message, directory);
    byEntity.set(key, [...(byEntity.get(key) ?? []), i]);
  });
  // Each group decides alone; their vendor calls meet in bulk lanes (bulk.ts) until every group waits or is done.
  const scope = new BulkScope({ participants: byEntity.size, connectorsFor: deps.connectorsFor, maxInputs: deps.config.bulkCalls ? undefined : 1 });
  // Likewise their once-ever claims and links share D1 round trips.
  const effects = new D1Effects(deps.db, deps.now);
  await Promise.all(
    [...byEntity].map(async ([key, indexes]) => {
      const members = indexes.flatMap((i) => {
        const claim = claims[i]!;
        return claim instanceof Error ? [] : [{ index: i, message: work[i]!.message, routed: work[i]!.routed, claim }];
      });
      let grouped = new Map<number, Map<string, AttemptResult>>();
      try {
        grouped = await runEntityActions(deps, key, directory, members, scope);
      } catch (error) {
        log("consumer_error", { entity: key, error: deps.redactor.redact(String(error)) }, "error");
      } finally {
        scope.leave();
      }
      for (const i of indexes) {
        const w = work[i]!;
        let outcome: Outcome;
        try {
          const claim = claims[i]!;
          if (claim instanceof Error) throw claim;
          outcome = await runClaim(deps, w, claim, grouped.get(i) ?? new Map(), effects);
        } catch (error) {
          settler.skip();
          fail(w.index, error);
          continue;
        }
        const { decision, settlement } = outcome;
        if (settlement === null) {
          settler.skip();
          pending.push(decide(w.index, decision));
          continue;
        }
        pending.push(
          settler.submit(settlement).then(
            () => decide(w.index, decision),
            (error: unknown) => decide(w.index, { kind: "error", error }),
          ),
        );
      }
    }),
  );
  // Every decision is waited for, even when one of them fails.
  const failed = (await Promise.allSettled(pending)).find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

function groupKeyOf(message: EventMessage, directory: Directory): string {
  const key = message.event.entityKey ?? message.event.id;
  return key.startsWith("email:") ? (directory.byEmail.get(key.slice("email:".length)) ?? key) : key;
}

/**
 * Claims in one round trip, reading the email index for the batch's entities in the same one;
 * when D1 rejects the batch (one bad message can), one by one.
 */
async function claimAll(deps: PipelineDeps, work: Work[]): Promise<{ claims: (Claim | Error)[]; directory: Directory }> {
  const now = deps.now();
  const requests = work.map((w) => ({ message: w.message, routed: toLedger(w.routed), token: w.token }));
  const keys = work.map((w) => w.message.event.entityKey ?? "");
  const emails = keys.filter((k) => k.startsWith("email:")).map((k) => k.slice("email:".length));
  const contacts = keys.filter((k) => k.startsWith("contact:"));
  const lookup = emails.length + contacts.length > 0 ? [lookupStatement(deps.db.$client, emails, contacts)] : [];
  try {
    const { claims, extra } = await claimEventsWith(deps.db, requests, now, lookup);
    return { claims, directory: readDirectory(extra[0]) };
  } catch {
    const claims = await Promise.all(
      requests.map((request) =>
        claimEventsWith(deps.db, [request], now, []).then(
          (c) => c.claims[0]!,
          (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
        ),
      ),
    );
    // Without the index every address is its own group; the contact sync looks it up in the CRM.
    const directory = lookup.length > 0 ? await deps.db.$client.batch(lookup).then((r) => readDirectory(r[0]), () => readDirectory(undefined)) : readDirectory(undefined);
    return { claims, directory };
  }
}

function toLedger(routed: RoutedAction[]) {
  return routed.map((r) => ({ flow: r.flow, action: r.action.name }));
}

async function runClaim(deps: PipelineDeps, { message, routed, token }: Work, claim: Claim, grouped: Map<string, AttemptResult>, effects: D1Effects): Promise<Outcome> {
  const event = message.event;
  const where = { eventId: event.id, source: event.source, entity: event.entityKey };
  if (claim.kind === "duplicate") {
    log("deduped", { ...where, outcome: "duplicate" });
    return { decision: { kind: "ack", status: "duplicate" }, settlement: emptySettlement(event.id, { duplicate: true }) };
  }
  if (routed.length === 0 && claim.actions.length === 0) {
    log("event_ignored", { ...where, type: event.type });
    // A replay's claim marked the event processing: its status is written back (ignored).
    const settlement = message.replay ? emptySettlement(event.id, { status: { invalid: false, lastError: null } }) : null;
    return { decision: { kind: "ack", status: "ignored" }, settlement };
  }
  const now = deps.now();
  if (claim.due.length === 0) {
    // Nothing to run (a redelivery, a replay of finished actions, or rows another attempt holds
    // under a live lease): only the status may be stale.
    const stale = eventStatusOf(claim.actions.map((r) => r.state), claim.event.status === "invalid") !== claim.event.status;
    // Without a claim, the write keeps the event's own "invalid" and error text (ledger.ts).
    const settlement = stale ? emptySettlement(event.id, { status: { invalid: false, lastError: null } }) : null;
    return { decision: decideFrom(claim.actions, now), settlement };
  }

  const audit = new AuditBuffer();
  const actionsByName = new Map(routed.map((r) => [r.action.name, r.action]));
  const deadline = claim.leaseUntil - LEASE_MARGIN_MS;
  const results = await Promise.all(
    claim.due.map((row) => {
      const flowAction = actionsByName.get(row.action);
      if (!flowAction) return unrouted(message, row);
      if (!isEntityAction(flowAction)) return attempt(deps, message, flowAction, row.attempts, audit, deadline, effects);
      // Run with its entity group (groups.ts); missing only if the group failed before deciding.
      return grouped.get(row.action) ?? failed(deps, message, row.action, row.attempts, new ActionFailure("transient", "the entity group failed before deciding"), deps.now());
    }),
  );
  const final = claim.actions.map((row) => {
    const result = results.find((r) => r.update.action === row.action);
    return result ? { ...row, ...result.update } : row;
  });
  for (const r of results) {
    if (r.deadLetter) log("dead_lettered", { ...where, action: r.update.action, reason: r.deadLetter.reason }, "warn");
  }
  const decision = decideFrom(final, deps.now());
  if (decision.kind === "retry") log("retry_scheduled", { ...where, delaySeconds: decision.delaySeconds });
  return {
    decision,
    settlement: {
      eventId: event.id,
      token,
      status: { invalid: results.some((r) => r.invalid), lastError: results.map((r) => r.update.lastError).find((e) => e !== null) ?? null },
      updates: results.map((r) => r.update),
      audit: [...results.flatMap((r) => r.audit ?? []), ...audit.drain()],
      deadLetters: results.flatMap((r) => (r.deadLetter ? [r.deadLetter] : [])),
      entity: results.find((r) => r.entity)?.entity ?? null,
    },
  };
}

function emptySettlement(eventId: string, fields: Partial<Settlement>): Settlement {
  return { eventId, token: null, status: null, updates: [], audit: [], deadLetters: [], ...fields };
}

/** Retry when any action still has to run, at the earliest time one of them is due (or its lease ends). */
function decideFrom(rows: Pick<LedgerRow, "state" | "nextAttemptAt">[], now: number): Decision {
  const waiting = rows.filter((r) => r.state === "failed" || r.state === "pending" || r.state === "running");
  if (waiting.length === 0) return { kind: "ack", status: eventStatusOf(rows.map((r) => r.state), false) };
  const next = Math.min(...waiting.map((r) => r.nextAttemptAt ?? now));
  return { kind: "retry", delaySeconds: Math.max(0, Math.ceil((next - now) / 1000)) };
}

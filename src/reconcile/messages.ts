/**
 * The nightly check's queue messages (the SYNC queue): one step of one run each, so a run over a
 * million contacts is thousands of short invocations, never one long one, and holds at most a
 * page in memory. A step that is done is recorded with its work (steps.ts), so a message
 * delivered twice repeats nothing.
 */
import { z } from "zod";

/**
 * How many times this step failed before (a vendor error, D1 unavailable), carried by the copy a
 * failure sends: the queue's own attempt count also counts capacity waits, which are no failure.
 */
const failures = z.number().int().min(0).optional();

export const SyncMessage = z.discriminatedUnion("kind", [
  /** One page of one side: the HubSpot `after` cursor, or the Mailchimp offset ("" is the first page). */
  z.object({ kind: z.literal("scan"), runId: z.string(), side: z.enum(["crm", "email"]), page: z.string(), failures }),
  /** One chunk of the comparison: CRM records after a key, then list members no CRM record matched. */
  z.object({ kind: z.literal("compare"), runId: z.string(), side: z.enum(["crm", "email"]), after: z.string(), failures }),
  /** The counts, the status, the run's end. */
  z.object({ kind: z.literal("finish"), runId: z.string(), failures }),
  /** Deletes the run's staged records, a chunk at a time. */
  z.object({ kind: z.literal("cleanup"), runId: z.string(), failures }),
  /** Delivers an alert to ALERT_WEBHOOK_URL (alerts.ts), retried apart from any run. */
  z.object({ kind: z.literal("alert"), id: z.string() }),
]);
export type SyncMessage = z.infer<typeof SyncMessage>;

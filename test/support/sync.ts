/**
 * Shared by the contact-sync tests (workerd side): unique addresses, the fake CRM's view of a
 * contact, delivery until every message is acked, and shuffles that are the same on every run.
 */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { EventMessage } from "../../src/pipeline/message";
import { nextRandom } from "../../src/sandbox/fake-service";
import { deliver } from "./messages";
import { HUBSPOT_TOKEN, sandboxFetch } from "./sandbox";

export const unique = (name: string) => `${name}.${crypto.randomUUID().slice(0, 8)}@example.com`;

/** A contact's synced properties as the fake CRM holds them. */
export async function crmContact(id: string): Promise<Record<string, string | null>> {
  const res = await sandboxFetch(`/hubspot/crm/v3/objects/contacts/${id}?properties=email,firstname,lastname,syncwire_subscription,hs_lead_status`, {
    headers: { authorization: `Bearer ${HUBSPOT_TOKEN}` },
  });
  return ((await res.json()) as { properties: Record<string, string | null> }).properties;
}

/** Delivers until every message is acked: retried ones come back at once (their due time forced). */
export async function deliverUntilSettled(messages: EventMessage[], rounds = 20): Promise<void> {
  let pending = messages;
  for (let round = 1; pending.length > 0 && round <= rounds; round++) {
    const result = await deliver(pending, { attempts: round });
    const retried = new Set(result.retryMessages.map((r) => r.msgId));
    pending = pending.filter((_, i) => retried.has(result.ids[i]!));
    await env.DB.prepare("UPDATE actions SET next_attempt_at = 0 WHERE state IN ('failed', 'pending')").run();
  }
  expect(pending).toEqual([]);
}

/** Fisher-Yates with the sandbox's seeded PRNG (mulberry32): the same order for the same seed. */
export function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let state = seed;
  for (let i = out.length - 1; i > 0; i--) {
    const next = nextRandom(state);
    state = next.seed;
    const j = Math.floor(next.value * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

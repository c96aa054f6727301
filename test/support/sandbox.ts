/** Drives the built-in fakes through their own HTTP APIs (vendor paths and /_sandbox/ controls). */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { budgetName } from "../../src/budgets/apis";
import { SANDBOX_ORIGIN } from "../../src/sandbox/credentials";
import { subscriberHash } from "../../src/connectors/mailchimp";
import type { LoggedRequest } from "./requests";

export const HUBSPOT_TOKEN = "pat-test-hubspot-token";
export const MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us21";
export const LIST_ID = "list0001";

function host() {
  return env.SANDBOX_HOST.get(env.SANDBOX_HOST.idFromName("sandbox"));
}

export async function sandboxFetch(path: string, init: RequestInit = {}): Promise<Response> {
  return host().fetch(new Request(`${SANDBOX_ORIGIN}${path}`, init));
}

/**
 * Empties the fakes and turns their webhooks and rate limits off: these tests feed the consumer
 * by hand (a fake's webhook would add events of its own) and make many calls quickly while
 * testing other things. Echo tests turn webhooks on (`{ webhooks: true }`), limit tests the
 * vendors' documented limits (`{ limits: true }`, or `setLimits` to tighten them).
 */
export async function resetSandbox(options: { webhooks?: boolean; limits?: boolean } = {}): Promise<void> {
  await resetBudgets();
  for (const vendor of ["hubspot", "mailchimp"] as const) {
    const res = await sandboxFetch(`/${vendor}/_sandbox/reset`, { method: "POST" });
    if (!res.ok) throw new Error(`reset ${vendor}: ${res.status}`);
    // A reset restores the sandbox's defaults: webhooks on, limits on.
    if (!options.limits) await setLimits(vendor, { enabled: false });
    if (options.webhooks) continue;
    const quiet = await sandboxFetch(`/${vendor}/_sandbox/webhooks`, { method: "DELETE" });
    if (!quiet.ok) throw new Error(`webhooks off ${vendor}: ${quiet.status}`);
  }
}

/** Empties the vendor budgets (src/budgets): a test's 429 pause or spent window must not reach the next test. */
export async function resetBudgets(): Promise<void> {
  for (const name of [budgetName("hubspot", HUBSPOT_TOKEN), budgetName("mailchimp", MAILCHIMP_KEY)]) {
    await runInDurableObject(env.BUDGET.get(env.BUDGET.idFromName(name)), (instance, state) => {
      state.storage.sql.exec("DELETE FROM budget");
      (instance as unknown as { state: unknown }).state = null;
    });
  }
}

/**
 * A fake's rate limits (`POST /_sandbox/limits`): HubSpot `{enabled, max, intervalMs, daily,
 * dailyCount}`, Mailchimp `{enabled, maxConnections}`, both `resetCounters: true`; answers the
 * settings and counters.
 */
export async function setLimits(vendor: "hubspot" | "mailchimp", limits: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await sandboxFetch(`/${vendor}/_sandbox/limits`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(limits),
  });
  if (!res.ok) throw new Error(`limits ${vendor}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

/** A fake's rate-limit settings and counters (`GET /_sandbox/limits`): calls, 429s, peak connections. */
export async function limitsOf(vendor: "hubspot" | "mailchimp"): Promise<Record<string, unknown>> {
  return (await (await sandboxFetch(`/${vendor}/_sandbox/limits`)).json()) as Record<string, unknown>;
}

/** Waits until neither fake has received a call for `quietMs`; fails after `timeoutMs` (an echo loop never goes quiet). */
export async function untilQuiet(quietMs = 1_500, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let since = Date.now();
  for (;;) {
    const count = (await vendorRequests("hubspot")).length + (await vendorRequests("mailchimp")).length;
    if (count !== last) {
      last = count;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
    if (Date.now() > deadline) throw new Error(`the fakes were still being called after ${timeoutMs} ms: an echo loop?`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function createCrmContact(properties: Record<string, string>): Promise<string> {
  const res = await sandboxFetch("/hubspot/crm/v3/objects/contacts", {
    method: "POST",
    headers: { authorization: `Bearer ${HUBSPOT_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ properties }),
  });
  if (res.status !== 201) throw new Error(`create contact: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

export async function mailchimpMember(email: string): Promise<Record<string, unknown> | null> {
  const res = await sandboxFetch(`/mailchimp/3.0/lists/${LIST_ID}/members/${subscriberHash(email)}`, {
    headers: { authorization: `Basic ${btoa(`test:${MAILCHIMP_KEY}`)}` },
  });
  if (res.status === 404) return null;
  return (await res.json()) as Record<string, unknown>;
}

export { itemWrites, type LoggedRequest } from "./requests";

export async function vendorRequests(vendor: "hubspot" | "mailchimp"): Promise<LoggedRequest[]> {
  const res = await sandboxFetch(`/${vendor}/_sandbox/requests`);
  return ((await res.json()) as { requests: LoggedRequest[] }).requests;
}

export async function setFaults(vendor: "hubspot" | "mailchimp", faults: Record<string, unknown>): Promise<void> {
  const res = await sandboxFetch(`/${vendor}/_sandbox/faults`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(faults),
  });
  if (!res.ok) throw new Error(`faults ${vendor}: ${res.status} ${await res.text()}`);
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T | undefined | false>, timeoutMs = 10_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

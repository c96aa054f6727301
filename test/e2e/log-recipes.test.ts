/**
 * The README's `wrangler tail --format json | jq` recipes (issue 10 item 6), run as written with
 * the real jq over what `wrangler tail --format json` would print for a real run of the bundled
 * worker: a Stripe call that fails once, Mailchimp refusing a contact for good (dead letters), and
 * one event's story. Each recipe's output is checked against the same question asked in JS.
 */
import { execFile } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SANDBOX_CREDENTIALS as SANDBOX } from "../../src/sandbox/credentials";
import { until } from "../support/e2e";
import { startLocalWorker, type LocalWorker } from "../support/local-worker";

const run = promisify(execFile);
const README = resolve(import.meta.dirname, "../../README.md");
const HUBSPOT = { authorization: `Bearer ${SANDBOX.HUBSPOT_ACCESS_TOKEN}` };

type Line = { text: string; json: Record<string, any> };
let worker: LocalWorker;
let dir: string;
const logs: string[] = [];

beforeAll(async () => {
  // The recipes are jq programs; without jq this test cannot say whether they work.
  await run("jq", ["--version"]).catch(() => {
    throw new Error("jq is not installed; the README's log recipes need it: apt-get install -y jq");
  });
  dir = await mkdtemp(join(tmpdir(), "syncwire-tail-"));
  worker = await startLocalWorker({ vars: { SANDBOX: "true", ADMIN_TOKEN: "x" }, logs });
});

afterAll(async () => {
  await worker?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The worker's JSON log lines, exactly as logged (stdout and stderr chunks joined, then split). */
function captured(): Line[] {
  return logs.join("").split("\n").flatMap((text) => {
    try {
      const json = JSON.parse(text);
      return json && typeof json === "object" && typeof json.step === "string" ? [{ text, json }] : [];
    } catch {
      return [];
    }
  });
}

async function call(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Response> {
  return fetch(`${worker.url}${path}`, { method, headers: { ...(body ? { "content-type": "application/json" } : {}), ...headers }, body });
}
const fault = (vendor: string, failNext: { count: number; status: number }) => call("POST", `/sandbox/${vendor}/_sandbox/faults`, {}, JSON.stringify({ failNext }));

/** A Shopify orders/create, signed as Shopify signs it (base64 HMAC-SHA256 of the raw body). */
function postOrder(): Promise<Response> {
  const id = 820982911946154500 + Math.floor(Math.random() * 1000);
  const email = `tail.buyer.${id}@example.com`;
  const raw =
    `{"id":${id},"admin_graphql_api_id":"gid://shopify/Order/${id}","name":"#3001","order_number":3001,"email":"${email}","contact_email":"${email}",` +
    `"currency":"USD","presentment_currency":"USD","financial_status":"paid","fulfillment_status":null,"created_at":"2026-05-01T10:00:00-04:00",` +
    `"subtotal_price":"45.00","total_discounts":"0.00","total_line_items_price":"45.00","total_tax":"0.00","taxes_included":false,"total_price":"45.00",` +
    `"line_items":[{"id":866550311766439101,"product_id":632910392,"variant_id":808950810,"title":"Canvas Backpack","name":"Canvas Backpack","sku":"BP-1","quantity":1,"price":"45.00",` +
    `"total_discount":"0.00","discount_allocations":[],"tax_lines":[]}],"shipping_lines":[],` +
    `"customer":{"id":115310627314723901,"email":"${email}","first_name":"Grace","last_name":"Hopper","state":"enabled","verified_email":true,"currency":"USD"}}`;
  return call("POST", "/webhooks/shopify", {
    "x-shopify-hmac-sha256": createHmac("sha256", SANDBOX.SHOPIFY_WEBHOOK_SECRET).update(raw, "utf8").digest("base64"),
    "x-shopify-topic": "orders/create",
    "x-shopify-webhook-id": crypto.randomUUID(),
    "x-shopify-shop-domain": "syncwire-tail.myshopify.com",
    "x-shopify-triggered-at": new Date().toISOString(),
    "content-type": "application/json",
  }, raw);
}

/**
 * The lines as `wrangler tail --format json` prints them: one TraceItem per invocation (Cloudflare's
 * Tail Workers docs, developers.cloudflare.com/workers/observability/logs/tail-workers/: `scriptName`,
 * `outcome`, `eventTimestamp`, `event`, `logs: [{message: [<console args>], level, timestamp}]`,
 * `exceptions`, `diagnosticsChannelEvents`), each printed by wrangler 4's `jsonPrintLogs` as
 * `JSON.stringify(item, null, 4)` (wrangler-dist/cli.js, src/tail/printing.ts): so a capture is a
 * stream of multi-line JSON values, not JSON Lines, and the recipes must not assume one per line.
 * Invocations are grouped as they would be: each webhook request alone, queue batches of up to
 * three lines, and requests that log nothing (a health check) in between.
 */
function tailCapture(lines: Line[]): string {
  const item = (event: unknown, entries: Line[]) => ({
    outcome: "ok", scriptName: "syncwire", diagnosticsChannelEvents: [], exceptions: [],
    logs: entries.map(({ text, json }) => ({ message: [text], level: json.level === "info" ? "log" : json.level, timestamp: Date.parse(json.time) })),
    eventTimestamp: entries[0] ? Date.parse(entries[0].json.time) : Date.now(), event,
  });
  const request = (method: string, path: string, status: number) => ({ request: { url: `${worker.url}${path}`, method, headers: {} }, response: { status } });
  const items: unknown[] = [];
  let batch: Line[] = [];
  const flush = () => {
    if (batch.length > 0) items.push(item({ batchSize: batch.length, queue: "syncwire-events" }, batch), item(request("GET", "/health", 200), []));
    batch = [];
  };
  for (const line of lines) {
    if (line.json.step === "ingested") {
      flush();
      items.push(item(request("POST", `/webhooks/${line.json.source}`, 202), [line]));
    } else if ((batch = [...batch, line]).length === 3) flush();
  }
  flush();
  return items.map((i) => `${JSON.stringify(i, null, 4)}\n`).join("");
}

/** The recipes of README's "Recipes (on the live stream" block, keyed by the comment above each. */
async function recipes(): Promise<Map<string, string>> {
  const readme = await readFile(README, "utf8");
  const block = /Recipes \(on the live stream[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!block) throw new Error("README.md has no recipes block");
  const out = new Map<string, string>();
  let comment = "";
  for (const raw of block.split("\n").map((l) => l.trim()).filter(Boolean)) {
    if (raw.startsWith("#")) comment = raw.slice(1).trim();
    else out.set(comment, raw.replace(/^npx wrangler tail --format json \|/, "cat tail.jsonl |"));
  }
  return out;
}

async function jq(command: string): Promise<Record<string, unknown>[]> {
  const { stdout } = await run("bash", ["-c", command], { cwd: dir });
  return stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

describe("the README's wrangler tail | jq recipes", () => {
  it("answer, on a capture of a real run, what they say: one connector's failures, one event's story, the last hour's dead letters", async () => {
    // (a) Stripe answers the order's invoice call 503 once: a failed attempt, then a retry that succeeds.
    expect((await fault("stripe", { count: 1, status: 503 })).status).toBe(200);
    const order = await postOrder();
    expect(order.status).toBe(202);
    const [orderEvent] = ((await order.json()) as { eventIds: string[] }).eventIds;
    await until(async () => (await worker.query<{ status: string }>("SELECT status FROM events WHERE id = ?", orderEvent))[0]?.status === "done", 30_000, "the order event done");

    // (b) Mailchimp refuses the next write for good (400): the new contact's events dead-letter.
    expect((await fault("mailchimp", { count: 1, status: 400 })).status).toBe(200);
    const created = await call("POST", "/sandbox/hubspot/crm/v3/objects/contacts", { ...HUBSPOT, "x-sandbox-actor": "user" }, JSON.stringify({ properties: { email: `ada-${Date.now()}@example.com`, firstname: "Ada" } }));
    expect(created.status).toBe(201);
    await until(
      async () => (await worker.query("SELECT 1 FROM dead_letters")).length > 0 && (await worker.query("SELECT 1 FROM events WHERE status IN ('processing', 'retrying')")).length === 0,
      30_000,
      "dead letters",
    );
    const dead = (await worker.query<{ event_id: string }>("SELECT DISTINCT event_id FROM dead_letters")).map((r) => r.event_id);
    // The database can be ahead of the pipe that carries workerd's stdout: wait for the lines too.
    await until(async () => dead.every((id) => captured().some((l) => l.json.step === "dead_lettered" && l.json.eventId === id)), 10_000, "the dead_lettered lines");

    // A dead letter from two hours ago, which "the last hour" must leave out.
    const lines = captured();
    const template = lines.find((l) => l.json.step === "dead_lettered")!.json;
    const old: Record<string, any> = { ...template, eventId: "evt_two_hours_ago", time: new Date(Date.now() - 2 * 3_600_000).toISOString() };
    const all: Line[] = [...lines, { text: JSON.stringify(old), json: old }];
    await writeFile(join(dir, "tail.jsonl"), tailCapture(all));

    const book = await recipes();
    const recipe = (prefix: string) => {
      const found = [...book].find(([comment]) => comment.startsWith(prefix));
      if (!found) throw new Error(`README has no recipe "${prefix}…"`);
      return found[1];
    };
    expect(book.size).toBe(3);

    // 1: exactly Stripe's failed and dead attempts.
    const failures = all.map((l) => l.json).filter((j) => j.step === "action_attempt" && j.connector === "stripe" && ["failed", "dead"].includes(j.outcome));
    expect(failures.length).toBeGreaterThan(0);
    expect(await jq(recipe("every failure of one connector"))).toEqual(failures);

    // 2: every line of an event, its ingest included, for the retried order and for a dead-lettered
    // contact event (HubSpot batches its webhooks, so that ingest line names the event in `eventIds`).
    const story = recipe("one event's story");
    const ingests: string[] = [];
    for (const id of [orderEvent!, dead[0]!]) {
      const own = all.map((l) => l.json).filter((j) => j.eventId === id || (Array.isArray(j.eventIds) && j.eventIds.includes(id)));
      ingests.push(own.find((j) => j.step === "ingested")?.eventIds ? "batch" : "single");
      const steps = new Set(own.map((j) => j.step));
      expect([...steps]).toEqual(expect.arrayContaining(["ingested", "action_attempt", ...(dead.includes(id) ? ["dead_lettered"] : [])]));
      const pick = ({ time, step, action, outcome, error, note }: Record<string, unknown>) => ({ time, step, action: action ?? null, outcome: outcome ?? null, error: error ?? null, note: note ?? null });
      expect(await jq(story.replaceAll("evt_…", id)), `the story of ${id}`).toEqual(own.map(pick));
    }
    // Both shapes of the ingest line were asked about: the order's alone, the contact's in a batch.
    expect(ingests).toEqual(["single", "batch"]);

    // 3: exactly the dead letters of the last hour.
    const since = Date.now() - 3_600_000;
    const letters = all.map((l) => l.json).filter((j) => j.step === "dead_lettered" && Date.parse(j.time) >= since);
    expect(letters.length).toBeGreaterThan(0);
    expect(await jq(recipe("dead letters of the last hour"))).toEqual(letters);
  });
});

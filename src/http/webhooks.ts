/**
 * POST /webhooks/:source — parse, enqueue, answer. The answer waits for the queue: a 202
 * means the events are durably on it; a refusal is a 503 so the provider retries.
 */
import { Hono } from "hono";
import { configForIngest, type Config } from "../config";
import { redactorFor } from "../connectors";
import { errorResponse, type Failure } from "../errors";
import { SOURCES, type InboundEvent, type Source } from "../ingest/event";
import { verifyMailchimpSecret } from "../ingest/mailchimp";
import { receiveHubSpot, receiveMailchimp, receiveShopify, type Received } from "../ingest/receive";
import { log } from "../observability/log";
import { enqueue, newDelivery } from "../pipeline/message";
import { r2PayloadStore } from "../pipeline/payloads";
import type { AppEnv } from "./app-env";

async function accept(env: Env, config: Config, source: Source, received: Received, started: number): Promise<Response> {
  if (!received.ok) return reject(source, received);
  const now = Date.now();
  try {
    await enqueue(env.EVENTS, r2PayloadStore(env.PAYLOADS), received.events.map((e: InboundEvent) => newDelivery(e, now)));
  } catch (error) {
    log("enqueue_failed", { source, count: received.events.length, error: redactorFor(config).redact(String(error)) }, "error");
    return errorResponse("unavailable", "the event queue did not accept the events; retry later");
  }
  const eventIds = received.events.map((e) => e.id);
  // One line per request (a HubSpot batch carries up to 100 events): a line per event cost
  // 10-25% of ingest throughput in the bench.
  const [first] = received.events;
  log("ingested", {
    ...(eventIds.length === 1 ? { eventId: first!.id, entity: first!.entityKey, type: first!.type } : { eventIds }),
    source,
    count: eventIds.length,
    durationMs: Date.now() - started,
  });
  return Response.json({ eventIds }, { status: 202 });
}

function reject(source: string, failure: Failure): Response {
  log("ingest_rejected", { source, code: failure.code, message: failure.message }, "warn");
  return errorResponse(failure.code, failure.message);
}

const disabled = (source: Source) => reject(source, { ok: false, code: "unknown_source", message: `source ${source} is not configured` });

export const webhooks = new Hono<AppEnv>()
  .post("/hubspot", async (c) => {
    const started = Date.now();
    const config = configForIngest(c.env, "hubspot");
    if (!config.hubspot.enabled) return disabled("hubspot");
    return accept(c.env, config, "hubspot", await receiveHubSpot(c.req.raw, config.hubspot, started), started);
  })
  // Mailchimp checks a webhook URL with a GET before it saves it, and wants a 200.
  .get("/mailchimp/:secret?", (c) => {
    const config = configForIngest(c.env, "mailchimp").mailchimp;
    if (!config.enabled) return disabled("mailchimp");
    const verified = verifyMailchimpSecret(c.req.param("secret"), config.webhookSecret);
    return verified.ok ? c.json({ ok: true }) : reject("mailchimp", verified);
  })
  .post("/mailchimp/:secret?", async (c) => {
    const started = Date.now();
    const config = configForIngest(c.env, "mailchimp");
    if (!config.mailchimp.enabled) return disabled("mailchimp");
    return accept(c.env, config, "mailchimp", await receiveMailchimp(c.req.raw, c.req.param("secret"), config.mailchimp, started), started);
  })
  .post("/shopify", async (c) => {
    const started = Date.now();
    const config = configForIngest(c.env, "shopify");
    if (!config.shopify.enabled) return disabled("shopify");
    return accept(c.env, config, "shopify", await receiveShopify(c.req.raw, config.shopify, started), started);
  })
  .all("/:source/*", (c) => unmatched(c.req.param("source"), c.req.method))
  .all("/:source", (c) => unmatched(c.req.param("source"), c.req.method));

function unmatched(source: string, method: string): Response {
  if ((SOURCES as readonly string[]).includes(source)) {
    return errorResponse("method_not_allowed", `${method} is not accepted for ${source} webhooks`);
  }
  return errorResponse("unknown_source", `no webhook source named ${source}`);
}

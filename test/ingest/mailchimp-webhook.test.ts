/** POST/GET /webhooks/mailchimp/:secret: the URL secret, form bodies, dedupe keys. */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { parseMailchimpForm } from "../../src/ingest/mailchimp";
import { waitFor } from "../support/sandbox";
import { MAILCHIMP_SECRET, mailchimpForm, mailchimpRequest, ORIGIN } from "../support/webhooks";

const send = (request: Request) => exports.default.fetch(request);
const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

function unsubscribe(email: string, firedAt = "2026-11-20 10:00:00") {
  return mailchimpForm({
    type: "unsubscribe",
    fired_at: firedAt,
    "data[action]": "unsub",
    "data[reason]": "manual",
    "data[id]": "8a25ff1d98",
    "data[list_id]": "list0001",
    "data[email]": email,
    "data[email_type]": "html",
    "data[merges][EMAIL]": email,
    "data[merges][FNAME]": "Mail",
    "data[merges][LNAME]": "Chimp",
  });
}

describe("Mailchimp webhook URL secret", () => {
  it("answers Mailchimp's GET URL check with 200 for the right secret", async () => {
    const res = await send(new Request(`${ORIGIN}/webhooks/mailchimp/${MAILCHIMP_SECRET}`));
    expect(res.status).toBe(200);
  });

  it("refuses the GET check for a wrong secret", async () => {
    const res = await send(new Request(`${ORIGIN}/webhooks/mailchimp/wrong`));
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe("invalid_signature");
  });

  it("accepts a form-encoded event with the right secret", async () => {
    const res = await send(mailchimpRequest(unsubscribe("someone@example.com")));
    expect(res.status).toBe(202);
    expect(((await res.json()) as { eventIds: string[] }).eventIds).toHaveLength(1);
  });

  it("rejects a wrong secret", async () => {
    const res = await send(mailchimpRequest(unsubscribe("someone@example.com"), "guess"));
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe("invalid_signature");
  });

  it("answers missing_signature when the URL has no secret", async () => {
    const res = await send(new Request(`${ORIGIN}/webhooks/mailchimp`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: unsubscribe("a@b.co") }));
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe("missing_signature");
  });

  it("answers 415 for JSON, which Mailchimp never sends", async () => {
    const res = await send(mailchimpRequest(JSON.stringify({ type: "subscribe" }), MAILCHIMP_SECRET, "application/json"));
    expect(res.status).toBe(415);
  });

  it.each([
    ["no type", mailchimpForm({ fired_at: "2026-11-20 10:00:00", "data[email]": "a@b.co" })],
    ["no fired_at", mailchimpForm({ type: "subscribe", "data[email]": "a@b.co" })],
    ["no email", mailchimpForm({ type: "subscribe", fired_at: "2026-11-20 10:00:00", "data[id]": "x" })],
    ["an upemail without old_email", mailchimpForm({ type: "upemail", fired_at: "2026-11-20 10:00:00", "data[new_email]": "n@b.co" })],
  ])("answers invalid_payload for %s", async (_, body) => {
    const res = await send(mailchimpRequest(body));
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe("invalid_payload");
  });

  it("answers 413 before checking the secret", async () => {
    const res = await send(mailchimpRequest("x".repeat(1024 * 1024 + 10), "wrong"));
    expect(res.status).toBe(413);
  });
});

describe("Mailchimp form parsing", () => {
  it("ignores fields that would reach Object.prototype", async () => {
    const body = mailchimpForm({ type: "subscribe", fired_at: "2026-11-20 10:00:00", "data[email]": "p@example.com", "__proto__[polluted]": "yes", "data[constructor][x]": "1" });
    const res = await send(mailchimpRequest(body));
    expect(res.status).toBe(202);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("keeps the group when a field is both a value and a group", async () => {
    const parsed = await parseMailchimpForm("type=profile&fired_at=2026-11-20 10:00:00&data=x&data[email]=a@b.co", 0);
    if (!parsed.ok) throw new Error(parsed.message);
    expect(parsed.events[0]!.payload.data).toEqual({ email: "a@b.co" });
    expect(parsed.events[0]!.entityKey).toBe("email:a@b.co");
  });
});

describe("Mailchimp dedupe key", () => {
  it("is the same for the same fields in another order, and differs with fired_at", async () => {
    const a = await parseMailchimpForm(unsubscribe("x@example.com"), 0);
    const reordered = new URLSearchParams([...new URLSearchParams(unsubscribe("x@example.com"))].reverse()).toString();
    const b = await parseMailchimpForm(reordered, 0);
    const c = await parseMailchimpForm(unsubscribe("x@example.com", "2026-11-20 10:00:01"), 0);
    if (!a.ok || !b.ok || !c.ok) throw new Error("parse failed");
    expect(b.events[0]!.id).toBe(a.events[0]!.id);
    expect(c.events[0]!.id).not.toBe(a.events[0]!.id);
  });

  it("nests data[merges][FNAME] and keys the entity by the lower-cased email", async () => {
    const parsed = await parseMailchimpForm(unsubscribe("Mixed.Case@Example.com"), 0);
    if (!parsed.ok) throw new Error(parsed.message);
    const event = parsed.events[0]!;
    expect(event.entityKey).toBe("email:mixed.case@example.com");
    expect(event.occurredAt).toBe(Date.UTC(2026, 10, 20, 10, 0, 0));
    expect((event.payload.data as Record<string, Record<string, string>>).merges!.FNAME).toBe("Mail");
  });

  it("records a redelivered event once, as a duplicate", async () => {
    const body = unsubscribe("dup@example.com", "2026-11-21 08:00:00");
    const first = (await (await send(mailchimpRequest(body))).json()) as { eventIds: string[] };
    const second = (await (await send(mailchimpRequest(body))).json()) as { eventIds: string[] };
    expect(second.eventIds).toEqual(first.eventIds);
    const row = await waitFor(async () => {
      const r = await env.DB.prepare("SELECT status, duplicates FROM events WHERE id = ?").bind(first.eventIds[0]).first<{ status: string; duplicates: number }>();
      return r?.duplicates === 1 ? r : undefined;
    }, 10_000, "duplicate recorded");
    // The contact sync handled it once: no CRM contact has the address, so there was nothing to do.
    expect(row.status).toBe("done");
    const count = await env.DB.prepare("SELECT count(*) AS n FROM events WHERE id = ?").bind(first.eventIds[0]).first<{ n: number }>();
    expect(count?.n).toBe(1);
  });
});

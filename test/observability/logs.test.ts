/** The JSON log lines: one per step, with the fields `wrangler tail | jq` users filter on, no secrets. */
import { exports } from "cloudflare:workers";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { createCrmContact, HUBSPOT_TOKEN, MAILCHIMP_KEY, resetSandbox, setFaults } from "../support/sandbox";
import { log } from "../../src/observability/log";
import { contactCreated, deliver } from "../support/messages";
import { HUBSPOT_SECRET, hubspotEvent, MAILCHIMP_SECRET, signedHubSpot } from "../support/webhooks";

let lines: Record<string, unknown>[] = [];
let raw: string[] = [];

beforeEach(async () => {
  await resetSandbox();
  lines = [];
  raw = [];
  for (const level of ["log", "warn", "error"] as const) {
    vi.spyOn(console, level).mockImplementation((text: unknown) => {
      raw.push(String(text));
      try {
        lines.push(JSON.parse(String(text)) as Record<string, unknown>);
      } catch {
        /* not ours */
      }
    });
  }
});
afterEach(() => vi.restoreAllMocks());

const step = (name: string) => lines.filter((l) => l.step === name);

it("logs each step of a delivery as one JSON line with its ids, outcome and duration", async () => {
  const res = await exports.default.fetch(await signedHubSpot(JSON.stringify([hubspotEvent(12345)])));
  expect(res.status).toBe(202);
  expect(step("ingested")[0]).toMatchObject({ level: "info", source: "hubspot", entity: "contact:12345", count: 1, eventId: expect.stringMatching(/^evt_/) });

  const ok = await contactCreated(await createCrmContact({ email: "log.ok@example.com" }));
  await deliver([ok]);
  const failing = await contactCreated(await createCrmContact({ email: "log.retry@example.com" }));
  await setFaults("mailchimp", { failNext: { count: 1, status: 503 } });
  await deliver([failing]);
  await deliver([{ ...failing, deliveryId: crypto.randomUUID() }]);
  const dead = await contactCreated(await createCrmContact({ email: "log.dead@example.com" }));
  await setFaults("mailchimp", { failNext: { count: 1, status: 400 } });
  await deliver([dead]);

  const attempts = step("action_attempt");
  expect(attempts.find((l) => l.eventId === ok.event.id)).toMatchObject({
    source: "hubspot",
    entity: ok.event.entityKey,
    action: "contact-sync.apply",
    attempt: 1,
    outcome: "done",
    durationMs: expect.any(Number),
  });
  // 1 s after the first attempt, plus up to 1 s of jitter.
  const oneOrTwo = expect.toSatisfy((n: number) => n === 1 || n === 2);
  expect(attempts.find((l) => l.eventId === failing.event.id)).toMatchObject({ outcome: "failed", status: 503, retryInSeconds: oneOrTwo, level: "warn" });
  expect(step("retry_scheduled").find((l) => l.eventId === failing.event.id)).toMatchObject({ delaySeconds: oneOrTwo });
  expect(step("deduped").find((l) => l.eventId === failing.event.id)).toMatchObject({ outcome: "duplicate" });
  expect(step("dead_lettered").find((l) => l.eventId === dead.event.id)).toMatchObject({ reason: expect.stringMatching(/^permanent: mailchimp PUT answered 400/) });
  for (const l of lines) expect(typeof l.time).toBe("string");

  const everything = raw.join("\n");
  for (const secret of [HUBSPOT_TOKEN, MAILCHIMP_KEY, HUBSPOT_SECRET, MAILCHIMP_SECRET, btoa(`syncwire:${MAILCHIMP_KEY}`)]) {
    expect(everything).not.toContain(secret);
  }
});

it("keeps a line's own time, level and step whatever fields a caller passes", () => {
  log("nightly_check", { step: "cleanup", level: "debug", time: "yesterday", stage: "cleanup" }, "warn");
  expect(lines.at(-1)).toEqual({ time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), level: "warn", step: "nightly_check", stage: "cleanup" });
});

/** Every outbound call leaves an audit row, and no row holds a credential. */
import { env } from "cloudflare:workers";
import { beforeEach, expect, it } from "vitest";
import { Redactor } from "../../src/audit/redact";
import { createCrmContact, HUBSPOT_TOKEN, MAILCHIMP_KEY, resetSandbox, setFaults, vendorRequests } from "../support/sandbox";
import { contactCreated, deliver } from "../support/messages";
import { HUBSPOT_SECRET, MAILCHIMP_SECRET, SHOPIFY_SECRET } from "../support/webhooks";

beforeEach(resetSandbox);

const SECRETS = [
  HUBSPOT_TOKEN,
  MAILCHIMP_KEY,
  btoa(`syncwire:${MAILCHIMP_KEY}`), // the Basic-auth value
  HUBSPOT_SECRET,
  MAILCHIMP_SECRET,
  SHOPIFY_SECRET,
  "test-admin-token",
];

it("records one row per outbound call, successes and failures, with no secret in any column", async () => {
  const ok = await contactCreated(await createCrmContact({ email: "audit.ok@example.com", firstname: "Au", lastname: "Dit" }));
  await deliver([ok]);
  const failing = await contactCreated(await createCrmContact({ email: "audit.fail@example.com" }));
  await setFaults("mailchimp", { failNext: { count: 1, status: 500 } });
  await deliver([failing]);

  const { results } = await env.DB.prepare("SELECT * FROM audit_log WHERE event_id IN (?, ?) ORDER BY id").bind(ok.event.id, failing.event.id).all<Record<string, unknown>>();
  // Everything the fakes saw, less the test's own contact creation.
  const calls = [...(await vendorRequests("hubspot")), ...(await vendorRequests("mailchimp"))].filter((c) => c.method !== "POST");
  expect(results).toHaveLength(calls.length);
  expect(results.map((r) => `${r.connector} ${r.method} ${r.status} ${r.outcome}`)).toEqual([
    "hubspot GET 200 success",
    "mailchimp PUT 200 success",
    "hubspot GET 200 success",
    "mailchimp PUT 500 transient",
  ]);
  const put = results[1]!;
  expect(put).toMatchObject({ event_id: ok.event.id, entity_key: ok.event.entityKey, action: "contact-sync.apply", attempt: 1 });
  expect(String(put.url)).toMatch(/\/3\.0\/lists\/list0001\/members\/[0-9a-f]{32}$/);
  expect(JSON.parse(String(put.request_body))).toEqual({
    email_address: "audit.ok@example.com",
    status_if_new: "subscribed",
    merge_fields: { FNAME: "Au", LNAME: "Dit" },
  });
  expect(typeof put.duration_ms).toBe("number");

  const everything = JSON.stringify(await env.DB.prepare("SELECT * FROM audit_log").all());
  for (const secret of SECRETS) expect(everything).not.toContain(secret);
  expect(everything.toLowerCase()).not.toContain("authorization");
});

it("redacts a credential that a vendor echoes back", () => {
  const redactor = new Redactor([MAILCHIMP_KEY]);
  expect(redactor.redact(`{"detail":"bad key ${MAILCHIMP_KEY}"}`)).toBe('{"detail":"bad key [REDACTED]"}');
  expect(redactor.redact(`key=${encodeURIComponent(MAILCHIMP_KEY)}`)).toBe("key=[REDACTED]");
});

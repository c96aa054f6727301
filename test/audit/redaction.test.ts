/**
 * Secrets never reach D1 or the product's log lines (CONTRACT 4.8), and the outbound client's
 * guards that came with that work: a redirect is never followed, calls in flight are bounded,
 * a call's timeout starts when it is sent, and no call is sent that cannot finish before the
 * attempt's lease ends. Each test says which fix it guards: removing that fix makes it fail.
 *
 * Transports here stand in for the network only; product code is never replaced.
 */
import { env } from "cloudflare:workers";
import pLimit from "p-limit";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { REDACTED, Redactor } from "../../src/audit/redact";
import { AuditBuffer } from "../../src/audit/sink";
import { getConfig } from "../../src/config";
import { configSecrets, createConnectors, redactorFor } from "../../src/connectors";
import { ActionFailure } from "../../src/connectors/errors";
import { HttpClient, type Transport } from "../../src/connectors/http-client";
import { mailchimpAuthorization, subscriberHash } from "../../src/connectors/mailchimp";
import { createTransport } from "../../src/connectors/transport";
import { consumeEvents, pipelineDeps } from "../../src/pipeline/consumer";
import type { EventMessage } from "../../src/pipeline/message";
import type { PipelineDeps } from "../../src/pipeline/process";
import { SANDBOX_ORIGIN } from "../../src/sandbox/credentials";
import { contactCreated, recordingBatch } from "../support/messages";
import { createCrmContact, HUBSPOT_TOKEN, LIST_ID, MAILCHIMP_KEY, resetSandbox } from "../support/sandbox";
import { HUBSPOT_SECRET, MAILCHIMP_SECRET, SHOPIFY_SECRET } from "../support/webhooks";

const ADMIN_TOKEN = "test-admin-token"; // vitest.config.ts
const MAILCHIMP_BASIC = mailchimpAuthorization(MAILCHIMP_KEY);
const MAILCHIMP_URL = `${SANDBOX_ORIGIN}/mailchimp/3.0/lists/${LIST_ID}/members/`;

/**
 * The test configuration's credentials (vitest.config.ts) are letters, digits and dashes, so
 * their encoded forms equal them; the end-to-end tests also set an admin token that every
 * encoding changes, to tell a redacted encoded form from one that merely looks the same.
 */
const SPECIAL_ADMIN_TOKEN = `admin "tok\\en"/+&=?!'()~ é`;

/** Every credential of a configuration, and the header value built from one ... */
const credentials = (adminToken: string) => [HUBSPOT_TOKEN, HUBSPOT_SECRET, MAILCHIMP_KEY, MAILCHIMP_BASIC, MAILCHIMP_BASIC.slice("Basic ".length), MAILCHIMP_SECRET, SHOPIFY_SECRET, adminToken];
/** ... in each form it may take in a URL, a form body or a JSON line. */
const leaksOf = (secrets: string[]) => [...new Set(secrets.flatMap((s) => [s, encodeURIComponent(s), formEncoded(s), JSON.stringify(s).slice(1, -1)]))];
const LEAKS = leaksOf(credentials(ADMIN_TOKEN));
const SPECIAL_LEAKS = leaksOf(credentials(SPECIAL_ADMIN_TOKEN));
/** The test environment with SPECIAL_ADMIN_TOKEN (the consumer never uses the admin token itself). */
const specialEnv = () => ({ ...env, ADMIN_TOKEN: SPECIAL_ADMIN_TOKEN }) as Env;

function formEncoded(value: string): string {
  return new URLSearchParams({ s: value }).toString().slice(2);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Every console line the product writes (src/observability/log.ts) during the current test. */
let lines: string[] = [];

beforeEach(async () => {
  await resetSandbox();
  lines = [];
  for (const level of ["log", "info", "warn", "error", "debug"] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ")));
  }
});
afterEach(() => vi.restoreAllMocks());

/** The pipeline's own deps, with the network replaced by `transport` behind the same audited HttpClient. */
function depsWithTransport(transport: Transport, testEnv: Env = env): PipelineDeps {
  const deps = pipelineDeps(testEnv);
  const limit = pLimit(deps.config.outboundConcurrency);
  return {
    ...deps,
    random: () => 0,
    connectorsFor: (context, audit, deadline) =>
      createConnectors(deps.config, new HttpClient({ transport, audit, redactor: deps.redactor, context, limit, deadline })),
  };
}

async function consume(bodies: EventMessage[], deps: PipelineDeps, testEnv: Env = env) {
  const { batch, decisions } = recordingBatch("syncwire-events", bodies, 1);
  await consumeEvents(batch, testEnv, deps);
  return { acks: decisions.acks, retries: decisions.retries, ids: batch.messages.map((m) => m.id) };
}

let contacts = 0;
async function newContactEvent(): Promise<EventMessage> {
  const email = `redaction${++contacts}.${crypto.randomUUID().slice(0, 8)}@example.com`;
  return contactCreated(await createCrmContact({ email, firstname: "Ada", lastname: "Lovelace" }));
}

/** Every column of every row the pipeline keeps for `eventId`. */
async function rowsOf(eventId: string) {
  const all = async (sql: string) => (await env.DB.prepare(sql).bind(eventId).all<Record<string, unknown>>()).results;
  return {
    events: await all("SELECT * FROM events WHERE id = ?"),
    actions: await all("SELECT * FROM actions WHERE event_id = ?"),
    deadLetters: await all("SELECT * FROM dead_letters WHERE event_id = ?"),
    audit: await all("SELECT * FROM audit_log WHERE event_id = ? ORDER BY id"),
  };
}

function expectNoCredential(text: string, where: string, leaks: string[] = LEAKS) {
  for (const leak of leaks) expect(text.includes(leak), `${where} holds ${leak}`).toBe(false);
}

describe("Redactor", () => {
  const OUTER = "abcdefgh-0123456789";
  const INNER = "0123456789";

  // Guards: forms are replaced longest first. Replacing INNER first would leave "abcdefgh-".
  it.each([
    ["shorter first", [INNER, OUTER]],
    ["longer first", [OUTER, INNER]],
  ])("removes a secret that contains another one whole (%s)", (_, secrets) => {
    const redactor = new Redactor(secrets);
    const out = redactor.redact(`a=${OUTER}&b=${INNER}&c=${encodeURIComponent(OUTER)}`);
    expect(out).toBe(`a=${REDACTED}&b=${REDACTED}&c=${REDACTED}`);
    expect(out).not.toContain("abcdefgh");
    expect(out).not.toContain("-");
  });

  // A secret whose encodings all differ: reserved characters, a space, "!'()~" (left alone by
  // encodeURIComponent, escaped by URLSearchParams), and non-ASCII.
  const SPECIAL = "p@ss w0rd/+&=?!'()~*;é";

  // Guards: the percent-encoded form (encodeURIComponent), e.g. a secret quoted in a URL by a network error.
  it("replaces the percent-encoded form", () => {
    const encoded = encodeURIComponent(SPECIAL);
    expect(encoded).not.toBe(SPECIAL);
    expect(new Redactor([SPECIAL]).redact(`GET /x?key=${encoded}&n=1`)).toBe(`GET /x?key=${REDACTED}&n=1`);
  });

  // Guards: the form-encoded form (URLSearchParams: space as "+", "!'()~" escaped), which differs
  // from the percent-encoded one; e.g. a form request body or a query built with searchParams.
  it("replaces the form-encoded form, space as + and !'()~ escaped", () => {
    const form = formEncoded(SPECIAL);
    expect(form).not.toBe(encodeURIComponent(SPECIAL));
    expect(form).toContain("+w0rd");
    expect(form).toContain("%21%27%28%29%7E");
    const redactor = new Redactor([SPECIAL]);
    expect(redactor.redact(`client_secret=${form}&grant_type=client_credentials`)).toBe(`client_secret=${REDACTED}&grant_type=client_credentials`);
    const url = new URL(`${SANDBOX_ORIGIN}/oauth`);
    url.searchParams.set("key", SPECIAL);
    expect(redactor.redact(url.toString())).toBe(`${SANDBOX_ORIGIN}/oauth?key=${REDACTED}`);
  });

  // Guards: the JSON-escaped form, a secret with `"` and `\` inside a JSON body or error text.
  it("replaces the JSON-escaped form", () => {
    const secret = 'quote"and\\backslash\tkey';
    const body = JSON.stringify({ detail: `invalid credential ${secret}` });
    expect(body).not.toContain(secret);
    expect(new Redactor([secret]).redact(body)).toBe(`{"detail":"invalid credential ${REDACTED}"}`);
  });

  // Guards: the base64 form, with or without padding.
  it("replaces the base64 form", () => {
    const secret = "sk_live_base64-me!"; // 18 bytes: no padding; with a suffix, padding appears
    const redactor = new Redactor([secret, `${secret}x`]);
    expect(redactor.redact(`token ${btoa(secret)} end`)).toBe(`token ${REDACTED} end`);
    const padded = btoa(`${secret}x`);
    expect(padded).toMatch(/=$/);
    expect(redactor.redact(`token ${padded}`)).not.toContain(padded.replace(/=+$/, ""));
  });

  // Guards: configSecrets registering the exact Basic value the Mailchimp connector sends. The
  // base64 of the key alone is only part of it ("syncwire:" shifts the encoding), so without the
  // registration "Basic c3luY3dpcmU6…" would survive around a redacted key.
  it("replaces the Mailchimp Basic-auth value built from a sandbox config", () => {
    const config = getConfig(env);
    expect(configSecrets(config)).toContain(MAILCHIMP_BASIC);
    const redactor = new Redactor(configSecrets(config));
    expect(redactor.redact(`authorization: ${MAILCHIMP_BASIC}`)).toBe(`authorization: ${REDACTED}`);
    expect(redactor.redact(JSON.stringify({ authorization: MAILCHIMP_BASIC }))).toBe(`{"authorization":"${REDACTED}"}`);
    expect(redactor.redact(`auth=${encodeURIComponent(MAILCHIMP_BASIC)}`)).toBe(`auth=${REDACTED}`);
    expect(redactor.redact(`auth=${formEncoded(MAILCHIMP_BASIC)}`)).toBe(`auth=${REDACTED}`);
    // Every credential of the configuration, in every form.
    expectNoCredential(redactor.redact(LEAKS.join(" | ")), "redacted text");
    // One redactor per configuration.
    expect(redactorFor(config)).toBe(redactorFor(config));
  });
});

describe("Redactor.redactTruncated", () => {
  const secret = "s3cret-value-0123456789";
  const redactor = new Redactor([secret]);

  it("leaves no part of a secret that the cut goes through", () => {
    for (let at = 0; at < secret.length + 2; at++) {
      const text = `${"x".repeat(100 - at)}${secret}${"y".repeat(5_000)}`;
      const out = redactor.redactTruncated(text, 100)!;
      for (let n = 6; n <= secret.length; n++) expect(out).not.toContain(secret.slice(0, n));
      expect(out).toMatch(/…\[truncated \d+ chars\]$/);
    }
  });

  it("leaves no part of a secret cut at the end of the window it redacts, even after earlier secrets shrank it", () => {
    // Whole secrets before the cut shrink the text by redaction; a half secret further on must not slide into view.
    const text = `${secret.repeat(8)}${"z".repeat(60)}${secret}${"y".repeat(10_000)}`;
    for (let max = 60; max < 300; max++) {
      const out = redactor.redactTruncated(text, max)!;
      for (let n = 6; n <= secret.length; n++) expect(out).not.toContain(secret.slice(0, n));
    }
  });

  it("keeps short texts whole, only redacted, and cuts a text just over the limit at the limit", () => {
    expect(redactor.redactTruncated(`a ${secret} b`, 100)).toBe(`a ${REDACTED} b`);
    expect(redactor.redactTruncated(null, 100)).toBeNull();
    expect(redactor.redactTruncated("x".repeat(101), 100)).toBe(`${"x".repeat(100)}…[truncated 1 chars]`);
  });
});

describe("a secret with characters a URL parser stops at", () => {
  it("is redacted whole, and no fragment of it blanks ordinary text", () => {
    const redactor = new Redactor(["ab#cdefghijklmnopqrst"]);
    expect(redactor.redact("about a cab")).toBe("about a cab");
    expect(redactor.redact("token=ab#cdefghijklmnopqrst")).toBe(`token=${REDACTED}`);
  });
});

describe("a transport error whose message holds a secret", () => {
  const urlWithSecrets = (request: Request, adminToken: string) =>
    `${request.url}?apikey=${MAILCHIMP_KEY}&t=${HUBSPOT_TOKEN}&auth=${MAILCHIMP_BASIC}&hook=${MAILCHIMP_SECRET}&cs=${HUBSPOT_SECRET}&shop=${SHOPIFY_SECRET}&admin=${adminToken}`;

  /** A network that fails every Mailchimp call with a TypeError quoting the URL; HubSpot calls reach the sandbox. */
  function failingMailchimp(quote: (url: string) => string, adminToken = ADMIN_TOKEN): Transport {
    const sandbox = createTransport(env, getConfig(env));
    return async (request) => {
      if (request.url.startsWith(MAILCHIMP_URL)) throw new TypeError(`fetch failed: ${quote(urlWithSecrets(request, adminToken))}`);
      return sandbox(request);
    };
  }

  // Guards: the HttpClient redacting every ActionFailure message (network errors can quote URLs).
  it("is redacted in the ActionFailure the HttpClient throws", async () => {
    const audit = new AuditBuffer();
    const http = new HttpClient({
      transport: failingMailchimp((u) => u),
      audit,
      redactor: redactorFor(getConfig(env)),
      context: { eventId: "evt_redaction", entityKey: null, action: "test", attempt: 1 },
    });
    const error = await http
      .call({ connector: "mailchimp", method: "PUT", url: `${MAILCHIMP_URL}${subscriberHash("x@example.com")}`, json: {}, schema: z.unknown() })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ActionFailure);
    expect((error as ActionFailure).kind).toBe("transient");
    expect((error as ActionFailure).message).toContain("network error: fetch failed:");
    expect((error as ActionFailure).message).toContain(REDACTED);
    expectNoCredential((error as ActionFailure).message, "ActionFailure message");
    expectNoCredential(JSON.stringify(audit.drain()), "audit row");
  });

  // Guards: HttpClient redacting a vendor's error text before `errorMessage` cuts it to 300
  // characters. Cut first, a credential straddling the cut is no longer whole and its first
  // characters survive into the failure text (actions.last_error, events.last_error,
  // dead_letters.reason, audit_log.error, log lines).
  it("is redacted when a vendor's error text quoting it is cut at 300 characters", async () => {
    const detail = `${"x".repeat(270)} key ${MAILCHIMP_KEY} rejected`; // the cut falls inside the key
    const audit = new AuditBuffer();
    const http = new HttpClient({
      transport: async () => Response.json({ status: 401, detail }, { status: 401 }),
      audit,
      redactor: redactorFor(getConfig(env)),
      context: { eventId: "evt_cut", entityKey: null, action: "test", attempt: 1 },
    });
    const error = (await http
      .call({ connector: "mailchimp", method: "PUT", url: `${MAILCHIMP_URL}${subscriberHash("x@example.com")}`, json: {}, schema: z.unknown() })
      .catch((e: unknown) => e)) as ActionFailure;
    expect(error).toMatchObject({ kind: "permanent", details: { status: 401 } });
    const [row] = audit.drain();
    const leaked = MAILCHIMP_KEY.slice(0, 16); // 16 of its 37 characters
    expect(String(row?.responseBody)).not.toContain(leaked);
    expect(error.message).not.toContain(leaked); // cut first, it held "… key 0123456789abcdef012345678"
    expect(String(row?.error)).not.toContain(leaked);
  });

  // Guards, end to end: the HttpClient's redacted failures and audit rows, and process.ts
  // redacting failure text before it is stored (actions.last_error, events.last_error,
  // dead_letters.reason) or logged.
  it.each([
    ["as is", (u: string) => u],
    ["URL-encoded", (u: string) => encodeURIComponent(u)],
    ["form-encoded", (u: string) => formEncoded(u)],
  ])("no secret in any D1 row or log line (URL quoted %s)", async (_, quote) => {
    const testEnv = specialEnv();
    const deps = depsWithTransport(failingMailchimp(quote, SPECIAL_ADMIN_TOKEN), testEnv);
    expect(deps.config.adminToken).toBe(SPECIAL_ADMIN_TOKEN);
    const message = await newContactEvent();

    // A fresh event: the network error is transient, the action waits to be retried.
    const first = await consume([message], deps, testEnv);
    expect(first.retries).toHaveLength(1);
    const failed = await rowsOf(message.event.id);
    expect(failed.actions[0]).toMatchObject({ state: "failed", attempts: 1, last_status: null });
    const lastError = String(failed.actions[0]!.last_error);
    expect(lastError).toContain("mailchimp PUT network error: fetch failed:");
    expect(lastError).toContain(REDACTED);
    expect(failed.events[0]).toMatchObject({ status: "retrying", last_error: lastError });

    // The same delivery after RETRY_MAX_AGE: dead-lettered with the reason.
    await env.DB.prepare("UPDATE actions SET next_attempt_at = 0 WHERE event_id = ?").bind(message.event.id).run();
    const second = await consume([{ ...message, retryFrom: Date.now() - (deps.config.retry.maxAgeSeconds + 60) * 1000 }], deps, testEnv);
    expect(second.acks).toEqual(second.ids);
    const rows = await rowsOf(message.event.id);
    expect(rows.actions[0]).toMatchObject({ state: "dead", attempts: 2 });
    expect(rows.deadLetters).toHaveLength(1);
    const reason = String(rows.deadLetters[0]!.reason);
    expect(reason).toMatch(/^gave up after RETRY_MAX_AGE \(86400 s\): mailchimp PUT network error: fetch failed: /);
    expect(reason).toContain(REDACTED);
    expect(rows.events[0]).toMatchObject({ status: "dead", last_error: reason });
    expect(rows.audit.map((r) => `${r.connector} ${r.method} ${r.status} ${r.outcome}`)).toEqual([
      "hubspot GET 200 success",
      "mailchimp PUT null transient",
      "hubspot GET 200 success",
      "mailchimp PUT null transient",
    ]);
    for (const row of rows.audit.filter((r) => r.connector === "mailchimp")) {
      expect(String(row.error)).toContain("network error: fetch failed:");
      expect(String(row.error)).toContain(REDACTED);
    }

    for (const [table, list] of Object.entries(rows)) {
      expect(list.length, table).toBeGreaterThan(0);
      for (const row of list) for (const [column, value] of Object.entries(row)) expectNoCredential(String(value), `${table}.${column}`, SPECIAL_LEAKS);
    }

    // The log lines carry the same (redacted) text.
    const attempts = lines.filter((l) => l.includes('"step":"action_attempt"'));
    expect(attempts.some((l) => l.includes('"outcome":"failed"') && l.includes(REDACTED))).toBe(true);
    expect(attempts.some((l) => l.includes('"outcome":"dead"') && l.includes(REDACTED))).toBe(true);
    for (const line of lines) expectNoCredential(line, `log line ${line}`, SPECIAL_LEAKS);
  });

  // Guards: process.ts redacting failure text itself, for failures the HttpClient did not build
  // (a flow or connector bug whose message quotes a credential).
  it("is redacted when a flow throws it outside the HttpClient", async () => {
    const deps = pipelineDeps(env);
    const broken: PipelineDeps = {
      ...deps,
      connectorsFor: (context, audit, deadline) => {
        const connectors = deps.connectorsFor(context, audit, deadline);
        return {
          ...connectors,
          hubspot: () => connectors.hubspot(),
          mailchimp: () => {
            throw new Error(`cannot build client for ${MAILCHIMP_BASIC} (key ${MAILCHIMP_KEY}, t=${encodeURIComponent(HUBSPOT_TOKEN)})`);
          },
        };
      },
    };
    const message = await newContactEvent();
    const result = await consume([message], broken);
    expect(result.acks).toEqual(result.ids);
    const rows = await rowsOf(message.event.id);
    expect(rows.actions[0]).toMatchObject({ state: "dead" });
    expect(String(rows.deadLetters[0]?.reason)).toMatch(/^permanent: unexpected error: Error: cannot build client for \[REDACTED\] \(key \[REDACTED\]/);
    for (const [table, list] of Object.entries(rows)) {
      for (const row of list) for (const [column, value] of Object.entries(row)) expectNoCredential(String(value), `${table}.${column}`);
    }
    expect(lines.some((l) => l.includes('"outcome":"dead"') && l.includes(REDACTED))).toBe(true);
    for (const line of lines) expectNoCredential(line, `log line ${line}`);
  });
});

describe("redirects", () => {
  const EVIL = "https://evil.example/steal";

  // Guards: `redirect: "manual"` and 3xx as a permanent failure. The stand-in network behaves
  // like fetch: a request in "follow" mode is sent on to the Location, headers and all.
  it("never follows a redirect: one request, dead-lettered as permanent with its 302", async () => {
    const sandbox = createTransport(env, getConfig(env));
    const received: Request[] = [];
    const network: Transport = async (request) => {
      received.push(request);
      if (request.url.startsWith(EVIL)) return Response.json({ id: "x", email_address: "x", status: "subscribed" });
      if (request.method === "PUT" && request.url.startsWith(MAILCHIMP_URL)) {
        if (request.redirect === "follow") return network(new Request(EVIL, { method: request.method, headers: request.headers }));
        return new Response(null, { status: 302, headers: { location: EVIL } });
      }
      return sandbox(request);
    };
    const message = await newContactEvent();
    const result = await consume([message], depsWithTransport(network));
    expect(result.acks).toEqual(result.ids);

    const puts = received.filter((r) => r.method === "PUT" && r.url.startsWith(MAILCHIMP_URL));
    expect(puts).toHaveLength(1);
    expect(puts[0]!.redirect).toBe("manual");
    expect(received.filter((r) => r.url.startsWith(EVIL))).toEqual([]);

    const rows = await rowsOf(message.event.id);
    expect(rows.actions[0]).toMatchObject({ state: "dead", last_status: 302 });
    expect(String(rows.actions[0]!.last_error)).toMatch(/^permanent: mailchimp PUT answered 302/);
    expect(rows.deadLetters).toHaveLength(1);
    expect(rows.audit.filter((r) => r.connector === "mailchimp")).toMatchObject([{ method: "PUT", status: 302, outcome: "permanent" }]);
  });
});

describe("concurrency", () => {
  // Guards: pipelineDeps sharing one p-limit of OUTBOUND_CONCURRENCY (default 6) across every
  // HttpClient of an invocation. With a limit per client (or none), 20 entities would have up to
  // 20 calls in flight. The network stand-in is the sandbox binding itself, so the deps are the
  // product's own, built by pipelineDeps.
  it("never has more than OUTBOUND_CONCURRENCY calls in flight", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let calls = 0;
    const real = env.SANDBOX_HOST;
    const slowNetwork = {
      idFromName: (name: string) => real.idFromName(name),
      get: (id: DurableObjectId) => {
        const stub = real.get(id);
        return {
          fetch: async (request: Request) => {
            calls++;
            maxInFlight = Math.max(maxInFlight, ++inFlight);
            try {
              await sleep(50);
              return await stub.fetch(request);
            } finally {
              inFlight--;
            }
          },
        };
      },
    };
    // One call per contact (BULK_CALLS=false): 40 calls to bound.
    const testEnv = { ...env, SANDBOX_HOST: slowNetwork, BULK_CALLS: "false" } as unknown as Env;
    const deps = pipelineDeps(testEnv);
    expect(deps.config.outboundConcurrency).toBe(6);

    const messages: EventMessage[] = [];
    for (let i = 0; i < 20; i++) messages.push(await newContactEvent());
    const result = await consume(messages, deps, testEnv);

    expect([...result.acks].sort()).toEqual([...result.ids].sort()); // acked as each finishes, in any order
    expect(calls).toBe(40); // a GET and a PUT per contact
    expect(maxInFlight).toBe(6);
    for (const m of messages) expect((await rowsOf(m.event.id)).actions[0]).toMatchObject({ state: "done" });
  });

  // Guards: the timeout starting when the call is sent, not when it starts waiting for a slot.
  // The stand-in network honours the request's signal as fetch does.
  it("counts a call's timeout from sending, not from waiting for a slot", async () => {
    const network: Transport = async (request) => {
      if (request.signal.aborted) throw request.signal.reason;
      if (request.url.endsWith("/slow")) await sleep(300);
      else await sleep(10);
      if (request.signal.aborted) throw request.signal.reason;
      return Response.json({ ok: true });
    };
    const limit = pLimit(1);
    const client = (timeoutMs?: number) =>
      new HttpClient({
        transport: network,
        audit: new AuditBuffer(),
        redactor: new Redactor([]),
        context: { eventId: null, entityKey: null, action: null, attempt: 1 },
        limit,
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
      });
    const get = (http: HttpClient, path: string) => http.call({ connector: "test", method: "GET", url: `${SANDBOX_ORIGIN}/test${path}`, schema: z.object({ ok: z.boolean() }) });

    const started = Date.now();
    const slow = get(client(), "/slow");
    const waiting = get(client(100), "/fast");
    await expect(waiting).resolves.toMatchObject({ status: 200, data: { ok: true } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250); // it waited well past its 100 ms
    await expect(slow).resolves.toMatchObject({ status: 200 });

    // The same client does time out a call that is slow once sent (the signal is honoured).
    await expect(get(client(100), "/slow")).rejects.toMatchObject({ kind: "transient", message: expect.stringMatching(/timed out after 100 ms/) });
  });
});

describe("deadline", () => {
  // Guards: the `deadline` option (the end of the attempt's lease): a call that cannot finish
  // before it is not sent, so none is in flight when another consumer may claim the row.
  it("does not send a call that cannot finish before the deadline, and audits nothing", async () => {
    const sent: Request[] = [];
    const network: Transport = async (request) => {
      sent.push(request);
      return Response.json({ ok: true });
    };
    const call = (deadline: number) => {
      const audit = new AuditBuffer();
      const http = new HttpClient({
        transport: network,
        audit,
        redactor: new Redactor([]),
        context: { eventId: "evt_deadline", entityKey: null, action: "test", attempt: 1 },
        deadline,
      });
      const result = http.call({ connector: "test", method: "GET", url: `${SANDBOX_ORIGIN}/test`, schema: z.unknown() });
      return { result, audit };
    };

    // 5 s left is plenty for a quick answer, but not for the whole 15 s timeout: cut short, the
    // call could time out after the vendor applied it, and the retry would apply it again.
    for (const left of [500, 5_000]) {
      const late = call(Date.now() + left);
      const error = await late.result.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ActionFailure);
      expect(error).toMatchObject({ kind: "transient", message: expect.stringMatching(/not sent/) });
      expect(sent).toEqual([]);
      expect(late.audit.drain()).toEqual([]);
    }

    // With time to spare the same call is sent (the test network works).
    const early = call(Date.now() + 60_000);
    await expect(early.result).resolves.toMatchObject({ status: 200 });
    expect(sent).toHaveLength(1);
    expect(early.audit.drain()).toHaveLength(1);
  });
});

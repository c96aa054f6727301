/**
 * The watched conditions (issue 10): a connector's error rate, an old backlog, dead letters that
 * keep coming, a conflict waiting too long. Through an injected clock: each incident alerts once
 * and says once that it recovered; a six-hour outage sends one of each, not hundreds; a condition
 * that comes back within the cooldown stays quiet.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { auditInserts, type AuditRecord } from "../../src/audit/sink";
import { getConfig } from "../../src/config";
import { evaluateAlerts } from "../../src/observability/alerting";
import { database } from "../../src/pipeline/ledger";

beforeEach(async () => {
  await env.DB.batch(["metrics_minutes", "audit_log", "alerts", "alert_states", "events", "dead_letters", "conflicts"].map((t) => env.DB.prepare(`DELETE FROM ${t}`)));
});

const T0 = Date.parse("2026-05-01T09:00:00.000Z");

/** `ok` successes and `failed` failures of `connector` at `at`, written as the pipeline writes them. */
async function calls(connector: string, at: number, ok: number, failed: number) {
  const row = (outcome: AuditRecord["outcome"]): AuditRecord => ({
    eventId: null, entityKey: null, action: "t", connector, method: "GET", url: "https://api.example.test", requestBody: null,
    status: outcome === "success" ? 200 : 503, responseBody: null, durationMs: 30, attempt: 1, outcome, error: null, createdAt: at,
  });
  const rows = [...Array.from({ length: ok }, () => row("success")), ...Array.from({ length: failed }, () => row("transient"))];
  for (let i = 0; i < rows.length; i += 30) await env.DB.batch(auditInserts(env.DB, rows.slice(i, i + 30)));
}

function deps(overrides: Partial<ReturnType<typeof getConfig>["alerting"]> = {}) {
  const config = getConfig(env);
  return {
    db: database(env.DB),
    config: { ...config, alerting: { ...config.alerting, ...overrides } },
    queue: { send: async () => undefined } as unknown as Queue,
    now: () => T0,
  };
}
const alerts = async () => (await env.DB.prepare("SELECT kind, text FROM alerts ORDER BY created_at, rowid").all<{ kind: string; text: string }>()).results;

describe("a connector's error rate", () => {
  it("over the threshold alerts once, stays quiet while it lasts, and says once that it recovered", async () => {
    const d = deps();
    await calls("stripe", T0 - 60_000, 6, 6);
    expect((await evaluateAlerts(d, T0)).raised).toEqual(["errors:stripe"]);
    await calls("stripe", T0 + 60_000, 2, 8);
    expect((await evaluateAlerts(d, T0 + 2 * 60_000)).raised).toEqual([]);
    // Five minutes without failures: recovered.
    await calls("stripe", T0 + 9 * 60_000, 12, 0);
    expect((await evaluateAlerts(d, T0 + 10 * 60_000)).recovered).toEqual(["errors:stripe"]);
    expect((await alerts()).map((a) => a.kind)).toEqual(["connector_errors", "recovered"]);
    expect((await alerts())[0]!.text).toContain("stripe: 6 of 12 calls failed in 5 minutes (50%, threshold 20%)");
  });

  it("a six-hour outage, checked every minute: one alert and one recovered, not hundreds", async () => {
    const d = deps();
    for (let minute = 0; minute < 6 * 60; minute++) {
      const at = T0 + minute * 60_000;
      await calls("hubspot", at, 0, 10);
      await evaluateAlerts(d, at + 1_000);
    }
    const end = T0 + 6 * 60 * 60_000;
    await calls("hubspot", end + 60_000, 20, 0);
    await evaluateAlerts(d, end + 6 * 60_000);
    expect((await alerts()).map((a) => a.kind)).toEqual(["connector_errors", "recovered"]);
  }, 60_000);

  it("two evaluations at the same moment (02:00 runs both crons) raise one alert", async () => {
    await calls("stripe", T0 - 60_000, 0, 10);
    await Promise.all([evaluateAlerts(deps(), T0), evaluateAlerts(deps(), T0 + 5)]);
    expect((await alerts()).map((a) => a.kind)).toEqual(["connector_errors"]);
  });

  it("below MIN_CALLS, or at the threshold, is no incident", async () => {
    const d = deps();
    await calls("postmark", T0 - 60_000, 0, 9);
    await calls("salesforce", T0 - 60_000, 8, 2);
    expect((await evaluateAlerts(d, T0)).raised).toEqual([]);
  });

  it("comes back within the cooldown: quiet, and recovers quietly; after it, alerts again", async () => {
    const d = deps({ cooldownMinutes: 60 });
    await calls("stripe", T0 - 60_000, 0, 10);
    expect((await evaluateAlerts(d, T0)).raised).toEqual(["errors:stripe"]);
    expect((await evaluateAlerts(d, T0 + 10 * 60_000)).recovered).toEqual(["errors:stripe"]);
    await calls("stripe", T0 + 20 * 60_000, 0, 10);
    expect((await evaluateAlerts(d, T0 + 21 * 60_000)).raised).toEqual([]);
    expect((await evaluateAlerts(d, T0 + 30 * 60_000)).recovered).toEqual([]);
    await calls("stripe", T0 + 90 * 60_000, 0, 10);
    expect((await evaluateAlerts(d, T0 + 91 * 60_000)).raised).toEqual(["errors:stripe"]);
    expect((await alerts()).map((a) => a.kind)).toEqual(["connector_errors", "recovered", "connector_errors"]);
  });
});

describe("the other conditions", () => {
  it("an old backlog, new dead letters, a conflict waiting too long: each alerts once with its figure", async () => {
    await env.DB.batch([
      env.DB.prepare("INSERT INTO events (id, source, type, dedupe_key, delivery_id, payload, status, received_at, updated_at) VALUES ('evt_old', 'hubspot', 't', 'k', 'd', '{}', 'retrying', ?, ?)").bind(T0 - 20 * 60_000, T0),
      env.DB.prepare("INSERT INTO dead_letters (id, event_id, action, source, reason, created_at) VALUES ('dl_new', 'evt_old', 'a', 'hubspot', 'r', ?)").bind(T0 - 60_000),
      env.DB.prepare("INSERT INTO conflicts (id, entity_key, field, status, created_at) VALUES ('cf_old', 'contact:1', 'firstname', 'open', ?)").bind(T0 - 25 * 3_600_000),
    ]);
    const d = deps();
    expect((await evaluateAlerts(d, T0)).raised.sort()).toEqual(["backlog", "conflicts", "dead_letters"]);
    expect((await evaluateAlerts(d, T0 + 60_000)).raised).toEqual([]);
    const texts = (await alerts()).map((a) => a.text).join("\n");
    expect(texts).toContain("the oldest unfinished event is 1200 s old (threshold 900 s");
    expect(texts).toContain("a conflict has waited 25 h for a person (threshold 24 h");
  });

  it("takes its thresholds from the configuration", async () => {
    await env.DB.prepare("INSERT INTO events (id, source, type, dedupe_key, delivery_id, payload, status, received_at, updated_at) VALUES ('evt_x', 'hubspot', 't', 'k', 'd', '{}', 'processing', ?, ?)").bind(T0 - 120_000, T0).run();
    expect((await evaluateAlerts(deps({ backlogSeconds: 900 }), T0)).raised).toEqual([]);
    expect((await evaluateAlerts(deps({ backlogSeconds: 60 }), T0)).raised).toEqual(["backlog"]);
  });
});

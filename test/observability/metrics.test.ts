/**
 * Metrics (issue 10): after a scripted mix of successes, failures and slow calls written the way
 * the pipeline writes them (audit rows and their rollups in one batch), GET /api/metrics answers
 * exactly the expected figures, and GET /metrics is Prometheus text a parser reads back to the
 * same numbers. Both behind the admin token.
 */
import { env } from "cloudflare:workers";
// @ts-expect-error: the package ships no types; it parses Prometheus text into metric families.
import parsePrometheus from "parse-prometheus-text-format";
import { beforeEach, describe, expect, it } from "vitest";
import { auditInserts, type AuditRecord } from "../../src/audit/sink";
import { ADMIN_TOKEN, callWorker } from "../http/admin-support";

beforeEach(async () => {
  await env.DB.batch(["metrics_minutes", "audit_log", "events", "dead_letters", "conflicts", "sync_runs"].map((t) => env.DB.prepare(`DELETE FROM ${t}`)));
});

const call = (connector: string, agoMs: number, durationMs: number, outcome: AuditRecord["outcome"] = "success"): AuditRecord => ({
  eventId: "evt_metrics", entityKey: null, action: "test", connector, method: "GET", url: "https://api.example.test/x",
  requestBody: null, status: outcome === "success" ? 200 : 503, responseBody: null, durationMs, attempt: 1, outcome, error: null, createdAt: Date.now() - agoMs,
});

async function script() {
  const rows = [
    ...Array.from({ length: 8 }, () => call("hubspot", 60_000, 20)),
    call("hubspot", 90_000, 300, "transient"),
    call("hubspot", 120_000, 300, "transient"),
    ...Array.from({ length: 5 }, () => call("hubspot", 30 * 60_000, 60)),
    call("stripe", 2 * 3_600_000, 40, "permanent"),
    ...Array.from({ length: 3 }, () => call("stripe", 2 * 3_600_000, 800)),
    call("stripe", 30 * 3_600_000, 5), // over a day ago: in no window
  ];
  // Written as the pipeline writes them: in two batches, so rollups of one minute add up.
  await env.DB.batch(auditInserts(env.DB, rows.slice(0, 9)));
  await env.DB.batch(auditInserts(env.DB, rows.slice(9)));
}

type Metrics = {
  connectors: Record<string, Record<"5m" | "1h" | "24h", { calls: number; errors: number; errorRate: number; p50Ms: number | null; p95Ms: number | null; p99Ms: number | null }>>;
  backlog: { events: number; oldestAgeSeconds: number | null };
  deadLetters: { open: number };
  conflicts: { open: number };
};

describe("GET /api/metrics", () => {
  it("counts calls, errors and latency per connector and window from the rollups", async () => {
    await script();
    const res = await callWorker("/api/metrics");
    expect(res.status).toBe(200);
    const m = (await res.json()) as Metrics;
    expect(m.connectors.hubspot!["5m"]).toMatchObject({ calls: 10, errors: 2, errorRate: 0.2, p50Ms: 25, p95Ms: 500, p99Ms: 500 });
    expect(m.connectors.hubspot!["1h"]).toMatchObject({ calls: 15, errors: 2, p50Ms: 25, p95Ms: 500 });
    expect(m.connectors.hubspot!["24h"]).toMatchObject({ calls: 15, errors: 2 });
    expect(m.connectors.stripe!["5m"]).toMatchObject({ calls: 0, errors: 0, errorRate: 0, p50Ms: null });
    expect(m.connectors.stripe!["24h"]).toMatchObject({ calls: 4, errors: 1, errorRate: 0.25, p50Ms: 1000, p99Ms: 1000 });
  });

  it("shows the backlog and its oldest event, open dead letters and open conflicts", async () => {
    const now = Date.now();
    await env.DB.batch([
      ...[["evt_a", "processing", now - 90_000], ["evt_b", "retrying", now - 30_000], ["evt_c", "done", now - 999_000]].map(([id, status, at]) =>
        env.DB.prepare("INSERT INTO events (id, source, type, dedupe_key, entity_key, delivery_id, payload, status, received_at, occurred_at, updated_at) VALUES (?, 'hubspot', 't', ?, NULL, 'd', '{}', ?, ?, NULL, ?)").bind(id, id, status, at, at),
      ),
      env.DB.prepare("INSERT INTO dead_letters (id, event_id, action, source, reason, created_at) VALUES ('dl_1', 'evt_a', 'x', 'hubspot', 'r', ?)").bind(now),
      env.DB.prepare("INSERT INTO dead_letters (id, event_id, action, source, reason, created_at, replayed_at) VALUES ('dl_2', 'evt_a', 'x', 'hubspot', 'r', ?, ?)").bind(now, now),
      env.DB.prepare("INSERT INTO conflicts (id, entity_key, field, status, created_at) VALUES ('cf_1', 'contact:1', 'firstname', 'open', ?)").bind(now),
    ]);
    const m = (await (await callWorker("/api/metrics")).json()) as Metrics;
    expect(m.backlog).toMatchObject({ events: 2 });
    expect(m.backlog.oldestAgeSeconds).toBeGreaterThanOrEqual(89);
    expect(m.deadLetters.open).toBe(1);
    expect(m.conflicts.open).toBe(1);
  });

  it.each([[null], ["wrong"], [`${ADMIN_TOKEN.slice(0, -1)}x`]])("answers 401 with token %s, at /api/metrics and /metrics", async (token) => {
    for (const path of ["/api/metrics", "/metrics"]) expect((await callWorker(path, { token })).status).toBe(401);
  });
});

describe("GET /metrics", () => {
  it("is Prometheus text that a parser reads back to the same figures", async () => {
    await script();
    const res = await callWorker("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    const text = await res.text();
    const families = parsePrometheus(text) as { name: string; type: string; metrics: { labels?: Record<string, string>; value?: string; buckets?: Record<string, string>; count?: string; sum?: string }[] }[];
    const family = (name: string) => families.find((f) => f.name === name)!;
    const sample = (name: string, labels: Record<string, string>) => family(name).metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    expect(family("syncwire_connector_calls").type).toBe("GAUGE");
    expect(sample("syncwire_connector_calls", { connector: "hubspot", window: "5m" })?.value).toBe("10");
    expect(sample("syncwire_connector_errors", { connector: "stripe", window: "24h" })?.value).toBe("1");
    expect(family("syncwire_connector_latency_seconds").type).toBe("HISTOGRAM");
    // The parser keeps no labels for histogram series, so those are read from the lines themselves.
    const line = (series: string) => text.split("\n").find((l) => l.startsWith(`${series} `))?.split(" ")[1];
    const h = (suffix: string, le?: string) => line(`syncwire_connector_latency_seconds_${suffix}{connector="hubspot",window="1h"${le ? `,le="${le}"` : ""}}`);
    expect([h("bucket", "0.025"), h("bucket", "0.1"), h("bucket", "0.5"), h("bucket", "+Inf"), h("count")]).toEqual(["8", "13", "15", "15", "15"]);
    expect(Number(h("sum"))).toBeCloseTo((8 * 20 + 2 * 300 + 5 * 60) / 1000, 6);
    for (const name of ["syncwire_backlog_events", "syncwire_dead_letters_open", "syncwire_conflicts_open"]) expect(family(name).type).toBe("GAUGE");
  });
});

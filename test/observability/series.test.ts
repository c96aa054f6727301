/**
 * The dashboard's series (src/observability/series.ts) over real D1 rollups: every call lands in
 * the bucket of its minute, on the hour's and the day's ranges, buckets start on :00 and :30, and
 * nothing outside the range is counted.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { readSeries } from "../../src/observability/series";
import { database } from "../../src/pipeline/ledger";
import { seedAudit } from "../http/events-support";

const NOW = Date.parse("2026-05-01T10:17:30.000Z");
const at = (iso: string) => Date.parse(iso);

beforeEach(async () => {
  await env.DB.batch(["audit_log", "metrics_minutes"].map((t) => env.DB.prepare(`DELETE FROM ${t}`)));
  await seedAudit([
    { connector: "hubspot", createdAt: at("2026-05-01T10:16:10Z"), durationMs: 40 },
    { connector: "mailchimp", createdAt: at("2026-05-01T10:16:50Z"), durationMs: 300 },
    { connector: "hubspot", createdAt: at("2026-05-01T09:31:00Z"), durationMs: 40 },
    { connector: "mailchimp", createdAt: at("2026-05-01T09:29:59Z"), outcome: "transient", status: 503, durationMs: 40 },
    // The day's first bucket starts at 10:30 the day before; 10:29 is outside.
    { connector: "hubspot", createdAt: at("2026-04-30T10:30:00Z"), durationMs: 40 },
    { connector: "hubspot", createdAt: at("2026-04-30T10:29:59Z"), durationMs: 40 },
  ]);
});

describe("readSeries", () => {
  it("sums a day in 48 half-hour buckets starting on :00 and :30", async () => {
    const series = await readSeries(database(env.DB), NOW, "24h");
    expect(series.points).toHaveLength(48);
    expect(series.points[0]!.start).toBe("2026-04-30T10:30:00.000Z");
    expect(series.points[47]!.start).toBe("2026-05-01T10:00:00.000Z");
    expect(series.connectors).toEqual(["hubspot", "mailchimp"]);
    const byStart = Object.fromEntries(series.points.filter((p) => p.calls > 0).map((p) => [p.start, { calls: p.calls, errors: p.errors, byConnector: p.byConnector }]));
    expect(byStart).toEqual({
      "2026-04-30T10:30:00.000Z": { calls: 1, errors: 0, byConnector: { hubspot: 1 } },
      "2026-05-01T09:00:00.000Z": { calls: 1, errors: 1, byConnector: { mailchimp: 1 } },
      "2026-05-01T09:30:00.000Z": { calls: 1, errors: 0, byConnector: { hubspot: 1 } },
      "2026-05-01T10:00:00.000Z": { calls: 2, errors: 0, byConnector: { hubspot: 1, mailchimp: 1 } },
    });
    // Latency from the summed histogram: of 40 ms and 300 ms, the median is in the 50 ms bucket, p95 in the 500 ms one.
    expect(series.points[47]).toMatchObject({ p50Ms: 50, p95Ms: 500 });
    expect(series.points[44]).toMatchObject({ start: "2026-05-01T08:30:00.000Z", calls: 0, p50Ms: null, p95Ms: null });
  });

  it("sums the last hour minute by minute, ending with the current minute", async () => {
    const series = await readSeries(database(env.DB), NOW, "1h");
    expect(series.points).toHaveLength(60);
    expect(series.points[0]!.start).toBe("2026-05-01T09:18:00.000Z");
    expect(series.points[59]!.start).toBe("2026-05-01T10:17:00.000Z");
    const busy = series.points.filter((p) => p.calls > 0).map((p) => [p.start, p.calls, p.errors]);
    expect(busy).toEqual([
      ["2026-05-01T09:29:00.000Z", 1, 1],
      ["2026-05-01T09:31:00.000Z", 1, 0],
      ["2026-05-01T10:16:00.000Z", 2, 0],
    ]);
  });
});

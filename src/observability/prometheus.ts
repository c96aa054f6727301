/**
 * The metrics (metrics.ts) in Prometheus's text exposition format (version 0.0.4): `# HELP`,
 * `# TYPE`, one sample per line. The windowed figures are gauges labelled with their `window`;
 * latency is a histogram per connector and window (`_bucket` with cumulative `le` bounds in
 * seconds ending at `+Inf`, `_sum`, `_count`).
 */
import { LATENCY_BOUNDS_MS, WINDOWS, type Metrics, type Window } from "./metrics";

const escape = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const labels = (pairs: Record<string, string>) => `{${Object.entries(pairs).map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`;

export function prometheusText(m: Metrics): string {
  const out: string[] = [];
  const family = (name: string, type: "gauge" | "histogram", help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  const windows = Object.keys(WINDOWS) as Window[];
  const perConnector = (name: string, help: string, value: (c: Metrics["connectors"][string][Window]) => number) => {
    family(name, "gauge", help);
    for (const [connector, byWindow] of Object.entries(m.connectors)) for (const w of windows) out.push(`${name}${labels({ connector, window: w })} ${value(byWindow[w])}`);
  };
  perConnector("syncwire_connector_calls", "Outbound API calls in the window.", (c) => c.calls);
  perConnector("syncwire_connector_errors", "Outbound API calls in the window that failed (transient or permanent).", (c) => c.errors);
  perConnector("syncwire_connector_error_ratio", "Failed calls / calls in the window (0 without calls).", (c) => c.errorRate);

  family("syncwire_connector_latency_seconds", "histogram", "Outbound API call latency in the window.");
  for (const [connector, byWindow] of Object.entries(m.connectors)) {
    for (const w of windows) {
      const c = byWindow[w];
      LATENCY_BOUNDS_MS.forEach((bound, i) => out.push(`syncwire_connector_latency_seconds_bucket${labels({ connector, window: w, le: String(bound / 1000) })} ${c.buckets[i] ?? 0}`));
      out.push(`syncwire_connector_latency_seconds_bucket${labels({ connector, window: w, le: "+Inf" })} ${c.buckets[LATENCY_BOUNDS_MS.length] ?? 0}`);
      out.push(`syncwire_connector_latency_seconds_sum${labels({ connector, window: w })} ${c.sumMs / 1000}`);
      out.push(`syncwire_connector_latency_seconds_count${labels({ connector, window: w })} ${c.calls}`);
    }
  }
  family("syncwire_backlog_events", "gauge", "Events received and not finished (processing or retrying), at most 10000.");
  out.push(`syncwire_backlog_events ${m.backlog.events}`);
  family("syncwire_backlog_oldest_age_seconds", "gauge", "Age of the oldest unfinished event (0 with none).");
  out.push(`syncwire_backlog_oldest_age_seconds ${m.backlog.oldestAgeSeconds ?? 0}`);
  family("syncwire_dead_letters_open", "gauge", "Dead letters not replayed yet, at most 10000.");
  out.push(`syncwire_dead_letters_open ${m.deadLetters.open}`);
  family("syncwire_conflicts_open", "gauge", "Open conflicts, at most 10000.");
  out.push(`syncwire_conflicts_open ${m.conflicts.open}`);
  family("syncwire_sync_run_last_success", "gauge", "1 when the last nightly check run succeeded, 0 when it failed or is running, absent before the first.");
  if (m.lastSyncRun) out.push(`syncwire_sync_run_last_success ${m.lastSyncRun.status === "succeeded" ? 1 : 0}`);
  family("syncwire_sync_run_last_mismatches", "gauge", "Mismatches the last nightly check run found.");
  if (m.lastSyncRun) out.push(`syncwire_sync_run_last_mismatches ${m.lastSyncRun.mismatches.total}`);
  return `${out.join("\n")}\n`;
}

/**
 * The alerts that watch the system (issue 10, CONTRACT 4.10), beyond the nightly check's:
 * - `errors:<connector>`: over the last 5 minutes, more than ALERT_ERROR_RATE_PERCENT of a
 *   connector's calls failed (with at least MIN_CALLS calls, so one failure in two is no incident);
 * - `backlog`: the oldest unfinished event is older than ALERT_BACKLOG_SECONDS;
 * - `dead_letters`: dead letters keep coming (one in the last DEAD_LETTER_WINDOW_MS);
 * - `conflicts`: a conflict has waited for a person longer than ALERT_CONFLICT_HOURS.
 * Evaluated every minute by the cron. Each condition is an incident with a state in D1
 * (`alert_states`): when it starts holding it alerts once, when it stops it says once that it
 * recovered, and a condition that starts again within ALERT_COOLDOWN_MINUTES of its last alert
 * stays quiet until the cooldown has passed (and recovers quietly if it ends before). So a six-hour outage sends one alert and one
 * "recovered", not hundreds. Alerts are recorded and delivered as the nightly check's are
 * (reconcile/alerts.ts).
 */
import type { Config } from "../config";
import type { Db } from "../pipeline/ledger";
import { raiseAlert, type AlertDeps, type AlertKind } from "../reconcile/alerts";
import { readMetrics } from "./metrics";

/** Fewer calls than this in 5 minutes say nothing about a connector's error rate. */
export const MIN_CALLS = 10;
/** Dead letters "keep coming" while one was made this recently. */
export const DEAD_LETTER_WINDOW_MS = 15 * 60_000;

export interface Condition {
  key: string;
  holds: boolean;
  /** What a person reads: the figure against its threshold. */
  detail: string;
}

/** The conditions as they are now. */
export async function conditions(db: Db, config: Config["alerting"], now: number): Promise<Condition[]> {
  const m = await readMetrics(db, now);
  const out: Condition[] = [];
  for (const [connector, windows] of Object.entries(m.connectors)) {
    const w = windows["5m"];
    const holds = w.calls >= MIN_CALLS && w.errorRate > config.errorShare;
    out.push({ key: `errors:${connector}`, holds, detail: `${connector}: ${w.errors} of ${w.calls} calls failed in 5 minutes (${Math.round(w.errorRate * 100)}%, threshold ${Math.round(config.errorShare * 100)}%)` });
  }
  const age = m.backlog.oldestAgeSeconds ?? 0;
  out.push({ key: "backlog", holds: age > config.backlogSeconds, detail: `the oldest unfinished event is ${age} s old (threshold ${config.backlogSeconds} s; ${m.backlog.events}${m.backlog.capped ? "+" : ""} unfinished)` });
  const d1 = db.$client;
  const [recent, conflict] = await Promise.all([
    d1.prepare(`SELECT count(*) AS n FROM (SELECT 1 FROM dead_letters WHERE created_at > ? LIMIT 1000)`).bind(now - DEAD_LETTER_WINDOW_MS).first<{ n: number }>(),
    d1.prepare(`SELECT min(created_at) AS at FROM conflicts WHERE status = 'open'`).first<{ at: number | null }>(),
  ]);
  out.push({ key: "dead_letters", holds: (recent?.n ?? 0) > 0, detail: `${recent?.n ?? 0} new dead letters in 15 minutes (${m.deadLetters.open}${m.deadLetters.capped ? "+" : ""} open)` });
  const waited = conflict?.at ? (now - conflict.at) / 3_600_000 : 0;
  out.push({ key: "conflicts", holds: waited > config.conflictHours, detail: `a conflict has waited ${Math.floor(waited)} h for a person (threshold ${config.conflictHours} h; ${m.conflicts.open} open)` });
  return out;
}

type State = { key: string; active_since: number | null; alerted_at: number | null; last_alert_at: number | null };

const KIND: Record<string, AlertKind> = { errors: "connector_errors", backlog: "backlog", dead_letters: "dead_letters", conflicts: "old_conflict" };
const kindOf = (key: string): AlertKind => KIND[key.split(":")[0]!] ?? "backlog";

/** Evaluates every condition against its state: what starts alerts (outside the cooldown), what ends says it recovered. */
export async function evaluateAlerts(deps: AlertDeps & { config: Config }, now = deps.now()): Promise<{ raised: string[]; recovered: string[] }> {
  const d1 = deps.db.$client;
  const current = await conditions(deps.db, deps.config.alerting, now);
  const { results } = await d1.prepare(`SELECT key, active_since, alerted_at, last_alert_at FROM alert_states`).all<State>();
  const states = new Map(results.map((s) => [s.key, s]));
  const cooldownMs = deps.config.alerting.cooldownMinutes * 60_000;
  const raised: string[] = [];
  const recovered: string[] = [];
  for (const c of current) {
    const state = states.get(c.key);
    let active = state?.active_since ?? null;
    if (c.holds) {
      if (active === null) {
        // The incident starts: claimed in D1 first, so two ticks at once (02:00 runs both crons)
        // agree on one start, and the alert's key below is the same for both.
        const claimed = await d1
          .prepare(`INSERT INTO alert_states (key, active_since, updated_at) VALUES (?1, ?2, ?2)
            ON CONFLICT (key) DO UPDATE SET active_since = ?2, alerted_at = NULL, updated_at = ?2 WHERE alert_states.active_since IS NULL
            RETURNING active_since`)
          .bind(c.key, now)
          .first<{ active_since: number }>();
        active = claimed?.active_since ?? (await d1.prepare(`SELECT active_since FROM alert_states WHERE key = ?`).bind(c.key).first<{ active_since: number | null }>())?.active_since ?? now;
      }
      // Not alerted yet (just started, kept quiet by the cooldown, or its alert lost with the
      // isolate): alerts once the cooldown since the condition's last alert has passed. The key is
      // the incident's start, so doing it twice raises one alert.
      const quiet = state?.last_alert_at != null && now - state.last_alert_at < cooldownMs;
      if (state?.alerted_at == null && !quiet) {
        await raiseAlert(deps, { dedupe: `incident:${c.key}:${active}`, kind: kindOf(c.key), runId: null, text: `Syncwire: ${c.detail}` });
        await d1.prepare(`UPDATE alert_states SET alerted_at = ?1, last_alert_at = ?1, updated_at = ?1 WHERE key = ?2 AND active_since = ?3`).bind(now, c.key, active).run();
        raised.push(c.key);
      }
    } else if (active !== null) {
      // Only an incident that alerted says it recovered; its key makes two ticks say it once.
      if (state?.alerted_at != null) {
        await raiseAlert(deps, { dedupe: `recovered:${c.key}:${active}`, kind: "recovered", runId: null, text: `Syncwire recovered: ${c.detail}` });
        recovered.push(c.key);
      }
      await d1.prepare(`UPDATE alert_states SET active_since = NULL, alerted_at = NULL, updated_at = ? WHERE key = ? AND active_since = ?`).bind(now, c.key, active).run();
    }
  }
  return { raised, recovered };
}

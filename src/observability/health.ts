/**
 * The state of the deployment as GET /health and the dashboard show it: which integrations run,
 * the vendors' budgets, the nightly check, and whether anything needs a person.
 */
import { budgetStatus, durableBudgets } from "../budgets/apis";
import { ConfigError, getConfig, INTEGRATIONS, type Integration } from "../config";
import { database } from "../pipeline/ledger";
import { syncHealth } from "../reconcile/health";
import type { SyncRun } from "../reconcile/runs";

export type HealthReport =
  | { status: "misconfigured"; issues: ConfigError["issues"]; lastSyncRun: null }
  | {
      status: "ok" | "degraded";
      reasons?: string[];
      sandbox: boolean;
      /** "enabled", or "disabled: <why>". */
      integrations: Record<Integration, string>;
      budgets: Awaited<ReturnType<typeof budgetStatus>> | null;
      lastSyncRun: SyncRun | null;
    };

export async function healthReport(env: Env, now: number): Promise<HealthReport> {
  let config;
  try {
    config = getConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Names each key and what is wrong with it, never its value (CONTRACT 2).
    return { status: "misconfigured", issues: error.issues, lastSyncRun: null };
  }
  const integrations = Object.fromEntries(INTEGRATIONS.map((name) => [name, config[name].enabled ? "enabled" : config[name].reason])) as Record<Integration, string>;
  // The vendors' shared budgets (CONTRACT 4.11): what is left, a 429's pause, the daily budget nearing its end.
  const [budgets, sync] = await Promise.all([
    budgetStatus(durableBudgets(env.BUDGET, config), config.budgets, now).catch(() => null),
    syncHealth(database(env.DB), now).catch(() => null),
  ]);
  // Degraded only when something needs a person: no nightly check succeeded in 26 hours, or D1 does not answer.
  const reasons = sync === null ? ["D1 did not answer"] : sync.missedSince !== null ? [`no sync run succeeded since ${new Date(sync.missedSince).toISOString()}`] : [];
  return {
    status: reasons.length > 0 ? "degraded" : "ok",
    ...(reasons.length > 0 ? { reasons } : {}),
    sandbox: config.sandbox,
    integrations,
    budgets,
    lastSyncRun: sync?.lastSyncRun ?? null,
  };
}

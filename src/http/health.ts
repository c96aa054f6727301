/** GET /health: which integrations run, and whether anything needs a person. */
import { Hono } from "hono";
import { ConfigError, getConfig, INTEGRATIONS, type Integration } from "../config";
import { budgetStatus, durableBudgets } from "../budgets/apis";
import { database } from "../pipeline/ledger";
import { syncHealth } from "../reconcile/health";
import type { AppEnv } from "./app-env";

export const health = new Hono<AppEnv>().get("/", async (c) => {
  let config;
  try {
    config = getConfig(c.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Names each key and what is wrong with it, never its value (CONTRACT 2).
    return c.json({ status: "misconfigured", issues: error.issues, lastSyncRun: null }, 503);
  }
  const integrations = Object.fromEntries(
    INTEGRATIONS.map((name: Integration) => {
      const state = config[name];
      return [name, state.enabled ? "enabled" : state.reason];
    }),
  );
  // The vendors' shared budgets (CONTRACT 4.11): what is left, a 429's pause, the daily budget nearing its end.
  const now = Date.now();
  const [budgets, sync] = await Promise.all([
    budgetStatus(durableBudgets(c.env.BUDGET, config), config.budgets, now).catch(() => null),
    syncHealth(database(c.env.DB), now).catch(() => null),
  ]);
  // Degraded only when something needs a person: no nightly check succeeded in 26 hours, or D1 does not answer.
  const reasons = sync === null ? ["D1 did not answer"] : sync.missedSince !== null ? [`no sync run succeeded since ${new Date(sync.missedSince).toISOString()}`] : [];
  return c.json({
    status: reasons.length > 0 ? "degraded" : "ok",
    ...(reasons.length > 0 ? { reasons } : {}),
    sandbox: config.sandbox,
    integrations,
    budgets,
    lastSyncRun: sync?.lastSyncRun ?? null,
  });
});

/** GET /health: which integrations run, and whether anything needs a person. */
import { Hono } from "hono";
import { ConfigError, getConfig, INTEGRATIONS, type Integration } from "../config";
import { budgetStatus, durableBudgets } from "../budgets/apis";
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
  // The nightly sync run (and with it the "no successful run in 26 hours" check) comes with
  // the reconciliation; until then nothing here can be wrong.
  // The vendors' shared budgets (CONTRACT 4.11): what is left, a 429's pause, the daily budget nearing its end.
  const budgets = await budgetStatus(durableBudgets(c.env.BUDGET, config), config.budgets, Date.now()).catch(() => null);
  return c.json({ status: "ok", sandbox: config.sandbox, integrations, budgets, lastSyncRun: null });
});

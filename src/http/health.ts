/** GET /health: which integrations run, and whether anything needs a person. */
import { Hono } from "hono";
import { getConfig, INTEGRATIONS, type Integration } from "../config";
import type { AppEnv } from "./app-env";

export const health = new Hono<AppEnv>().get("/", (c) => {
  const config = getConfig(c.env);
  const integrations = Object.fromEntries(
    INTEGRATIONS.map((name: Integration) => {
      const state = config[name];
      return [name, state.enabled ? "enabled" : state.reason];
    }),
  );
  // The nightly sync run (and with it the "no successful run in 26 hours" check) comes with
  // the reconciliation; until then nothing here can be wrong.
  return c.json({ status: "ok", sandbox: config.sandbox, integrations, lastSyncRun: null });
});

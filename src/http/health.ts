/** GET /health: which integrations run, and whether anything needs a person. */
import { Hono } from "hono";
import { healthReport } from "../observability/health";
import type { AppEnv } from "./app-env";

export const health = new Hono<AppEnv>().get("/", async (c) => {
  const report = await healthReport(c.env, Date.now());
  return c.json(report, report.status === "misconfigured" ? 503 : 200);
});

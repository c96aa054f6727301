/**
 * /sandbox/<system>/… — the built-in fakes, reachable from outside in sandbox mode only
 * (curl them to create a CRM contact or to look at the fake audience). The routes do not exist
 * when SANDBOX is off.
 */
import { Hono } from "hono";
import { getConfig } from "../config";
import { sandboxHost } from "../connectors/transport";
import { errorResponse } from "../errors";
import type { AppEnv } from "./app-env";

export const sandbox = new Hono<AppEnv>().all("/*", (c) => {
  if (!getConfig(c.env).sandbox) return errorResponse("not_found", "no such route");
  const url = new URL(c.req.url);
  url.pathname = url.pathname.replace(/^\/sandbox/, "");
  return sandboxHost(c.env).fetch(new Request(url, c.req.raw));
});

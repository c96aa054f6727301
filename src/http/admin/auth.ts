/**
 * Admin authentication: `Authorization: Bearer <ADMIN_TOKEN>` for every `/api/*` route, and for
 * `/metrics` and `/dashboard` when they arrive (CONTRACT 5). Use it as Hono middleware:
 * `app.use("/metrics", requireAdmin)`.
 */
import type { MiddlewareHandler } from "hono";
import { ConfigError, getConfig, type Config } from "../../config";
import { errorResponse } from "../../errors";
import { constantTimeEqual, sha256Hex } from "../../ingest/crypto";
import type { AppEnv } from "../app-env";

/**
 * The configuration for an operator: the whole one, or, when only other keys are wrong, what
 * could be read. An operator must be able to look at events and resolve conflicts while, say,
 * RETRY_SCHEDULE has a typo (queued work waits for the fix meanwhile, CONTRACT 2). When the
 * token itself (or SANDBOX, which decides its default) is wrong, the ConfigError propagates and
 * app.onError answers 503.
 */
export function operatorConfig(env: object): Config {
  try {
    return getConfig(env);
  } catch (error) {
    if (error instanceof ConfigError && error.partial && !error.issues.some((i) => i.key === "ADMIN_TOKEN" || i.key === "SANDBOX")) return error.partial;
    throw error;
  }
}

// RFC 7235: the scheme is case-insensitive; RFC 6750: one token after it.
const BEARER = /^Bearer +([^\s]+) *$/i;

/** The bearer token of an Authorization header, or null when there is none in that scheme. */
export function bearerToken(header: string | undefined | null): string | null {
  const match = header ? BEARER.exec(header) : null;
  return match?.[1] ?? null;
}

/**
 * Whether `presented` is the admin token. Both are hashed first, so the comparison runs over
 * equal lengths and its time says nothing about the token, not even its length
 * (constantTimeEqual returns early on a length mismatch).
 */
export async function isAdminToken(presented: string, token: string): Promise<boolean> {
  const [a, b] = await Promise.all([sha256Hex(presented), sha256Hex(token)]);
  return constantTimeEqual(a, b);
}

/** A 401 in the error shape, with the challenge RFC 6750 asks for. */
export function unauthorized(message: string): Response {
  const response = errorResponse("unauthorized", message);
  response.headers.set("WWW-Authenticate", 'Bearer realm="syncwire"');
  return response;
}

/** Hono middleware: lets the request through only with the admin bearer token; else 401. Never logs or echoes the token. */
export const requireAdmin: MiddlewareHandler<AppEnv> = async (c, next) => {
  const token = operatorConfig(c.env).adminToken;
  const presented = bearerToken(c.req.header("authorization"));
  if (presented === null) return unauthorized("send Authorization: Bearer <ADMIN_TOKEN>");
  // No token configured (only possible with a config that is already an error): nobody gets in.
  if (token === null || !(await isAdminToken(presented, token))) return unauthorized("the bearer token is not the admin token");
  await next();
};

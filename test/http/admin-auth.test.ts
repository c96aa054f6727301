/**
 * The admin bearer token in front of every /api route, through the worker's fetch handler; and
 * the middleware on its own, as /metrics and /dashboard will use it.
 */
import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigError } from "../../src/config";
import type { AppEnv } from "../../src/http/app-env";
import { bearerToken, operatorConfig, requireAdmin } from "../../src/http/admin/auth";
import { ADMIN_TOKEN, adminRequest, callWorker, type ErrorAnswer } from "./admin-support";

afterEach(() => vi.restoreAllMocks());

async function expectUnauthorized(res: Response, ...secrets: string[]) {
  expect(res.status).toBe(401);
  expect(res.headers.get("www-authenticate")).toMatch(/^Bearer\b/);
  const text = await res.text();
  for (const secret of secrets) expect(text).not.toContain(secret);
  const body = JSON.parse(text) as ErrorAnswer;
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error.code).toBe("unauthorized");
  expect(body.error.message).toEqual(expect.any(String));
}

describe("/api without the admin token", () => {
  it("answers 401 with the error shape when there is no Authorization header", async () => {
    await expectUnauthorized(await callWorker("/api/conflicts", { token: null }), ADMIN_TOKEN);
  });

  it.each([
    ["Basic", `Basic ${btoa(`admin:${ADMIN_TOKEN}`)}`],
    ["Token", `Token ${ADMIN_TOKEN}`],
    ["the bare token", ADMIN_TOKEN],
    ["Bearer with no token", "Bearer "],
    ["two tokens", `Bearer ${ADMIN_TOKEN} ${ADMIN_TOKEN}`],
  ])("answers 401 for a wrong scheme: %s", async (_, header) => {
    await expectUnauthorized(await callWorker("/api/conflicts", { token: null, headers: { authorization: header } }), ADMIN_TOKEN);
  });

  it.each([
    ["a wrong token", "not-the-admin-token"],
    ["the token with an extra character", `${ADMIN_TOKEN}x`],
    ["the token less its last character", ADMIN_TOKEN.slice(0, -1)],
    ["the token in another case", ADMIN_TOKEN.toUpperCase()],
  ])("answers 401 for %s, and echoes neither token", async (_, token) => {
    await expectUnauthorized(await callWorker("/api/conflicts", { token }), ADMIN_TOKEN, token);
  });

  it("guards POST routes before reading their body", async () => {
    const res = await callWorker("/api/conflicts/x/resolve", { token: "wrong-token-000", body: "not json", headers: { "content-type": "text/plain" } });
    await expectUnauthorized(res, ADMIN_TOKEN);
  });

  it("does not say which /api paths exist", async () => {
    await expectUnauthorized(await callWorker("/api/no-such-route", { token: null }));
    const res = await callWorker("/api/no-such-route");
    expect(res.status).toBe(404);
    expect(((await res.json()) as ErrorAnswer).error.code).toBe("not_found");
  });

  it("never logs a presented token or the admin token", async () => {
    const lines: string[] = [];
    for (const level of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
    }
    await callWorker("/api/conflicts", { token: "wrong-token-4242" });
    await callWorker("/api/conflicts");
    await callWorker("/api/conflicts/x/resolve", { token: "wrong-token-4242", json: { choose: "crm" } });
    for (const line of lines) {
      expect(line).not.toContain(ADMIN_TOKEN);
      expect(line).not.toContain("wrong-token-4242");
    }
  });
});

describe("/api with the admin token", () => {
  it("lets the request through", async () => {
    const res = await callWorker("/api/conflicts");
    expect(res.status).toBe(200);
  });

  it("takes the scheme in any case (RFC 7235)", async () => {
    const res = await callWorker("/api/conflicts", { token: null, headers: { authorization: `bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
  });
});

describe("requireAdmin as middleware for other routes", () => {
  const metrics = new Hono<AppEnv>().use("/metrics", requireAdmin).get("/metrics", (c) => c.text("up 1"));

  it("guards a route it is put in front of", async () => {
    await expectUnauthorized(await metrics.fetch(adminRequest("/metrics", { token: "nope-nope-nope" }), env));
    const res = await metrics.fetch(adminRequest("/metrics"), env);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("up 1");
  });
});

describe("the admin token's configuration", () => {
  it("reads a bearer token from the header", () => {
    expect(bearerToken(`Bearer ${ADMIN_TOKEN}`)).toBe(ADMIN_TOKEN);
    expect(bearerToken("Bearer")).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
  });

  it("uses the sandbox's own token in sandbox mode when none is set", () => {
    expect(operatorConfig({ SANDBOX: "true" }).adminToken).toBe("sandbox-admin-token");
    expect(operatorConfig({ SANDBOX: "true", ADMIN_TOKEN: "mine" }).adminToken).toBe("mine");
  });

  it("still admits the operator when only an unrelated key is malformed", () => {
    const config = operatorConfig({ ADMIN_TOKEN: "a-long-enough-admin-token", RETRY_SCHEDULE: "soon" });
    expect(config.adminToken).toBe("a-long-enough-admin-token");
  });

  it("admits nobody when the token itself is invalid (app.onError answers 503)", () => {
    expect(() => operatorConfig({ ADMIN_TOKEN: "short" })).toThrow(ConfigError);
    expect(() => operatorConfig({})).toThrow(ConfigError);
  });
});

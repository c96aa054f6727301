/**
 * GET /openapi.json (issue 10): public, generated from the routes' own schemas, and two walks:
 * every operation it lists but the public ones refuses a call without the admin token (401 with
 * the error shape), so no route can be documented without its guard; and every route the app
 * serves is in it, so none can be served undocumented.
 */
import { describe, expect, it } from "vitest";
import { app } from "../../src/http/app";
import { callWorker } from "./admin-support";

type Doc = { openapi: string; paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, unknown> }>> };

describe("GET /openapi.json", () => {
  it("is served without a token, as OpenAPI 3.1", async () => {
    const res = await callWorker("/openapi.json", { token: null });
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Doc;
    expect(doc.openapi).toBe("3.1.0");
    for (const path of ["/api/events", "/api/events/{id}", "/api/events/{id}/replay", "/api/conflicts", "/api/conflicts/{id}/resolve", "/api/dead-letters", "/api/dead-letters/replay", "/api/sync-runs"]) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
  });

  it("every operation it lists, but the public ones, refuses a call without the admin token, and declares 401", async () => {
    const doc = (await (await callWorker("/openapi.json", { token: null })).json()) as Doc;
    let operations = 0;
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        if (PUBLIC.includes(`${method.toUpperCase()} ${path}`)) {
          expect(operation.security, `${method.toUpperCase()} ${path} is public`).toBeUndefined();
          continue;
        }
        operations++;
        const concrete = path.replace(/\{[^}]+\}/g, "x");
        const res = await callWorker(concrete, { method: method.toUpperCase(), token: null, ...(method === "get" ? {} : { json: {} }) });
        expect(res.status, `${method.toUpperCase()} ${path}`).toBe(401);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
        expect(Object.keys(operation.responses)).toContain("401");
        expect(operation.security).toEqual([{ adminToken: [] }]);
      }
    }
    expect(operations).toBeGreaterThanOrEqual(10);
  });

  it("lists every route the app serves (but the sandbox's fakes, served only in sandbox mode)", async () => {
    const doc = (await (await callWorker("/openapi.json", { token: null })).json()) as Doc;
    const documented = new Set(Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`)));
    const served = app.routes
      // Catch-alls answer 404 or 405 for what no route serves; the sandbox is not the product's API.
      .filter((r) => r.method !== "ALL" && !r.path.startsWith("/sandbox"))
      .map((r) => `${r.method} ${r.path.replace(/:(\w+)\??/g, "{$1}")}`);
    expect(served.length).toBeGreaterThanOrEqual(15);
    for (const route of new Set(served)) expect(documented, route).toContain(route);
  });
});

/** Operations without the admin token: the webhooks (each verified by its provider's signature), health and this document. */
const PUBLIC = ["POST /webhooks/hubspot", "GET /webhooks/mailchimp/{secret}", "POST /webhooks/mailchimp/{secret}", "POST /webhooks/shopify", "GET /health", "GET /openapi.json"];

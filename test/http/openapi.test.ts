/**
 * GET /openapi.json (issue 10): public, generated from the routes' own schemas, and a walk over
 * every operation it lists: each one refuses a call without the admin token (401 with the error
 * shape), so no route can be added to the document without its guard.
 */
import { describe, expect, it } from "vitest";
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

  it("every operation it lists refuses a call without the admin token, and declares 401", async () => {
    const doc = (await (await callWorker("/openapi.json", { token: null })).json()) as Doc;
    let operations = 0;
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        operations++;
        const concrete = path.replace(/\{[^}]+\}/g, "x");
        const res = await callWorker(concrete, { method: method.toUpperCase(), token: null, ...(method === "get" ? {} : { json: {} }) });
        expect(res.status, `${method.toUpperCase()} ${path}`).toBe(401);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
        expect(Object.keys(operation.responses)).toContain("401");
        expect(operation.security).toEqual([{ adminToken: [] }]);
      }
    }
    expect(operations).toBeGreaterThanOrEqual(8);
  });
});

/**
 * GET /openapi.json (issue 10): public, generated from the routes' own schemas, and walks of it:
 * every operation it lists but the public ones refuses a call without the admin token (401 with
 * the error shape), so no route can be documented without its guard; every route the app serves
 * is in it, so none can be served undocumented; and every response, parameter and request body
 * has an example, each error example with a code that `statusOf` maps to the status it is under.
 */
import { describe, expect, it } from "vitest";
import { statusOf, type ErrorCode } from "../../src/errors";
import { app } from "../../src/http/app";
import { ADMIN_TOKEN, callWorker } from "./admin-support";

type Schema = { $ref?: string; example?: unknown; examples?: unknown[] };
type Media = { schema?: Schema; example?: unknown; examples?: Record<string, { value?: unknown }> };
type Parameter = { name: string; in: string; example?: unknown; examples?: Record<string, unknown>; schema?: Schema };
type Operation = {
  security?: unknown[];
  parameters?: Parameter[];
  requestBody?: { content: Record<string, Media> };
  responses: Record<string, { content?: Record<string, Media> }>;
};
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, Schema> } };

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

  it("every operation it lists, but the public ones, refuses a call without the admin token, with a wrong or a near-miss one, and declares 401", async () => {
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
        // No token, a wrong one, and the right one one character off either way.
        for (const token of [null, "not-the-admin-token", `${ADMIN_TOKEN}x`, ADMIN_TOKEN.slice(0, -1)]) {
          const res = await callWorker(concrete, { method: method.toUpperCase(), token, ...(method === "get" ? {} : { json: {} }) });
          expect(res.status, `${method.toUpperCase()} ${path} with ${token}`).toBe(401);
          expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
        }
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

describe("the examples in /openapi.json", () => {
  const document = async () => (await (await callWorker("/openapi.json", { token: null })).json()) as Doc;

  it("every response, parameter and request body has one", async () => {
    const doc = await document();
    const missing: string[] = [];
    let checked = 0;
    for (const [name, operation] of operations(doc)) {
      for (const p of operation.parameters ?? []) {
        checked++;
        if (p.example === undefined && isEmpty(p.examples) && !hasSchemaExample(doc, p.schema)) missing.push(`${name}: parameter ${p.in} ${p.name}`);
      }
      for (const [type, media] of Object.entries(operation.requestBody?.content ?? {})) {
        checked++;
        if (examplesOf(doc, media).length === 0) missing.push(`${name}: request body ${type}`);
      }
      for (const [status, response] of Object.entries(operation.responses)) {
        checked++;
        // A redirect has no body; its headers (Location, Set-Cookie) carry their own examples.
        if (!response.content && !status.startsWith("3")) missing.push(`${name}: ${status} has no content to show`);
        for (const [type, media] of Object.entries(response.content ?? {})) {
          if (examplesOf(doc, media).length === 0) missing.push(`${name}: ${status} ${type}`);
        }
      }
    }
    expect(missing).toEqual([]);
    expect(checked).toBeGreaterThan(100);
  });

  it("every error example has a code that statusOf maps to the status it is listed under", async () => {
    const doc = await document();
    const wrong: string[] = [];
    const codes = new Set<string>();
    for (const [name, operation] of operations(doc)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        for (const [type, media] of Object.entries(response.content ?? {})) {
          // The error shape, wherever an operation answers it (GET /health's 503 is its own report).
          if (media.schema?.$ref !== "#/components/schemas/Error") continue;
          const examples = examplesOf(doc, media);
          if (examples.length === 0) wrong.push(`${name}: ${status} ${type} has no example`);
          for (const example of examples) {
            const error = (example as { error?: { code?: unknown; message?: unknown } }).error;
            const code = typeof error?.code === "string" ? error.code : undefined;
            codes.add(`${status} ${code}`);
            // statusOf answers undefined for a string that is no ErrorCode, so a made-up code fails too.
            if (code === undefined || statusOf(code as ErrorCode) !== Number(status)) wrong.push(`${name}: ${status} has example code ${String(code)} (${code && statusOf(code as ErrorCode)})`);
            if (typeof error?.message !== "string" || error.message === "") wrong.push(`${name}: ${status} ${String(code)} has no message`);
          }
        }
      }
    }
    expect(wrong).toEqual([]);
    // Every status the error shape is documented under, each with its real codes.
    for (const seen of ["400 invalid_request", "400 malformed_body", "400 invalid_payload", "401 unauthorized", "401 invalid_signature", "401 stale_timestamp", "404 not_found", "404 unknown_source", "409 conflict", "413 payload_too_large", "415 unsupported_media_type", "503 unavailable"]) {
      expect(codes).toContain(seen);
    }
  });
});

/** Operations without the admin token: the webhooks (each verified by its provider's signature), health, this document and its reference. */
const PUBLIC = ["POST /webhooks/hubspot", "GET /webhooks/mailchimp/{secret}", "POST /webhooks/mailchimp/{secret}", "POST /webhooks/shopify", "GET /health", "GET /openapi.json", "POST /dashboard/session", "GET /docs"];

const operations = (doc: Doc): [string, Operation][] =>
  Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]): [string, Operation] => [`${method.toUpperCase()} ${path}`, op]));

const isEmpty = (examples: object | undefined) => examples === undefined || Object.keys(examples).length === 0;

/** A schema, through its $ref to the named components. */
function resolve(doc: Doc, schema: Schema | undefined): Schema | undefined {
  let s = schema;
  for (let depth = 0; s?.$ref && depth < 10; depth++) s = doc.components.schemas[s.$ref.replace("#/components/schemas/", "")];
  return s;
}

const hasSchemaExample = (doc: Doc, schema: Schema | undefined) => {
  const s = resolve(doc, schema);
  return s?.example !== undefined || !isEmpty(s?.examples);
};

/**
 * The examples a reader sees for a request or response body: the media type's own (`example`,
 * or each of `examples`), else its schema's, as the reference shows them.
 */
function examplesOf(doc: Doc, media: Media): unknown[] {
  if (media.example !== undefined) return [media.example];
  if (!isEmpty(media.examples)) return Object.values(media.examples!).map((e) => e.value);
  const s = resolve(doc, media.schema);
  if (s?.example !== undefined) return [s.example];
  return s?.examples ?? [];
}

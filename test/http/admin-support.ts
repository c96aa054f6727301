/** Calling the operations API as an operator would, and seeding the tables it reads. */
import { env, exports } from "cloudflare:workers";
import { app } from "../../src/http/app";

export const ADMIN_TOKEN = "test-admin-token"; // vitest.config.ts
export const ORIGIN = "https://syncwire.test";

export interface Call {
  method?: string;
  token?: string | null;
  json?: unknown;
  body?: string;
  headers?: Record<string, string>;
  /** "manual" to see a redirect itself: the worker's fetch follows one by default. */
  redirect?: "follow" | "manual";
}

export function adminRequest(path: string, call: Call = {}): Request {
  const headers = new Headers(call.headers);
  const token = call.token === undefined ? ADMIN_TOKEN : call.token;
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  let body = call.body;
  if (call.json !== undefined) {
    body = JSON.stringify(call.json);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
  }
  return new Request(`${ORIGIN}${path}`, { method: call.method ?? (body === undefined ? "GET" : "POST"), headers, redirect: call.redirect ?? "follow", ...(body === undefined ? {} : { body }) });
}

/** Through the worker's own fetch handler, with the real bindings. */
export const callWorker = (path: string, call?: Call) => exports.default.fetch(adminRequest(path, call));

/** Through the Hono app with some bindings replaced (a refusing queue). */
export const callWith = (bindings: Partial<Env>, path: string, call?: Call) => app.fetch(adminRequest(path, call), { ...env, ...bindings });

export type ErrorAnswer = { error: { code: string; message: string } };

export interface SeedConflict {
  id: string;
  entityKey?: string;
  field?: string;
  crm?: [string | null, number | null];
  email?: [string | null, number | null];
  status?: "open" | "resolved";
  resolution?: "crm" | "email" | null;
  createdAt: number;
}

export async function seedConflicts(rows: SeedConflict[]): Promise<void> {
  await env.DB.batch(
    rows.map((r) =>
      env.DB.prepare(
        "INSERT INTO conflicts (id, entity_key, field, crm_value, crm_at, email_value, email_at, status, resolution, resolved_by, resolved_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ).bind(
        r.id,
        r.entityKey ?? `contact:${r.id}`,
        r.field ?? "firstname",
        r.crm ? r.crm[0] : "Ada",
        r.crm ? r.crm[1] : r.createdAt - 2000,
        r.email ? r.email[0] : "Augusta",
        r.email ? r.email[1] : r.createdAt - 1000,
        r.status ?? "open",
        r.resolution ?? null,
        r.status === "resolved" ? "seed" : null,
        r.status === "resolved" ? r.createdAt + 1 : null,
        r.createdAt,
      ),
    ),
  );
}

export async function conflictRow(id: string) {
  return env.DB.prepare("SELECT status, resolution, resolved_by, resolved_at FROM conflicts WHERE id = ?")
    .bind(id)
    .first<{ status: string; resolution: string | null; resolved_by: string | null; resolved_at: number | null }>();
}

/** A Queue binding that refuses every send, as Queues does when it is briefly unavailable. */
export const refusingQueue = {
  async send() {
    throw new Error("Queue send failed: injected by the test");
  },
  async sendBatch() {
    throw new Error("Queue sendBatch failed: injected by the test");
  },
} as unknown as Queue;

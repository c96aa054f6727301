/**
 * GET /api/conflicts and POST /api/conflicts/:id/resolve: parse, call src/entities/conflicts.ts,
 * map its result to an answer.
 */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { redactorFor } from "../../connectors";
import { listConflicts, resolveConflict } from "../../entities/conflicts";
import { log } from "../../observability/log";
import { database } from "../../pipeline/ledger";
import { r2PayloadStore } from "../../pipeline/payloads";
import type { AppEnv } from "../app-env";
import { operatorConfig } from "./auth";
import { apiError, badBody, BODY_ERRORS, COMMON_ERRORS, errorSpec, PAGE_QUERY } from "./responses";

const Side = z.enum(["crm", "email"]);

const ConflictSide = z
  .object({ value: z.string().nullable(), at: z.iso.datetime().nullable() })
  .nullable()
  .openapi({ description: "One system's value and when it changed it; null when the conflict has nothing from that system." });

const CONFLICT_EXAMPLE = {
  id: "cf_5d0c6a0e-3f9a-4c2b-9e1d-2a7b8c9d0e1f",
  entityKey: "contact:151",
  field: "firstname",
  crm: { value: "Ada", at: "2026-05-01T09:00:00.000Z" },
  email: { value: "Augusta", at: "2026-05-01T09:00:05.000Z" },
  status: "open" as const,
  resolution: null,
  resolvedBy: null,
  resolvedAt: null,
  createdAt: "2026-05-01T09:00:06.000Z",
};

export const Conflict = z
  .object({
    id: z.string(),
    entityKey: z.string().openapi({ description: "The entity whose field conflicts, e.g. `contact:<crm id>`." }),
    field: z.string(),
    crm: ConflictSide,
    email: ConflictSide,
    status: z.enum(["open", "resolved"]),
    resolution: Side.nullable().openapi({ description: "The side chosen, once resolved." }),
    resolvedBy: z.string().nullable(),
    resolvedAt: z.iso.datetime().nullable(),
    createdAt: z.iso.datetime(),
  })
  .openapi("Conflict", { example: CONFLICT_EXAMPLE });

export const ListConflictsQuery = z.object({
  status: z.enum(["open", "resolved"]).optional().openapi({ description: "Only conflicts in this state; all when absent.", example: "open" }),
  ...PAGE_QUERY,
});

export const ConflictPage = z
  .object({
    items: z.array(Conflict),
    nextCursor: z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last page." }),
  })
  .openapi("ConflictPage");
export type ConflictPage = z.infer<typeof ConflictPage>;

export const ResolveConflictBody = z
  .object({
    choose: Side.openapi({ description: "Which system's value wins; it is written to both systems." }),
    by: z.string().trim().min(1).max(100).default("admin").openapi({ description: "Who decided, for the record.", example: "ada@example.com" }),
  })
  .openapi("ResolveConflictRequest");
export type ResolveConflictBody = z.input<typeof ResolveConflictBody>;

export const ResolveConflictAccepted = z
  .object({
    conflict: Conflict,
    eventId: z.string().openapi({ description: "The queued event that applies the choice; see GET /api/events/:id." }),
  })
  .openapi("ResolveConflictAccepted");
export type ResolveConflictAccepted = z.infer<typeof ResolveConflictAccepted>;

const SECURITY = [{ adminToken: [] }];

export const listConflictsRoute = createRoute({
  method: "get",
  path: "/conflicts",
  tags: ["conflicts"],
  summary: "List conflicts, newest first",
  security: SECURITY,
  request: { query: ListConflictsQuery },
  responses: {
    200: {
      description: "A page of conflicts.",
      content: { "application/json": { schema: ConflictPage, example: { items: [CONFLICT_EXAMPLE], nextCursor: "eyJ0IjoxNzc3NjI2MDA2MDAwLCJpZCI6ImNmbF8zZjlhMmMifQ" } } },
    },
    400: errorSpec("A bad `status`, `limit` or `cursor`.", "invalid_request", "limit: Too big: expected number to be <=200"),
    ...COMMON_ERRORS,
  },
});

export const resolveConflictRoute = createRoute({
  method: "post",
  path: "/conflicts/{id}/resolve",
  tags: ["conflicts"],
  summary: "Resolve a conflict",
  description: "Records the choice and queues it; the pipeline then writes the chosen value to both systems.",
  security: SECURITY,
  request: {
    params: z.object({ id: z.string().min(1).max(200).openapi({ param: { name: "id", in: "path" }, example: "cf_5d0c6a0e-3f9a-4c2b-9e1d-2a7b8c9d0e1f" }) }),
    body: { required: true, content: { "application/json": { schema: ResolveConflictBody, example: { choose: "crm", by: "ada@example.com" } } } },
  },
  responses: {
    202: {
      description: "The choice is recorded and on the queue.",
      content: {
        "application/json": {
          schema: ResolveConflictAccepted,
          example: { conflict: { ...CONFLICT_EXAMPLE, status: "resolved", resolution: "crm", resolvedBy: "ada@example.com", resolvedAt: "2026-05-01T10:00:00.000Z" }, eventId: "evt_0f1e2d3c4b5a69788796a5b4c3d2e1f0" },
        },
      },
    },
    // One example, not badBody's two: test/http/conflicts.test.ts pins a single `example` here.
    400: badBody("The body is not JSON (`malformed_body`), or `choose` / `by` is invalid (`invalid_request`).", 'choose: Invalid option: expected one of "crm"|"email"'),
    404: errorSpec("No conflict has this id.", "not_found", "no conflict cf_5d0c6a0e-3f9a-4c2b-9e1d-2a7b8c9d0e1f"),
    409: errorSpec("The conflict was already resolved.", "conflict", "conflict cf_5d0c6a0e-3f9a-4c2b-9e1d-2a7b8c9d0e1f was already resolved: crm was chosen"),
    ...BODY_ERRORS,
    ...COMMON_ERRORS,
  },
});

/** Adds the conflict routes to the /api app. */
export function registerConflicts(api: OpenAPIHono<AppEnv>) {
  return api
    .openapi(listConflictsRoute, async (c) => {
      const page = await listConflicts(database(c.env.DB), c.req.valid("query"));
      if (!page.ok) return apiError(c, page.code, page.message);
      return c.json({ items: page.items, nextCursor: page.nextCursor }, 200);
    })
    .openapi(resolveConflictRoute, async (c) => {
      const { id } = c.req.valid("param");
      const { choose, by } = c.req.valid("json");
      const deps = { db: database(c.env.DB), queue: c.env.EVENTS, store: r2PayloadStore(c.env.PAYLOADS), now: Date.now };
      const result = await resolveConflict(deps, id, choose, by);
      if (result.ok) return c.json({ conflict: result.conflict, eventId: result.eventId }, 202);
      switch (result.reason) {
        case "not_found":
          return apiError(c, "not_found", `no conflict ${id}`);
        case "already_resolved":
          return apiError(c, "conflict", `conflict ${id} was already resolved: ${result.resolution ?? "no side"} was chosen`);
        case "queue_refused":
          // Nothing was recorded: the conflict stays open and a person can simply try again.
          log("enqueue_failed", { source: "syncwire", conflictId: id, error: redactorFor(operatorConfig(c.env)).redact(String(result.error)) }, "error");
          return apiError(c, "unavailable", "the event queue did not accept the event; retry later");
      }
    });
}

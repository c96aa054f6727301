/**
 * What every operations route shares: the error shape as a schema (so the OpenAPI document shows
 * it), error answers built from one code, and the validation hook that turns a zod failure into
 * a 400 `invalid_request` naming the field.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { DEFAULT_PAGE_SIZE, encodeCursor, MAX_PAGE_SIZE } from "../../db/paging";
import { statusOf, type ErrorCode } from "../../errors";

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().openapi({ description: "A stable, machine-readable code, e.g. `not_found`." }),
      message: z.string().openapi({ description: "For a person; may change." }),
    }),
  })
  .openapi("Error");
export type ErrorBody = z.infer<typeof ErrorBody>;

/** An error response for a route's `responses`, with its example. */
export function errorSpec(description: string, code: ErrorCode, message: string) {
  return {
    description,
    content: { "application/json": { schema: ErrorBody, example: { error: { code, message } } } },
  } as const;
}

/**
 * An error response a route answers with more than one code of that status (a webhook's 401: no
 * signature, or a wrong one): one named example per code, so the document shows each.
 */
export function errorSpecOf(description: string, examples: Partial<Record<ErrorCode, string>>) {
  const named = Object.entries(examples).map(([code, message]) => [code, { summary: code, value: { error: { code, message } } }] as const);
  return { description, content: { "application/json": { schema: ErrorBody, examples: Object.fromEntries(named) } } } as const;
}

/** Every /api route that takes a JSON body answers these besides its own. */
export const BODY_ERRORS = {
  413: errorSpec("The body is over 64 KiB.", "payload_too_large", "the body is over 65536 bytes"),
  415: errorSpec("The body is not `application/json`.", "unsupported_media_type", "send the body as application/json"),
} as const;

/** A 400 of a route with a JSON body: not JSON at all, or JSON the schema refuses (`invalid`). */
export const badBody = (description: string, invalid: string) => errorSpecOf(description, { malformed_body: "the body is not valid JSON", invalid_request: invalid });

/**
 * The paging parameters of every list, with examples: the cursor is one the API issues (any list
 * decodes it, so "Test request" with it answers a page, not a 400).
 */
export const PAGE_QUERY = {
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PAGE_SIZE)
    .optional()
    .openapi({ description: `Page size, 1 to ${MAX_PAGE_SIZE}; default ${DEFAULT_PAGE_SIZE}.`, example: DEFAULT_PAGE_SIZE }),
  cursor: z
    .string()
    .min(1)
    .max(500)
    .optional()
    .openapi({ description: "`nextCursor` of the previous page.", example: encodeCursor({ t: Date.UTC(2026, 4, 1, 9), id: "evt_0f1e2d3c4b5a69788796a5b4c3d2e1f0" }) }),
};

/** Every /api route may answer these. */
export const COMMON_ERRORS = {
  401: errorSpec("No admin bearer token, or the wrong one. Comes with `WWW-Authenticate: Bearer`.", "unauthorized", "the bearer token is not the admin token"),
  503: errorSpec("Syncwire's configuration is invalid (GET /health names the keys), or the queue refused the work; retry later.", "unavailable", "the event queue did not accept the event; retry later"),
} as const;

/**
 * An error answer for an openapi route handler. The status comes from `statusOf`, the one map
 * from codes to statuses; it is typed `never` so the answer fits whichever error response the
 * route declares (the tests check the declared status is the one sent).
 */
export function apiError(c: Context, code: ErrorCode, message: string) {
  return c.json({ error: { code, message } } satisfies ErrorBody, statusOf(code) as never);
}

type ValidationResult = { target: string } & ({ success: true } | { success: false; error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] } });

/** The first problem as `field: message`; a problem with the whole input names the input (body, query). */
export function describeInvalid(result: ValidationResult & { success: false }): string {
  const issue = result.error.issues[0];
  const whole = result.target === "json" ? "body" : result.target;
  if (!issue) return `${whole}: invalid`;
  const field = issue.path.length ? issue.path.map(String).join(".") : whole;
  return `${field}: ${issue.message}`;
}

/** OpenAPIHono's defaultHook: a zod failure in params, query or body is a 400 `invalid_request`. */
export function invalidRequestHook(result: ValidationResult, c: Context) {
  if (!result.success) return apiError(c, "invalid_request", describeInvalid(result));
  return undefined;
}

/**
 * Errors as values with codes. Domain code returns `Failure`s; one place
 * (`statusOf`) maps a code to its HTTP status, and the HTTP edge renders
 * `{"error": {"code", "message"}}` (CONTRACT section 3).
 */
export type ErrorCode =
  | "missing_signature"
  | "invalid_signature"
  | "stale_timestamp"
  | "malformed_body"
  | "invalid_payload"
  | "payload_too_large"
  | "unsupported_media_type"
  | "unknown_source"
  | "not_found"
  | "method_not_allowed"
  | "unavailable"
  | "unauthorized"
  | "invalid_request"
  | "conflict"
  | "invalid_config"
  | "internal";

export function statusOf(code: ErrorCode): 400 | 401 | 404 | 405 | 409 | 413 | 415 | 500 | 503 {
  switch (code) {
    case "missing_signature":
    case "invalid_signature":
    case "stale_timestamp":
    case "unauthorized":
      return 401;
    case "malformed_body":
    case "invalid_payload":
    case "invalid_request":
      return 400;
    case "conflict":
      return 409;
    case "payload_too_large":
      return 413;
    case "unsupported_media_type":
      return 415;
    case "unknown_source":
    case "not_found":
      return 404;
    case "method_not_allowed":
      return 405;
    case "unavailable":
      return 503;
    case "invalid_config":
    case "internal":
      return 500;
  }
}

export function errorResponse(code: ErrorCode, message: string): Response {
  return Response.json({ error: { code, message } }, { status: statusOf(code) });
}

/** A tagged failure for validators that do not throw. */
export type Failure = { ok: false; code: ErrorCode; message: string };
export const fail = (code: ErrorCode, message: string): Failure => ({ ok: false, code, message });

/** The first problem a zod parse found, as `path: message`, short enough for an error answer. */
export function describeIssues(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): string {
  const issue = error.issues[0];
  if (!issue) return "invalid";
  const path = issue.path.length ? issue.path.map(String).join(".") : "body";
  return `${path}: ${issue.message}`;
}

/**
 * Keyset paging over D1 rows, shared by every list the operations API serves (events, audit,
 * dead letters, conflicts, sync runs and their mismatches, alerts): the page-size bounds, the
 * cursor (the (time, id) of the last row of a page, opaque to callers), the `(time, id) < cursor`
 * condition (`olderThan`) and the page with its next cursor (`pageOf`). It lives here rather
 * than in src/http/ because the modules that page are the query modules below the HTTP layer;
 * the routes only pass the string through.
 */
import { and, eq, lt, lte, or, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import { z } from "zod";
import { fail, type Failure } from "../errors";

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

// The cursor is the (time, id) of the last row of a page. Opaque to callers (base64url
// JSON), so the paging key can change without breaking their scripts.
const CursorKey = z.object({ t: z.number().int(), id: z.string() });
export type CursorKey = z.infer<typeof CursorKey>;

export function encodeCursor(key: CursorKey): string {
  return btoa(JSON.stringify(key)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function decodeCursor(cursor: string): CursorKey | null {
  try {
    const b64 = cursor.replace(/-/g, "+").replace(/_/g, "/");
    const parsed = CursorKey.safeParse(JSON.parse(atob(b64.padEnd(Math.ceil(b64.length / 4) * 4, "="))));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** The page size a list asks for, within 1..MAX_PAGE_SIZE (DEFAULT_PAGE_SIZE when none). */
export const pageSize = (limit?: number): number => Math.min(Math.max(Math.trunc(limit ?? DEFAULT_PAGE_SIZE), 1), MAX_PAGE_SIZE);

/**
 * A page from `rows` read with one row more than `limit` (which tells whether another page
 * exists without a COUNT), and the cursor of its last row when there is one.
 */
export function pageOf<T>(rows: T[], limit: number, keyOf: (row: T) => CursorKey): { page: T[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { page, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null };
}

/**
 * A newest-first list's condition for the page after `cursor`: `(time, id) < (t, id)` of its
 * key; none without a cursor; a failure for a cursor this API did not issue (or, with `parseId`,
 * whose id is not of the list's kind). The plain `time <= t` repeats the OR's bound in a form
 * any SQLite plan can start an index range at, so a deep page costs what the first one does.
 */
export function olderThan(
  cursor: string | null | undefined,
  time: SQLiteColumn,
  id: SQLiteColumn,
  parseId: (id: string) => string | number | null = (raw) => raw,
): { ok: true; where: SQL | undefined } | Failure {
  if (!cursor) return { ok: true, where: undefined };
  const key = decodeCursor(cursor);
  const keyId = key ? parseId(key.id) : null;
  if (!key || keyId === null) return fail("invalid_request", "cursor: not a cursor this API issued");
  return { ok: true, where: and(lte(time, key.t), or(lt(time, key.t), and(eq(time, key.t), lt(id, keyId))))! };
}

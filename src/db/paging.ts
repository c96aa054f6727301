/**
 * Keyset paging over D1 rows, shared by every list the operations API serves (conflicts in
 * src/entities/conflicts.ts, events in src/pipeline/event-queries.ts): the page-size bounds and
 * the cursor, which is the (time, id) of the last row of a page. It lives here rather than in
 * src/http/ because the modules that page are the query modules below the HTTP layer: they build
 * the `WHERE (t, id) < cursor` condition from the decoded key, and the routes only pass the
 * string through. It lived in conflicts.ts, the first list, until events paged the same way.
 */
import { z } from "zod";

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

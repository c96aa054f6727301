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
type CursorKey = z.infer<typeof CursorKey>;

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

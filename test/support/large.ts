/**
 * Helpers for the size tests: multi-byte text of a chosen length, independent UTF-8 sizing,
 * and reading back what the consumer recorded for an event (its row, and its payload from D1
 * or from the R2 payload store).
 */
import { env } from "cloudflare:workers";
import { waitFor } from "./sandbox";

const encoder = new TextEncoder();

/** UTF-8 size of a string, measured here rather than with anything from src/. */
export const utf8Size = (text: string) => encoder.encode(text).byteLength;

/**
 * Text of exactly `units` UTF-16 code units, mostly 3-byte characters ("€", "中") with 2-byte
 * ("é", "ü") and 4-byte ("😀", a surrogate pair) ones mixed in: 12 units in 30 bytes per cycle,
 * so 2.5 UTF-8 bytes per UTF-16 unit.
 */
export function multiByteText(units: number): string {
  const cycle = "€é中😀€€ü€中😀";
  let text = cycle.repeat(Math.ceil(units / cycle.length));
  text = text.slice(0, units);
  // Never end on half a surrogate pair (that is not UTF-8 text at all).
  const last = text.charCodeAt(text.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) text = `${text.slice(0, -1)}€`;
  return text;
}

/** Text of exactly `units` code units, all 3-byte characters (3 bytes per UTF-16 unit, the worst case). */
export const threeByteText = (units: number) => "€".repeat(units);

export interface RecordedEvent {
  id: string;
  status: string;
  type: string;
  payload: string;
  payload_ref: string | null;
}

/** The `events` rows of `ids` once every one of them has a status in `statuses`. */
export async function waitForEvents(ids: string[], statuses: string[], timeoutMs = 15_000): Promise<Map<string, RecordedEvent>> {
  return waitFor(
    async () => {
      const { results } = await env.DB.prepare(
        "SELECT id, status, type, payload, payload_ref FROM events WHERE id IN (SELECT value FROM json_each(?))",
      )
        .bind(JSON.stringify(ids))
        .all<RecordedEvent>();
      if (results.length !== new Set(ids).size) return undefined;
      if (!results.every((r) => statuses.includes(r.status))) return undefined;
      return new Map(results.map((r) => [r.id, r]));
    },
    timeoutMs,
    `${ids.length} event(s) recorded as ${statuses.join("/")}`,
  );
}

/** The JSON text the pipeline kept for a recorded event: the R2 object when the row has a payload_ref, else the row's payload. */
export async function storedPayloadText(row: RecordedEvent): Promise<string> {
  if (row.payload_ref === null) return row.payload;
  const object = await env.PAYLOADS.get(row.payload_ref);
  if (object === null) throw new Error(`no R2 object at ${row.payload_ref}`);
  return object.text();
}

export async function eventIdsOf(res: Response): Promise<string[]> {
  return ((await res.json()) as { eventIds: string[] }).eventIds;
}

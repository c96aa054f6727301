/**
 * The HTTP and D1 side of `POST /sandbox/_sandbox/seed` (the contract is seed.ts, the generator
 * seed-world.ts and seed-fakes.ts): reading the body, answering bad ones with the error shape of
 * CONTRACT section 3, and writing the email index.
 */
import { errorResponse } from "../errors";
import type { RequestBody } from "./fake-service";
import { parseSeedInput, type IndexRow, type SeedInput } from "./seed";

/** A seed body is a few hundred bytes; anything past this is not one. */
const MAX_BODY_BYTES = 16 * 1024;
/** Rows per INSERT … SELECT FROM json_each(?): one bound JSON text of about 60 KB. */
const ROWS_PER_STATEMENT = 1_000;
/** D1 runs a batch as one transaction; 10,000 rows are 11 statements. */
const STATEMENTS_PER_BATCH = 100;

export async function readSeedRequest(request: Request): Promise<SeedInput | Response> {
  // Read to the end even when too large: the worker is still streaming it into this object, and
  // answering before the stream ends makes that stream fail in the worker.
  const bytes = await request.arrayBuffer();
  if (bytes.byteLength > MAX_BODY_BYTES) return errorResponse("payload_too_large", `a seed body is at most ${MAX_BODY_BYTES} bytes`);
  const text = new TextDecoder().decode(bytes);
  let body: RequestBody;
  if (text.trim() === "") body = { kind: "empty" };
  else {
    try {
      body = { kind: "json", value: JSON.parse(text) as never };
    } catch {
      return errorResponse("malformed_body", "the body is not valid JSON");
    }
  }
  const input = parseSeedInput(body);
  return typeof input === "string" ? errorResponse("invalid_request", input) : input;
}

/**
 * Replaces the email index with the seeded contacts' rows: every row before belonged to contacts
 * the seed just replaced. One D1 batch (one transaction) per 100 statements.
 */
export async function writeIndex(db: D1Database, rows: IndexRow[]): Promise<void> {
  const statements: D1PreparedStatement[] = [db.prepare("DELETE FROM contact_emails")];
  const insert = `INSERT INTO contact_emails (email, contact_key, updated_at)
    SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?1)`;
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    statements.push(db.prepare(insert).bind(JSON.stringify(rows.slice(i, i + ROWS_PER_STATEMENT))));
  }
  for (let i = 0; i < statements.length; i += STATEMENTS_PER_BATCH) await db.batch(statements.slice(i, i + STATEMENTS_PER_BATCH));
}

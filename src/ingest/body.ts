/**
 * Reads a request body with a hard cap, before any parsing or signature work: a declared
 * Content-Length over the cap is refused without reading, and a chunked body is cut off as
 * soon as it passes the cap.
 */
import { fail, type Failure } from "../errors";

export const MAX_BODY_BYTES = 1024 * 1024; // 1 MiB, CONTRACT section 3

export type BodyResult = { ok: true; bytes: Uint8Array; text: string } | Failure;

// fatal: false: invalid UTF-8 still reaches the signature check and JSON parser and fails there.
const decoder = new TextDecoder();
const tooLarge = () => fail("payload_too_large", `body exceeds ${MAX_BODY_BYTES} bytes`);

export async function readBody(request: Request, limit = MAX_BODY_BYTES): Promise<BodyResult> {
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > limit) return tooLarge();
  if (Number.isFinite(declared)) {
    // HTTP framing holds a body to its declared length, so the native read is bounded (and
    // fastest); the size is checked again for a Request built in-process.
    const bytes = new Uint8Array(await request.arrayBuffer());
    if (bytes.byteLength > limit) return tooLarge();
    return { ok: true, bytes, text: decoder.decode(bytes) };
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel();
        return tooLarge();
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { ok: true, bytes, text: decoder.decode(bytes) };
}

/** The media type of a request without parameters, lower-cased; null when absent. */
export function mediaType(request: Request): string | null {
  const header = request.headers.get("content-type");
  if (!header) return null;
  return header.split(";")[0]!.trim().toLowerCase();
}

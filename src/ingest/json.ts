/**
 * JSON parsing that keeps vendor ids exact. Shopify documents 18-digit ids, beyond 2^53; a
 * plain JSON.parse would round them. V8's reviver `context.source` (JSON.parse source text
 * access) gives the literal text, so any integer that is not a safe integer stays a string.
 */
type Reviver = (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown;

const keepUnsafeIntegers: Reviver = (_key, value, context) => {
  if (typeof value === "number" && Number.isInteger(value) && !Number.isSafeInteger(value) && context?.source) {
    return context.source;
  }
  return value;
};

export type JsonResult = { ok: true; value: unknown } | { ok: false; message: string };

export function parseJsonLossless(text: string): JsonResult {
  try {
    return { ok: true, value: JSON.parse(text, keepUnsafeIntegers as Parameters<typeof JSON.parse>[1]) };
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : "invalid JSON" };
  }
}

/** A vendor id as a string, whether the JSON carried it as a number or a string. */
export function idString(value: unknown): string | null {
  if (typeof value === "string" && value.length > 0) return value;
  if (typeof value === "number" && Number.isInteger(value)) return String(value);
  return null;
}

/**
 * JSON parsing that keeps vendor ids exact. Shopify documents 18-digit ids, beyond 2^53; a
 * plain JSON.parse would round them. V8's reviver `context.source` (JSON.parse source text
 * access) gives the literal text, so any integer that is not a safe integer stays a string.
 */
import { z } from "zod";

type Reviver = (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown;

const keepUnsafeIntegers: Reviver = (_key, value, context) => {
  if (typeof value === "number" && Number.isInteger(value) && !Number.isSafeInteger(value) && context?.source) {
    return context.source;
  }
  return value;
};

export type JsonResult = { ok: true; value: unknown } | { ok: false; message: string };

// Integers of 16 or more digits are the only ones that can pass 2^53 (9007199254740992 has 16).
const MAYBE_UNSAFE_INTEGER = /\d{16}/;

export function parseJsonLossless(text: string): JsonResult {
  try {
    // The reviver costs a call per value; most bodies have no long number and skip it.
    const reviver = MAYBE_UNSAFE_INTEGER.test(text) ? (keepUnsafeIntegers as Parameters<typeof JSON.parse>[1]) : undefined;
    return { ok: true, value: JSON.parse(text, reviver) };
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

/**
 * A vendor id sent as a JSON integer (HubSpot's and Shopify's ids): a number, or the digit
 * string parseJsonLossless made of one beyond 2^53. Bounded, because ids travel outside the
 * payload (event ids, entity keys), which a queue message cannot shed when it is too large.
 */
export const integerId = z.union([z.number().int(), z.string().regex(/^\d{1,40}$/)], { error: "expected an integer id" });

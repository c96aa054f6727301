// Stripe's idempotent requests, as docs.stripe.com/api/idempotent_requests describes them for API v1:
// - "Stripe saves the status code and body of the first request made with a given idempotency key
//   after endpoint execution begins. Retries with the same key return the saved response,
//   including 500 errors." A replay carries `Idempotent-Replayed: true`.
// - "If incoming parameters fail validation, or the request conflicts with another that was
//   executing concurrently, no idempotent result is saved because no API endpoint began execution.
//   It is safe to retry these requests." (The concurrent one is answered 409, `idempotency_key_in_use`.)
// - "The idempotency layer compares incoming parameters to those of the original request and errors
//   unless they're the same": 400 `idempotency_error`, and for another endpoint too.
// - Keys are up to 255 characters; they "can be removed from the system automatically after
//   they're at least 24 hours old", and a key reused after that starts a new request.
// - POST only: "Don't send idempotency keys in GET and DELETE requests because it has no effect."
// Keys are kept per API key (a hash of it, never the key).
import { md5Hex } from "./fake-service";
import { canonicalJson, stripeErrorResponse, type FormParams } from "./stripe-form";

export interface SavedResult {
  /** Method, path and canonical parameters of the first request. */
  fingerprint: string;
  status: number;
  /** The answer's body as sent, replayed byte for byte. */
  body: string;
  requestId: string;
  /** Epoch ms, from the fake's clock. */
  at: number;
}

export const IDEMPOTENCY_KEY_MAX_LENGTH = 255;
export const KEY_RETENTION_MS = 24 * 60 * 60 * 1000;

/** Where a key's result is kept: per API key, which is stored only as a short hash. */
export function keyScope(apiKey: string, idempotencyKey: string): string {
  return `${md5Hex(`stripe-idempotency:${apiKey}`).slice(0, 12)}:${idempotencyKey}`;
}

export function fingerprintOf(method: string, pathname: string, params: FormParams): string {
  return `${method} ${pathname} ${canonicalJson(params)}`;
}

/**
 * The saved results, as the fake's data keeps them. Every POST with a key prunes and may save, so
 * neither may look at every saved key (a plain object's keys are listed, and in dictionary mode
 * sorted, in full even to find the first): `idempotencyOrder` lists the scopes oldest first, which
 * pruning and the maxSavedKeys trim take from the front. Both are plain JSON, as the sandbox keeps
 * the data in Durable Object storage.
 */
export interface IdempotencyData {
  /** Saved first answers, by API-key hash and Idempotency-Key. */
  idempotency: Record<string, SavedResult>;
  /**
   * The keys of `idempotency` in the order they were saved, which is the order of their `at` (the
   * fake's clock at saving). Absent in state saved before it existed: orderOf derives it.
   */
  idempotencyOrder?: string[];
}

/** The scopes oldest first; for older state, the record's own key order (insertion order: scopes are never integer-like). */
function orderOf(data: IdempotencyData): string[] {
  return (data.idempotencyOrder ??= Object.keys(data.idempotency));
}

/** Past the retention window ("at least 24 hours old"): as good as gone, pruned or not. */
function expired(saved: SavedResult, now: number): boolean {
  return now - saved.at >= KEY_RETENTION_MS;
}

/**
 * Drops the results past the retention window, oldest first, stopping at the first that is not:
 * saved in time order, the ones after it are younger. (Were the clock ever set back, an expired
 * result could wait behind a younger one; decide treats it as absent all the same.)
 */
export function pruneExpired(data: IdempotencyData, now: number): void {
  const order = orderOf(data);
  let dropped = 0;
  for (; dropped < order.length; dropped++) {
    const saved = data.idempotency[order[dropped]!];
    if (saved !== undefined && !expired(saved, now)) break;
    delete data.idempotency[order[dropped]!];
  }
  if (dropped > 0) order.splice(0, dropped);
}

/** Saves the first answer under `scope`, then forgets the oldest beyond `maxKeys`. */
export function saveResult(data: IdempotencyData, scope: string, saved: SavedResult, maxKeys: number): void {
  const order = orderOf(data);
  if (Object.hasOwn(data.idempotency, scope)) {
    // Only an expired result pruning has not reached (decide took it as absent): it goes, and the
    // new one takes its place at the young end, as if it had been pruned. Rare, hence the search.
    order.splice(order.indexOf(scope), 1);
    delete data.idempotency[scope];
  }
  data.idempotency[scope] = saved;
  order.push(scope);
  const excess = order.length - maxKeys;
  if (excess > 0) for (const old of order.splice(0, excess)) delete data.idempotency[old];
}

export type KeyDecision =
  | { kind: "execute" }
  | { kind: "replay"; saved: SavedResult }
  | { kind: "refuse"; response: Response };

/**
 * What a POST with `key` gets, before its endpoint runs. `inUse`: another request with the key is
 * running now. A result past the retention window counts as absent even where it is still stored.
 */
export function decide(store: Record<string, SavedResult>, scope: string, key: string, fingerprint: string, inUse: boolean, now: number): KeyDecision {
  if (key.length > IDEMPOTENCY_KEY_MAX_LENGTH) {
    return {
      kind: "refuse",
      response: stripeErrorResponse(400, { type: "invalid_request_error", message: `Idempotency-Key must be at most ${IDEMPOTENCY_KEY_MAX_LENGTH} characters long.` }),
    };
  }
  if (inUse) {
    return {
      kind: "refuse",
      response: stripeErrorResponse(409, {
        type: "idempotency_error",
        code: "idempotency_key_in_use",
        message: `There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ${key}. Please try again later.`,
      }),
    };
  }
  const saved = store[scope];
  if (saved === undefined || expired(saved, now)) return { kind: "execute" };
  if (saved.fingerprint !== fingerprint) {
    return {
      kind: "refuse",
      response: stripeErrorResponse(400, {
        type: "idempotency_error",
        message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
      }),
    };
  }
  return { kind: "replay", saved };
}

export function replayResponse(saved: SavedResult, key: string, apiVersion: string): Response {
  return new Response(saved.body, {
    status: saved.status,
    headers: {
      "Content-Type": "application/json",
      "Idempotency-Key": key,
      "Idempotent-Replayed": "true",
      "Request-Id": saved.requestId,
      "Stripe-Version": apiVersion,
    },
  });
}

// Fault injection and the state every fake persists. Fault settings live inside the fake's own
// state so they persist with it (e.g. an outage survives a Durable Object restart) and the
// error-rate PRNG is replayable from its stored seed. The request pipeline and the `/_sandbox/*`
// control endpoints that use them: sandbox-request.ts.
import {
  cloneJson,
  hubspotError,
  mailchimpProblem,
  isPlainObject,
  jsonResponse,
  nextRandom,
  type JsonValue,
  type RequestBody,
  type RequestLogEntry,
} from "./fake-service";
import { rateLimited } from "./hubspot-limits";
import type { Limiter } from "./limits";

export interface FailNext {
  /** How many upcoming vendor calls fail; the setting clears itself when it reaches 0. */
  count: number;
  status: number;
  retryAfterSeconds?: number;
}

export interface FaultState {
  /** Epoch ms until which every vendor call answers 503; null = no outage. */
  outageUntil: number | null;
  /** Probability (0..1) that a vendor call answers 503, drawn from the seeded PRNG below. */
  errorRate: number;
  /** Delay before every vendor answer, faulted or not. */
  latencyMs: number;
  failNext: FailNext | null;
  /** mulberry32 state; advanced only when errorRate > 0. */
  seed: number;
}

/** Everything a fake persists: its vendor data plus the sandbox's own bookkeeping. */
export interface SandboxState<D, L = unknown> {
  data: D;
  faults: FaultState;
  requests: RequestLogEntry[];
  /** The vendor's rate-limit settings and counters (limits.ts); created on first use. */
  limits?: L;
}

/** What the vendor adapter must render in the vendor's own error shape. */
export interface InjectedFault {
  status: number;
  reason: "outage" | "failNext" | "errorRate";
  retryAfterSeconds?: number;
}

export interface SandboxVendor<D> {
  emptyData(): D;
  /** The vendor's error body for an injected fault (Retry-After is added by the caller). */
  faultResponse(fault: InjectedFault): Response;
  /** The vendor API proper, authentication included. */
  handleVendor(request: Request, url: URL, body: RequestBody): Promise<Response>;
  /**
   * Extra `/_sandbox/<name>` routes of this vendor (e.g. HubSpot's webhook settings, which the
   * real HubSpot keeps in its app settings rather than an API); null when `name` is not one.
   */
  handleControl?(request: Request, name: string): Promise<Response | null>;
  /** What `GET /_sandbox/state` shows, when the stored data holds a secret it must not show. */
  publicData?(data: D): unknown;
  /** The vendor's documented rate limits (`/_sandbox/limits`); none when absent. */
  limiter?: Limiter;
}

export const DEFAULT_FAULT_SEED = 0x5eed;
export const REQUEST_LOG_LIMIT = 5000;

export function defaultFaults(): FaultState {
  return { outageUntil: null, errorRate: 0, latencyMs: 0, failNext: null, seed: DEFAULT_FAULT_SEED };
}

/** Adopts persisted state (copied, never aliased) or starts empty; fills fields older states lack. */
export function initSandboxState<D, L>(loaded: SandboxState<D, L> | undefined, emptyData: () => D): SandboxState<D, L> {
  if (loaded === undefined) return { data: emptyData(), faults: defaultFaults(), requests: [] };
  const copy = cloneJson(loaded);
  return {
    data: copy.data ?? emptyData(),
    faults: { ...defaultFaults(), ...copy.faults },
    requests: Array.isArray(copy.requests) ? copy.requests : [],
    ...(copy.limits === undefined ? {} : { limits: copy.limits }),
  };
}

/** Decides whether this vendor call fails; consumes failNext and PRNG state as a side effect. */
export function takeFault(faults: FaultState, now: number): InjectedFault | null {
  if (faults.outageUntil !== null) {
    if (now < faults.outageUntil) return { status: 503, reason: "outage" };
    faults.outageUntil = null; // the outage is over; the state shows it
  }
  if (faults.failNext !== null && faults.failNext.count > 0) {
    const { status, retryAfterSeconds } = faults.failNext;
    faults.failNext.count -= 1;
    if (faults.failNext.count <= 0) faults.failNext = null;
    return retryAfterSeconds === undefined
      ? { status, reason: "failNext" }
      : { status, reason: "failNext", retryAfterSeconds };
  }
  if (faults.errorRate > 0) {
    const draw = nextRandom(faults.seed);
    faults.seed = draw.seed;
    if (draw.value < faults.errorRate) return { status: 503, reason: "errorRate" };
  }
  return null;
}

export function publicFaults(faults: FaultState): Record<string, JsonValue> {
  const { outageUntil, errorRate, latencyMs, failNext, seed } = faults;
  return { outageUntil, errorRate, latencyMs, failNext: failNext === null ? null : { ...failNext }, seed };
}

/** Merges `{outageSeconds?, errorRate?, latencyMs?, failNext?, seed?}` into the fault settings. */
export function updateFaults(faults: FaultState, body: RequestBody, now: number): Response {
  const input = body.kind === "json" ? body.value : body.kind === "empty" ? {} : null;
  if (!isPlainObject(input)) return badControl("body must be a JSON object");
  const allowed = new Set(["outageSeconds", "errorRate", "latencyMs", "failNext", "seed"]);
  const unknown = Object.keys(input).find((k) => !allowed.has(k));
  if (unknown !== undefined) return badControl(`unknown field "${unknown}"`);

  const { outageSeconds, errorRate, latencyMs, failNext, seed } = input;
  if (outageSeconds !== undefined && !isNonNegative(outageSeconds)) return badControl("outageSeconds must be a number >= 0");
  if (errorRate !== undefined && !(isNonNegative(errorRate) && errorRate <= 1)) return badControl("errorRate must be within 0..1");
  if (latencyMs !== undefined && !isNonNegative(latencyMs)) return badControl("latencyMs must be a number >= 0");
  if (seed !== undefined && !Number.isInteger(seed)) return badControl("seed must be an integer");
  const parsedFailNext = failNext === undefined ? undefined : parseFailNext(failNext);
  if (typeof parsedFailNext === "string") return badControl(parsedFailNext);

  if (typeof outageSeconds === "number") faults.outageUntil = outageSeconds > 0 ? now + outageSeconds * 1000 : null;
  if (typeof errorRate === "number") faults.errorRate = errorRate;
  if (typeof latencyMs === "number") faults.latencyMs = latencyMs;
  if (typeof seed === "number") faults.seed = seed | 0;
  if (parsedFailNext !== undefined) faults.failNext = parsedFailNext;
  return jsonResponse(publicFaults(faults));
}

/** Returns the parsed setting, null to clear it, or an error message. */
function parseFailNext(value: JsonValue): FailNext | null | string {
  if (value === null) return null;
  if (!isPlainObject(value)) return "failNext must be an object or null";
  const { count, status, retryAfterSeconds } = value;
  if (!(Number.isInteger(count) && isNonNegative(count))) return "failNext.count must be an integer >= 0";
  if (!(Number.isInteger(status) && typeof status === "number" && status >= 400 && status <= 599)) {
    return "failNext.status must be an HTTP error status (400..599)";
  }
  if (retryAfterSeconds !== undefined && !isNonNegative(retryAfterSeconds)) {
    return "failNext.retryAfterSeconds must be a number >= 0";
  }
  if (count === 0) return null;
  return typeof retryAfterSeconds === "number" ? { count, status, retryAfterSeconds } : { count, status };
}

function isNonNegative(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}

function badControl(message: string): Response {
  return jsonResponse({ error: message }, 400);
}

// ---- vendor error bodies for injected faults ------------------------------------------------

/** Injected faults in HubSpot's shapes; 429 is the ten-secondly body of HubSpot's usage docs (hubspot-limits.ts). */
export function hubspotFaultResponse(fault: InjectedFault): Response {
  if (fault.status === 429) return rateLimited("TEN_SECONDLY_ROLLING");
  const categories: Record<number, string> = {
    400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES", 404: "OBJECT_NOT_FOUND", 409: "CONFLICT",
  };
  const message = fault.status >= 500 ? "Service Unavailable" : "Injected sandbox error";
  return hubspotError(fault.status, message, categories[fault.status]);
}

/** Injected faults with the glossary's titles for the common statuses. */
export function mailchimpFaultResponse(fault: InjectedFault): Response {
  const known: Record<number, [string, string]> = {
    400: ["Bad Request", "Your request could not be processed."],
    403: ["Forbidden", "You don't have permission to access this resource."],
    404: ["Resource Not Found", "The requested resource could not be found."],
    429: ["Too Many Requests", "You have exceeded the limit of 10 simultaneous connections."],
    500: ["Internal Server Error", "An unexpected internal error has occurred. Please contact Support for more information."],
    503: ["Service Unavailable", "The service is temporarily unavailable. Please try again later."],
  };
  const [title, detail] = known[fault.status] ?? ["Error", "An injected sandbox error occurred."];
  return mailchimpProblem(fault.status, title, detail);
}

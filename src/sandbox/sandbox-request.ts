// How every fake answers a request: the `/_sandbox/*` control endpoints first (never limited or
// faulted, no auth), then the vendor's rate limit, faults, latency and the vendor handler, with
// each vendor call appended to the request log.
import { jsonResponse, parsePath, readBody, type RequestLogEntry } from "./fake-service";
import {
  defaultFaults,
  publicFaults,
  REQUEST_LOG_LIMIT,
  takeFault,
  updateFaults,
  type InjectedFault,
  type SandboxState,
  type SandboxVendor,
} from "./faults";
import { limitsControl, withHeaders } from "./limits";

const CONTROL_PREFIX = "/_sandbox/";
const CONTROLS = ["faults", "requests", "state", "reset", "limits"];

export async function handleSandboxRequest<D, L>(
  state: SandboxState<D, L>,
  vendor: SandboxVendor<D>,
  request: Request,
  path: string,
  now: () => number,
): Promise<Response> {
  const url = parsePath(path);
  if (url.pathname.startsWith(CONTROL_PREFIX)) return handleControl(state, vendor, request, url, now);

  // Admitted on arrival: a Mailchimp connection is open from here until the answer is made.
  const admission = vendor.limiter?.admit(request, now()) ?? null;
  try {
    const body = await readBody(request);
    let response: Response;
    if (admission?.rejection) {
      if (state.faults.latencyMs > 0) await sleep(state.faults.latencyMs);
      response = admission.rejection;
    } else {
      const fault = takeFault(state.faults, now());
      if (state.faults.latencyMs > 0) await sleep(state.faults.latencyMs);
      response = fault !== null ? renderFault(vendor, fault) : await vendor.handleVendor(request, url, body);
    }
    if (admission !== null) response = withHeaders(response, admission.headers);
    logRequest(state, {
      at: now(),
      method: request.method,
      path: url.pathname + url.search,
      status: response.status,
      body: body.kind === "json" ? body.value : null,
    });
    return response;
  } finally {
    admission?.release();
  }
}

function renderFault<D>(vendor: SandboxVendor<D>, fault: InjectedFault): Response {
  const response = vendor.faultResponse(fault);
  if (fault.retryAfterSeconds !== undefined) {
    response.headers.set("Retry-After", String(Math.ceil(fault.retryAfterSeconds)));
  }
  return response;
}

function logRequest<D, L>(state: SandboxState<D, L>, entry: RequestLogEntry): void {
  state.requests.push(entry);
  const excess = state.requests.length - REQUEST_LOG_LIMIT;
  if (excess > 0) state.requests.splice(0, excess);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function handleControl<D, L>(
  state: SandboxState<D, L>,
  vendor: SandboxVendor<D>,
  request: Request,
  url: URL,
  now: () => number,
): Promise<Response> {
  const name = url.pathname.slice(CONTROL_PREFIX.length);
  const own = await vendor.handleControl?.(request, name);
  if (own) return own;
  const limits = await limitsControl(vendor.limiter, request, name, now());
  if (limits) return limits;
  const route = `${request.method} ${name}`;
  switch (route) {
    case "GET faults":
      return jsonResponse(publicFaults(state.faults));
    case "POST faults":
      return updateFaults(state.faults, await readBody(request), now());
    case "GET requests":
      return jsonResponse({ requests: state.requests });
    case "GET state":
      return jsonResponse(vendor.publicData ? vendor.publicData(state.data) : state.data);
    case "POST reset": {
      // Ids are never reused, as a real vendor's never are: what Syncwire keeps per contact
      // (its Durable Object) outlives a reset of the fake.
      const counters = Object.entries(state.data as object).filter(([key, value]) => key.startsWith("next") && typeof value === "number");
      state.data = { ...vendor.emptyData(), ...Object.fromEntries(counters) };
      state.faults = defaultFaults();
      state.requests = [];
      // Limit settings back to the fake's options, counters to zero.
      vendor.limiter?.reset();
      return jsonResponse({ ok: true });
    }
    default:
      return CONTROLS.includes(name)
        ? jsonResponse({ error: `method ${request.method} not allowed` }, 405)
        : jsonResponse({ error: `unknown sandbox endpoint ${url.pathname}` }, 404);
  }
}

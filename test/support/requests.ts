/** Reading the fakes' request logs (`/_sandbox/requests`); no workerd import, so e2e tests can use it too. */
export interface LoggedRequest {
  at: number;
  method: string;
  path: string;
  status: number;
  body: unknown;
}

/**
 * What each request wrote, one entry per contact or member: a bulk call (HubSpot batch/update or
 * batch/create, Mailchimp's batch subscribe) counts once per input, with that input as its body;
 * reads (GET, and HubSpot's batch/read) count none.
 */
export function itemWrites(requests: LoggedRequest[]): LoggedRequest[] {
  return requests.flatMap((r) => {
    const path = r.path.split("?")[0]!;
    if (r.method === "GET" || path.endsWith("/batch/read")) return [];
    const body = (r.body ?? {}) as { inputs?: unknown[]; members?: unknown[] };
    if (path.includes("/batch/")) return (body.inputs ?? []).map((input) => ({ ...r, body: input }));
    if (r.method === "POST" && /^\/3\.0\/lists\/[^/]+$/.test(path)) return (body.members ?? []).map((member) => ({ ...r, body: member }));
    return [r];
  });
}


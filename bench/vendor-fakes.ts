/**
 * The HubSpot and Mailchimp fakes of the contact sync, served as local HTTP servers with the
 * vendors' documented limits on and every vendor call tallied by kind: bench/end-to-end.ts
 * measures against them, bench/ingest.ts serves them so an unexpected outbound call is answered
 * and counted, not hung. A module of its own because the tallies and their counting wrappers are
 * most of the bench's shared code and only these phases need them; the Shopify fan-out's fakes
 * are in order-fakes.ts.
 */
import { performance } from "node:perf_hooks";
import { createFakeHubSpot, type FakeHubSpotState } from "../src/sandbox/fake-hubspot";
import { createFakeMailchimp, subscriberHash } from "../src/sandbox/fake-mailchimp";
import type { FakeService } from "../src/sandbox/fake-service";
import { mountFake, serveFetch } from "../test/support/serve-fetch";
import { CREDENTIALS, track, type Served } from "./harness";

export interface MailchimpTally {
  /**
   * Successful member writes per subscriber hash: a 2xx PUT of the member, or the member's entry in
   * a batch subscribe's `new_members` / `updated_members`. Exactly-once means every value is 1.
   */
  writesByMember: Map<string, number>;
  /** performance.now() of the last successful member write (PUT or batch), when the fake had its answer ready. */
  lastWriteOkAt: number;
  /** Member writes refused: a non-2xx PUT, every member of a non-2xx batch, every entry of a batch's `errors`. */
  writesFailed: number;
  /** Single member PUTs sent (answered or not). */
  puts: number;
  /** Batch subscribe calls (POST /3.0/lists/{list_id}) and the members they carried. */
  batchCalls: number;
  batchMembers: number;
  /** Every vendor call (not `/_sandbox/`), 429s included. */
  requests: number;
  /** Vendor calls answered 429 (as the wrapper saw them; the fake's own counters are read from /_sandbox/limits). */
  status429: number;
}

export interface HubSpotTally {
  /**
   * Successful CRM writes per contact id, with the `lastname` each one set (undefined: none): a 2xx
   * PATCH of the contact, or the contact's entry in the `results` of a batch/update.
   */
  patchesByContact: Map<string, (string | undefined)[]>;
  /** performance.now() of the last successful CRM write (PATCH or batch/update), when the fake had its answer ready. */
  lastPatchOkAt: number;
  /** CRM writes refused: a non-2xx PATCH, every input of a batch/update not among its results. */
  patchesFailed: number;
  /** Single contact reads (GET). */
  gets: number;
  /** batch/read calls and the inputs they carried. */
  batchReads: number;
  batchReadInputs: number;
  /** Single PATCHes sent (answered or not). */
  patches: number;
  /** batch/update calls and the inputs they carried. */
  batchUpdates: number;
  batchUpdateInputs: number;
  /** Other POSTs: searches, creations (an email-platform event whose address the index did not know), batch/create. */
  posts: number;
  /** Every vendor call (not `/_sandbox/`), 429s included. */
  requests: number;
  status429: number;
}

/** `GET /_sandbox/limits` of the fake HubSpot (hubspot-limits.ts `view`). */
export interface HubSpotLimitCounters {
  max: number;
  intervalMs: number;
  daily: number;
  window: number;
  dailyCount: number;
  accepted: number;
  rejected: number;
  rejectedByPolicy: { TEN_SECONDLY_ROLLING: number; DAILY: number };
}

/** `GET /_sandbox/limits` of the fake Mailchimp (mailchimp-limits.ts `view`). */
export interface MailchimpLimitCounters {
  maxConnections: number;
  inFlight: number;
  peak: number;
  accepted: number;
  rejected: number;
}

export interface VendorFakes {
  hubspot: Served & { service: FakeService<FakeHubSpotState>; tally: HubSpotTally; limits(): Promise<HubSpotLimitCounters> };
  mailchimp: Served & { tally: MailchimpTally; limits(): Promise<MailchimpLimitCounters>; resetLimitCounters(): Promise<void> };
  close(): Promise<void>;
}

export interface Contact {
  id: string;
  email: string;
  firstname: string;
  lastname: string;
}

type Json = Record<string, unknown>;
const jsonOf = (r: Request | Response): Promise<Json | null> => r.clone().json().then((v: unknown) => (v !== null && typeof v === "object" ? (v as Json) : null)).catch(() => null);
const listOf = (v: unknown): Json[] => (Array.isArray(v) ? v.filter((x): x is Json => x !== null && typeof x === "object") : []);

/** A fake's limits control endpoint, called in-process (never limited, no auth). */
async function limitsControl(service: FakeService<unknown>, body?: Json): Promise<Json> {
  const request = body === undefined
    ? new Request("http://fake/_sandbox/limits")
    : new Request("http://fake/_sandbox/limits", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const response = await service.handle(request, "/_sandbox/limits");
  if (!response.ok) throw new Error(`/_sandbox/limits answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as Json;
}

/**
 * Serves fresh fakes with their documented limits on (HubSpot 100 per 10 s and 250,000 a day,
 * Mailchimp 10 simultaneous connections: the fakes' defaults). Contacts are created through the
 * fake's own API in-process (so they have exactly the shape it renders) with the limits switched
 * off, then the limits go back on with every counter zeroed (window, day, 429s) and the request
 * log is emptied: seeding costs the product none of its rate. Calls are counted by wrapping the
 * handlers rather than reading `/_sandbox/requests`, which keeps only 5000 entries.
 */
export async function startVendorFakes(contactCount: number, random: () => number): Promise<VendorFakes & { contacts: Contact[] }> {
  const hubspotService = createFakeHubSpot({ accessToken: CREDENTIALS.hubspotToken });
  await limitsControl(hubspotService, { enabled: false });
  const contacts: Contact[] = [];
  for (let i = 0; i < contactCount; i++) {
    const email = `bench.${i}.${Math.floor(random() * 1e9).toString(36)}@example.com`;
    const firstname = `First${i}`;
    const lastname = `Last${i}`;
    const response = await hubspotService.handle(
      new Request("http://fake/crm/v3/objects/contacts", {
        method: "POST",
        headers: { authorization: `Bearer ${CREDENTIALS.hubspotToken}`, "content-type": "application/json" },
        body: JSON.stringify({ properties: { email, firstname, lastname } }),
      }),
      "/crm/v3/objects/contacts",
    );
    if (response.status !== 201) throw new Error(`seeding contact ${i} failed: ${response.status} ${await response.text()}`);
    const { id } = (await response.json()) as { id: string };
    contacts.push({ id, email, firstname, lastname });
  }
  const hubspotLimits = await limitsControl(hubspotService, { enabled: true, resetCounters: true });
  if (hubspotLimits.accepted !== 0 || hubspotLimits.dailyCount !== 0 || hubspotLimits.enabled !== true) {
    throw new Error(`the fake HubSpot's limits were not reset after seeding: ${JSON.stringify(hubspotLimits)}`);
  }
  hubspotService.state.requests = [];

  const hubspotTally: HubSpotTally = {
    patchesByContact: new Map(),
    lastPatchOkAt: 0,
    patchesFailed: 0,
    gets: 0,
    batchReads: 0,
    batchReadInputs: 0,
    patches: 0,
    batchUpdates: 0,
    batchUpdateInputs: 0,
    posts: 0,
    requests: 0,
    status429: 0,
  };
  const wrote = (contactId: string, lastname: string | undefined) => {
    hubspotTally.patchesByContact.set(contactId, [...(hubspotTally.patchesByContact.get(contactId) ?? []), lastname]);
    hubspotTally.lastPatchOkAt = performance.now();
  };
  const hubspotHandler = mountFake(hubspotService);
  const hubspot = await serveFetch(async (req) => {
    const path = new URL(req.url).pathname;
    if (path.startsWith("/_sandbox/")) return hubspotHandler(req);
    const t = hubspotTally;
    t.requests++;
    const contactId = /^\/crm\/v3\/objects\/contacts\/([^/?]+)$/.exec(path)?.[1];
    const batch = /^\/crm\/v3\/objects\/contacts\/batch\/([a-z]+)$/.exec(path)?.[1];
    const sent = req.method === "PATCH" || batch === "update" || batch === "read" ? await jsonOf(req) : null;
    const inputs = listOf(sent?.inputs);
    if (req.method === "GET" && contactId !== undefined) t.gets++;
    else if (req.method === "PATCH" && contactId !== undefined) t.patches++;
    else if (req.method === "POST" && batch === "read") {
      t.batchReads++;
      t.batchReadInputs += inputs.length;
    } else if (req.method === "POST" && batch === "update") {
      t.batchUpdates++;
      t.batchUpdateInputs += inputs.length;
    } else if (req.method === "POST") t.posts++;
    const response = await hubspotHandler(req);
    if (response.status === 429) t.status429++;
    if (req.method === "PATCH" && contactId !== undefined) {
      if (response.ok) wrote(contactId, (sent?.properties as Record<string, string> | undefined)?.lastname);
      else t.patchesFailed++;
    } else if (req.method === "POST" && batch === "update") {
      // 200 or 207: each contact among the results was written; every other input was not.
      const answer = response.ok ? await jsonOf(response) : null;
      const lastnameOf = new Map(inputs.map((input) => [String(input.id), (input.properties as Record<string, string> | undefined)?.lastname]));
      const written = listOf(answer?.results).map((r) => String(r.id)).filter((id) => lastnameOf.has(id));
      for (const id of written) wrote(id, lastnameOf.get(id));
      t.patchesFailed += inputs.length - written.length;
    }
    return response;
  });
  const closeHubspot = track(() => hubspot.close());

  const tally: MailchimpTally = { writesByMember: new Map(), lastWriteOkAt: 0, writesFailed: 0, puts: 0, batchCalls: 0, batchMembers: 0, requests: 0, status429: 0 };
  const memberWritten = (hash: string) => {
    tally.writesByMember.set(hash, (tally.writesByMember.get(hash) ?? 0) + 1);
    tally.lastWriteOkAt = performance.now();
  };
  const mailchimpService = createFakeMailchimp({ apiKey: CREDENTIALS.mailchimpKey, listIds: [CREDENTIALS.listId] });
  const mailchimpHandler = mountFake(mailchimpService);
  const mailchimp = await serveFetch(async (req) => {
    const path = new URL(req.url).pathname;
    if (path.startsWith("/_sandbox/")) return mailchimpHandler(req);
    tally.requests++;
    const member = /\/members\/([0-9a-f]{32})$/.exec(path)?.[1];
    const isBatch = req.method === "POST" && /^\/3\.0\/lists\/[^/]+$/.test(path);
    const members = isBatch ? listOf((await jsonOf(req))?.members) : [];
    if (req.method === "PUT" && member !== undefined) tally.puts++;
    if (isBatch) {
      tally.batchCalls++;
      tally.batchMembers += members.length;
    }
    const response = await mailchimpHandler(req);
    if (response.status === 429) tally.status429++;
    if (req.method === "PUT" && member !== undefined) {
      if (response.ok) memberWritten(member);
      else tally.writesFailed++;
    } else if (isBatch) {
      // 200 even when members were refused: each one in new_members or updated_members was written.
      const answer = response.ok ? await jsonOf(response) : null;
      const written = [...listOf(answer?.new_members), ...listOf(answer?.updated_members)].filter((m) => typeof m.email_address === "string");
      for (const m of written) memberWritten(subscriberHash(m.email_address as string));
      tally.writesFailed += response.ok ? listOf(answer?.errors).length : members.length;
    }
    return response;
  });
  const closeMailchimp = track(() => mailchimp.close());

  return {
    contacts,
    hubspot: {
      url: hubspot.url,
      close: closeHubspot,
      service: hubspotService,
      tally: hubspotTally,
      limits: async () => (await limitsControl(hubspotService)) as unknown as HubSpotLimitCounters,
    },
    mailchimp: {
      url: mailchimp.url,
      close: closeMailchimp,
      tally,
      limits: async () => (await limitsControl(mailchimpService)) as unknown as MailchimpLimitCounters,
      resetLimitCounters: async () => void (await limitsControl(mailchimpService, { resetCounters: true })),
    },
    close: async () => {
      await closeHubspot();
      await closeMailchimp();
    },
  };
}

/** Sets faults on a served fake through its documented control endpoint. */
export async function setFaults(fakeUrl: string, faults: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${fakeUrl}/_sandbox/faults`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(faults),
  });
  if (!response.ok) throw new Error(`setting faults failed: ${response.status} ${await response.text()}`);
}

/**
 * HubSpot CRM v3 contacts, with a private-app token as `Authorization: Bearer`.
 * https://developers.hubspot.com/docs/api-reference/crm-contacts-v3
 */
import { z } from "zod";
import type { HubSpotConfig } from "../config";
import { ActionFailure } from "./errors";
import type { HttpClient } from "./http-client";

/** One version of a property, newest first in `propertiesWithHistory`. */
const PropertyVersion = z.looseObject({ value: z.string().nullable().optional(), timestamp: z.string() });

export const HubSpotContact = z.looseObject({
  id: z.string(),
  properties: z.record(z.string(), z.string().nullable()),
  propertiesWithHistory: z.record(z.string(), z.array(PropertyVersion)).optional(),
  createdAt: z.string().optional(),
  updatedAt: z.string().optional(),
  archived: z.boolean().optional(),
});
export type HubSpotContact = z.infer<typeof HubSpotContact>;

/** One error of a batch answer: HubSpot lists missing ids under `context.ids`. */
const BatchError = z.looseObject({
  status: z.string().optional(),
  category: z.string().optional(),
  message: z.string().optional(),
  context: z.record(z.string(), z.array(z.string())).optional(),
});

/** A batch answer (200, or 207 with errors). */
const BatchAnswer = z.looseObject({ results: z.array(HubSpotContact), errors: z.array(BatchError).optional() });

export interface BatchOutcome {
  results: HubSpotContact[];
  /** Inputs HubSpot did not find (error category OBJECT_NOT_FOUND). */
  missing: string[];
}

/** Most inputs of one batch call ("limited to 100 inputs per request"); 50 when property histories are asked for. */
export const HUBSPOT_BATCH_MAX = 100;
export const HUBSPOT_HISTORY_BATCH_MAX = 50;

export const CONTACT_PROPERTIES = ["email", "firstname", "lastname"] as const;

/** The most contacts one page of GET /crm/v3/objects/contacts holds. */
export const HUBSPOT_LIST_MAX = 100;

const ContactPage = z.looseObject({
  results: z.array(HubSpotContact),
  paging: z.looseObject({ next: z.looseObject({ after: z.string() }).optional() }).optional(),
});

export class HubSpotConnector {
  constructor(
    private readonly http: HttpClient,
    private readonly config: HubSpotConfig,
  ) {}

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.config.accessToken}` };
  }

  private contactUrl(id: string): string {
    return `${this.config.baseUrl}/crm/v3/objects/contacts/${encodeURIComponent(id)}`;
  }

  /**
   * GET /crm/v3/objects/contacts/{id}?properties=…; with `history`, also each property's
   * versions (`propertiesWithHistory`), whose timestamps say when each value was set.
   */
  async getContact(id: string, properties: readonly string[] = CONTACT_PROPERTIES, history = false): Promise<HubSpotContact> {
    return this.read(this.contactUrl(id), "", properties, history);
  }

  /** The contact, or null when HubSpot has none (404: never created, or deleted). */
  async findContact(id: string, properties: readonly string[] = CONTACT_PROPERTIES, history = false): Promise<HubSpotContact | null> {
    return orNull(() => this.getContact(id, properties, history));
  }

  /** GET …/contacts/{email}?idProperty=email: the contact with this address, or null. */
  async findContactByEmail(email: string, properties: readonly string[] = CONTACT_PROPERTIES, history = false): Promise<HubSpotContact | null> {
    return orNull(() => this.read(this.contactUrl(email), "idProperty=email&", properties, history));
  }

  private async read(base: string, query: string, properties: readonly string[], history: boolean): Promise<HubSpotContact> {
    const list = properties.map(encodeURIComponent).join(",");
    const url = `${base}?${query}properties=${list}${history ? `&propertiesWithHistory=${list}` : ""}`;
    const { data } = await this.http.call({ connector: "hubspot", method: "GET", url, headers: this.headers(), schema: HubSpotContact });
    return data;
  }

  /**
   * GET /crm/v3/objects/contacts?limit=&after=&properties=: one page of contacts (at most 100),
   * and the cursor of the next (`paging.next.after`), null on the last page.
   */
  async listContacts(input: { limit: number; after: string | null; properties: readonly string[] }): Promise<{ results: HubSpotContact[]; after: string | null }> {
    const limit = Math.min(Math.max(1, Math.trunc(input.limit)), HUBSPOT_LIST_MAX);
    const query = [`limit=${limit}`, ...(input.after ? [`after=${encodeURIComponent(input.after)}`] : []), `properties=${input.properties.map(encodeURIComponent).join(",")}`];
    const url = `${this.config.baseUrl}/crm/v3/objects/contacts?${query.join("&")}`;
    const { data } = await this.http.call({ connector: "hubspot", method: "GET", url, headers: this.headers(), schema: ContactPage });
    return { results: data.results, after: data.paging?.next?.after ?? null };
  }

  /** PATCH /crm/v3/objects/contacts/{id} with `properties`. */
  async updateContact(id: string, properties: Record<string, string>): Promise<HubSpotContact> {
    const { data } = await this.http.call({ connector: "hubspot", method: "PATCH", url: this.contactUrl(id), headers: this.headers(), json: { properties }, schema: HubSpotContact });
    return data;
  }

  /**
   * POST /crm/v3/objects/contacts/batch/read: up to 100 contacts by id, or by `idProperty`
   * (`email`); with `history`, each property's versions too (then up to 50).
   */
  async batchRead(ids: readonly string[], properties: readonly string[], options: { history?: boolean; idProperty?: "email" } = {}): Promise<BatchOutcome> {
    const json: Record<string, unknown> = { inputs: ids.map((id) => ({ id })), properties };
    if (options.history) json.propertiesWithHistory = properties;
    if (options.idProperty) json.idProperty = options.idProperty;
    return this.batch("read", json);
  }

  /** POST /crm/v3/objects/contacts/batch/update: up to 100 contacts' properties, by id. */
  async batchUpdate(inputs: readonly { id: string; properties: Record<string, string> }[]): Promise<BatchOutcome> {
    return this.batch("update", { inputs });
  }

  /**
   * POST /crm/v3/objects/contacts/batch/create: up to 100 contacts. Each input carries an
   * `objectWriteTraceId` (its index), which makes HubSpot answer 207 with one error per refused
   * input (an address another contact has: 409 "Contact already exists. Existing ID: …")
   * instead of refusing the batch. Per input: the contact made, the one that has the address, or the failure.
   */
  async batchCreate(inputs: readonly Record<string, string>[]): Promise<({ id: string; created: boolean } | ActionFailure)[]> {
    const url = `${this.config.baseUrl}/crm/v3/objects/contacts/batch/create`;
    const json = { inputs: inputs.map((properties, i) => ({ properties, objectWriteTraceId: String(i) })) };
    const { data } = await this.http.call({ connector: "hubspot", method: "POST", url, headers: this.headers(), json, schema: BatchAnswer });
    const made = new Map(data.results.map((c) => [(c.properties.email ?? "").trim().toLowerCase(), c.id]));
    const refused = new Map((data.errors ?? []).map((e) => [e.context?.objectWriteTraceId?.[0], e]));
    return inputs.map((properties, i) => {
      const id = made.get((properties.email ?? "").trim().toLowerCase());
      if (id !== undefined) return { id, created: true };
      const error = refused.get(String(i));
      const existing = error?.category === "CONFLICT" ? /Existing ID: (\d+)/.exec(error.message ?? "")?.[1] : undefined;
      if (existing) return { id: existing, created: false };
      return new ActionFailure("permanent", `hubspot batch/create refused this contact: ${error?.message ?? "the answer does not mention it"}`, { connector: "hubspot", status: 400 });
    });
  }

  private async batch(operation: "read" | "update", json: unknown): Promise<BatchOutcome> {
    const url = `${this.config.baseUrl}/crm/v3/objects/contacts/batch/${operation}`;
    const { data } = await this.http.call({ connector: "hubspot", method: "POST", url, headers: this.headers(), json, schema: BatchAnswer });
    const missing = (data.errors ?? []).filter((e) => e.category === "OBJECT_NOT_FOUND").flatMap((e) => e.context?.ids ?? []);
    return { results: data.results, missing };
  }

  /**
   * POST /crm/v3/objects/contacts. HubSpot keeps one contact per address and answers 409
   * "Contact already exists. Existing ID: 123" otherwise: that contact is returned as found.
   */
  async createContact(properties: Record<string, string>): Promise<{ id: string; created: boolean }> {
    try {
      const { data } = await this.http.call({ connector: "hubspot", method: "POST", url: `${this.config.baseUrl}/crm/v3/objects/contacts`, headers: this.headers(), json: { properties }, schema: HubSpotContact });
      return { id: data.id, created: true };
    } catch (error) {
      const existing = error instanceof ActionFailure && error.details.status === 409 ? /Existing ID: (\d+)/.exec(error.message)?.[1] : undefined;
      if (existing) return { id: existing, created: false };
      throw error;
    }
  }
}

async function orNull<T>(read: () => Promise<T>): Promise<T | null> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof ActionFailure && error.details.status === 404) return null;
    throw error;
  }
}

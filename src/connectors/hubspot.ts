/**
 * HubSpot CRM v3 contacts, with a private-app token as `Authorization: Bearer`.
 * https://developers.hubspot.com/docs/api-reference/crm-contacts-v3
 */
import { z } from "zod";
import type { HubSpotConfig } from "../config";
import type { HttpClient } from "./http-client";

export const HubSpotContact = z.looseObject({
  id: z.string(),
  properties: z.record(z.string(), z.string().nullable()),
  createdAt: z.string().optional(),
  updatedAt: z.string().optional(),
  archived: z.boolean().optional(),
});
export type HubSpotContact = z.infer<typeof HubSpotContact>;

export const CONTACT_PROPERTIES = ["email", "firstname", "lastname"] as const;

export class HubSpotConnector {
  constructor(
    private readonly http: HttpClient,
    private readonly config: HubSpotConfig,
  ) {}

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.config.accessToken}` };
  }

  /** GET /crm/v3/objects/contacts/{id}?properties=… */
  async getContact(id: string, properties: readonly string[] = CONTACT_PROPERTIES): Promise<HubSpotContact> {
    const url = `${this.config.baseUrl}/crm/v3/objects/contacts/${encodeURIComponent(id)}?properties=${properties.map(encodeURIComponent).join(",")}`;
    const { data } = await this.http.call({ connector: "hubspot", method: "GET", url, headers: this.headers(), schema: HubSpotContact });
    return data;
  }
}

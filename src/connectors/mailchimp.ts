/**
 * Mailchimp Marketing API 3.0 list members, with HTTP Basic auth (`anystring:<api key>`).
 * Members are addressed by the MD5 of the lower-cased email (the "subscriber hash").
 * https://mailchimp.com/developer/marketing/api/list-members/
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import type { MailchimpConfig } from "../config";
import { ActionFailure } from "./errors";
import type { HttpClient } from "./http-client";

export const MailchimpMember = z.looseObject({
  id: z.string(),
  email_address: z.string(),
  status: z.string(),
  merge_fields: z.record(z.string(), z.unknown()).optional(),
  last_changed: z.string().optional(),
});
export type MailchimpMember = z.infer<typeof MailchimpMember>;

export type MemberStatus = "subscribed" | "unsubscribed" | "cleaned" | "pending" | "transactional";

export function subscriberHash(email: string): string {
  return createHash("md5").update(email.trim().toLowerCase()).digest("hex");
}

/** Basic auth with any user name and the API key as the password, as Mailchimp documents. */
export function mailchimpAuthorization(apiKey: string): string {
  return `Basic ${btoa(`syncwire:${apiKey}`)}`;
}

export interface MemberUpsert {
  email: string;
  statusIfNew: MemberStatus;
  /** Also sets an existing member's status: only ever `unsubscribed` (a subscribe is never forced on anyone). */
  status?: "unsubscribed";
  mergeFields?: Record<string, string>;
}

/** A PATCH of an existing member: any of a new address, a status, merge fields. */
export interface MemberPatch {
  email_address?: string;
  status?: MemberStatus;
  merge_fields?: Record<string, string>;
}

export class MailchimpConnector {
  constructor(
    private readonly http: HttpClient,
    private readonly config: MailchimpConfig,
  ) {}

  private headers(): Record<string, string> {
    return { authorization: mailchimpAuthorization(this.config.apiKey) };
  }

  private memberUrl(email: string, listId = this.config.listId): string {
    return `${this.config.baseUrl}/3.0/lists/${encodeURIComponent(listId)}/members/${subscriberHash(email)}`;
  }

  /**
   * PUT …/members/{hash}: creates the member with `status_if_new`, or updates an existing one
   * without touching its status, so an unsubscribe is never reversed by an upsert.
   */
  async upsertMember(member: MemberUpsert): Promise<MailchimpMember> {
    const json: Record<string, unknown> = { email_address: member.email, status_if_new: member.statusIfNew };
    if (member.status) json.status = member.status;
    if (member.mergeFields && Object.keys(member.mergeFields).length > 0) json.merge_fields = member.mergeFields;
    const { data } = await this.http.call({
      connector: "mailchimp",
      method: "PUT",
      url: this.memberUrl(member.email),
      headers: this.headers(),
      json,
      schema: MailchimpMember,
    });
    return data;
  }

  /** PATCH …/members/{hash of `address`}; null when the list has no such member (404). */
  async patchMember(address: string, patch: MemberPatch): Promise<MailchimpMember | null> {
    try {
      const { data } = await this.http.call({ connector: "mailchimp", method: "PATCH", url: this.memberUrl(address), headers: this.headers(), json: patch, schema: MailchimpMember });
      return data;
    } catch (error) {
      if (error instanceof ActionFailure && error.details.status === 404) return null;
      throw error;
    }
  }

  /**
   * DELETE …/members/{hash}: archives the member (Mailchimp keeps it, with its unsubscribe
   * history, out of the audience). An unknown member is already as good as archived.
   */
  async archiveMember(address: string): Promise<void> {
    try {
      await this.http.call({ connector: "mailchimp", method: "DELETE", url: this.memberUrl(address), headers: this.headers(), schema: z.unknown() });
    } catch (error) {
      if (error instanceof ActionFailure && error.details.status === 404) return;
      throw error;
    }
  }
}

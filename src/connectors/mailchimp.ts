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

/** A member of a batch subscribe: `status` is what the member gets, new or (with update_existing) existing. */
export interface BatchMember {
  email_address: string;
  status: "subscribed" | "unsubscribed";
  merge_fields?: Record<string, string>;
}

const BatchMemberError = z.looseObject({ email_address: z.string().optional(), error: z.string().optional(), error_code: z.string().optional() });

/** POST /3.0/lists/{list_id}'s answer: 200 even when some members were refused (they are in `errors`). */
export const BatchSubscribeAnswer = z.looseObject({
  new_members: z.array(MailchimpMember).default([]),
  updated_members: z.array(MailchimpMember).default([]),
  errors: z.array(BatchMemberError).default([]),
});
export type BatchSubscribeAnswer = z.infer<typeof BatchSubscribeAnswer>;

/** The most members one page of GET …/members holds ("count": maximum 1000). */
export const MAILCHIMP_LIST_MAX = 1000;

const MemberPage = z.looseObject({ members: z.array(MailchimpMember), total_items: z.number().int() });

/** "Up to 500 members may be added or updated with each API call." */
export const MAILCHIMP_BATCH_MAX = 500;

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
   * GET /3.0/lists/{list_id}/members?count=&offset=: one page of the list's members (at most
   * 1000), and how many the list holds (`total_items`).
   */
  async listMembers(input: { count: number; offset: number }): Promise<{ members: MailchimpMember[]; totalItems: number }> {
    const count = Math.min(Math.max(1, Math.trunc(input.count)), MAILCHIMP_LIST_MAX);
    const url = `${this.config.baseUrl}/3.0/lists/${encodeURIComponent(this.config.listId)}/members?count=${count}&offset=${Math.max(0, Math.trunc(input.offset))}`;
    const { data } = await this.http.call({ connector: "mailchimp", method: "GET", url, headers: this.headers(), schema: MemberPage });
    return { members: data.members, totalItems: data.total_items };
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
   * POST /3.0/lists/{list_id} ("batch subscribe or unsubscribe"): up to 500 members. It has no
   * `status_if_new`: with `update_existing` an existing member gets the status sent, so that is
   * only ever used to unsubscribe; without it an existing member is left alone and reported as
   * an error with `error_code` ERROR_CONTACT_EXISTS.
   */
  async batchSubscribe(members: readonly BatchMember[], updateExisting: boolean): Promise<BatchSubscribeAnswer> {
    if (updateExisting && members.some((m) => m.status !== "unsubscribed")) {
      throw new ActionFailure("permanent", "mailchimp: a batch that updates existing members may only unsubscribe them", { connector: "mailchimp" });
    }
    const url = `${this.config.baseUrl}/3.0/lists/${encodeURIComponent(this.config.listId)}`;
    const { data } = await this.http.call({ connector: "mailchimp", method: "POST", url, headers: this.headers(), json: { members, update_existing: updateExisting }, schema: BatchSubscribeAnswer });
    return data;
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

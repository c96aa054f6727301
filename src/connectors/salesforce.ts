/**
 * Salesforce REST: a Contact upserted by external id, with an access token from the OAuth 2.0
 * client-credentials flow.
 * https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_client_credentials_flow.htm
 * https://developer.salesforce.com/docs/platform/api-rest/guide/dome-upsert.html
 *
 * The token answer carries no expires_in (the org's session timeout decides, and the flow issues
 * no refresh token), so a token is kept until Salesforce rejects it: a 401 (INVALID_SESSION_ID)
 * drops it, one new token is fetched and the call is sent once more; a second 401 is a failure.
 *
 * Tokens live in a module-level cache keyed by login URL and client id: every action of a
 * consumer invocation, and every invocation the isolate runs, shares one token, and concurrent
 * actions that find none share one token call (single flight).
 */
import { z } from "zod";
import type { SalesforceConfig } from "../config";
import { ActionFailure } from "./errors";
import { DEFAULT_TIMEOUT_MS, type HttpClient } from "./http-client";

/** Learns secrets issued at run time, so audit rows and log lines never carry them (the HttpClient's Redactor). */
export interface SecretSink {
  add(secret: string): void;
}

export interface SalesforceSession {
  accessToken: string;
  /** Where API calls go ("instance_url"), without a trailing slash. */
  instanceUrl: string;
}

/** The fields Syncwire writes; LastName is required by Salesforce when the Contact is created. */
export interface ContactFields {
  FirstName?: string;
  LastName: string;
  Email?: string;
}

export interface UpsertOutcome {
  /** The Contact's record id; null on API versions before v46.0, whose update answer (204) has no body. */
  id: string | null;
  created: boolean;
}

/** The upsert answer (a 204 before v46.0 has no body: null). */
const UpsertAnswer = z.union([
  z.null(),
  z.looseObject({ id: z.string(), success: z.boolean(), errors: z.array(z.unknown()), created: z.boolean().optional() }),
]);

interface CachedSession {
  promise: Promise<SalesforceSession>;
  /** The invocation whose token call it is (HttpClient.scope): only its actions wait on the call. */
  scope: object;
  /** Set once the token call succeeded: the session a 401 is compared with. */
  settled?: SalesforceSession;
  /** The sinks that already know this token. */
  taught: WeakSet<SecretSink>;
}

const sessions = new Map<string, CachedSession>();

/**
 * How long an action waits for a token call another action of its invocation started: a bound,
 * so a call that never settles is a transient failure instead of a hang.
 */
const SHARED_TOKEN_WAIT_MS = DEFAULT_TIMEOUT_MS + 5_000;

export class SalesforceConnector {
  private readonly cacheKey: string;

  constructor(
    private readonly http: HttpClient,
    private readonly config: SalesforceConfig,
    /** Must be the Redactor the HttpClient audits with: it learns each token as the token answer is parsed. */
    private readonly secrets: SecretSink,
  ) {
    this.cacheKey = `${config.loginUrl}\n${config.clientId}`;
  }

  /**
   * PATCH {instance_url}/services/data/{version}/sobjects/Contact/{externalIdField}/{externalId}.
   * 201: created; 200 with `created: false` (or 204 before v46.0): updated.
   *
   * @example await salesforce.upsertContact("1073339470", { FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com" })
   *          // -> { id: "003…", created: true }
   */
  async upsertContact(externalId: string, fields: ContactFields): Promise<UpsertOutcome> {
    const body = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
    const send = async (session: SalesforceSession): Promise<UpsertOutcome> => {
      const { apiVersion, externalIdField } = this.config;
      const url = `${session.instanceUrl}/services/data/${apiVersion}/sobjects/Contact/${encodeURIComponent(externalIdField)}/${encodeURIComponent(externalId)}`;
      const { status, data } = await this.http.call({
        connector: "salesforce",
        method: "PATCH",
        url,
        headers: { authorization: `Bearer ${session.accessToken}` },
        json: body,
        schema: UpsertAnswer,
      });
      if (data !== null && !data.success) {
        throw new ActionFailure("permanent", `salesforce upsert answered ${status} without success: ${JSON.stringify(data.errors).slice(0, 300)}`, { connector: "salesforce", status });
      }
      return { id: data?.id ?? null, created: status === 201 };
    };
    return this.withSession(send);
  }

  /** Runs `call` with the shared token; on a 401, once more with a new one. */
  private async withSession<T>(call: (session: SalesforceSession) => Promise<T>): Promise<T> {
    const session = await this.session();
    try {
      return await call(session);
    } catch (error) {
      if (!(error instanceof ActionFailure && error.details.status === 401)) throw error;
      this.forget(session);
      return call(await this.session()); // a second 401 propagates: permanent
    }
  }

  /** The cached token, or the token call in flight, or a new token call. */
  private async session(): Promise<SalesforceSession> {
    let entry = sessions.get(this.cacheKey);
    // A token is plain data once issued, shared by every invocation of the isolate; a token call
    // in flight is waited on only by its own invocation's actions (HttpClient.scope).
    if (entry === undefined || (entry.settled === undefined && entry.scope !== this.http.scope)) {
      const created: CachedSession = { promise: this.fetchToken(), scope: this.http.scope, taught: new WeakSet() };
      created.promise.then(
        (session) => {
          created.settled = session;
          created.taught.add(this.secrets);
        },
        // A failed token call is not cached: the next action tries again.
        () => {
          if (sessions.get(this.cacheKey) === created) sessions.delete(this.cacheKey);
        },
      );
      sessions.set(this.cacheKey, created);
      entry = created;
    }
    const session = entry.settled ?? (await this.waitFor(entry));
    // A cached token may have been issued through another redactor (another configuration
    // object of the isolate): this one learns it before the token can reach its audit rows.
    if (!entry.taught.has(this.secrets)) {
      this.secrets.add(session.accessToken);
      entry.taught.add(this.secrets);
    }
    return session;
  }

  private async waitFor(entry: CachedSession): Promise<SalesforceSession> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (sessions.get(this.cacheKey) === entry) sessions.delete(this.cacheKey);
        reject(new ActionFailure("transient", "salesforce token call did not finish in time", { connector: "salesforce", status: null }));
      }, SHARED_TOKEN_WAIT_MS);
    });
    try {
      return await Promise.race([entry.promise, stalled]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Drops the token a 401 rejected, unless another action already replaced it. */
  private forget(rejected: SalesforceSession): void {
    const entry = sessions.get(this.cacheKey);
    if (entry?.settled === rejected) sessions.delete(this.cacheKey);
  }

  /** POST {login URL}/services/oauth2/token, form-encoded grant_type=client_credentials. */
  private async fetchToken(): Promise<SalesforceSession> {
    // The token is taught to the redactor as the answer is parsed: the HttpClient parses a body
    // before it writes the call's audit row, so the row of the token call is redacted too.
    const TokenAnswer = z
      .looseObject({ access_token: z.string().min(1), instance_url: z.url({ protocol: /^https?$/ }), token_type: z.string().optional() })
      .transform((answer) => {
        this.secrets.add(answer.access_token);
        return { accessToken: answer.access_token, instanceUrl: answer.instance_url.replace(/\/+$/, "") };
      });
    const form = new URLSearchParams({ grant_type: "client_credentials", client_id: this.config.clientId, client_secret: this.config.clientSecret });
    const { data } = await this.http.call({
      connector: "salesforce",
      method: "POST",
      url: `${this.config.loginUrl}/services/oauth2/token`,
      form,
      schema: TokenAnswer,
    });
    return data;
  }
}

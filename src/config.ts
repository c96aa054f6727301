/**
 * Configuration, parsed once per isolate with zod into a typed `Config`.
 *
 * Rules (CONTRACT section 2):
 * - an integration with none of its credentials set is disabled, and `/health` says why;
 * - an integration with some of them set is being enabled, so every missing or malformed key
 *   of it is an error that names the key (never a crash later, deep in a connector);
 * - `SANDBOX=true` fills absent credentials with the sandbox's own and points every base URL
 *   at the built-in fakes.
 */
import { z } from "zod";
import type { RateWindow } from "./budgets/budget";
import { SANDBOX_CREDENTIALS, SANDBOX_ORIGIN } from "./sandbox/credentials";

export type Integration = "hubspot" | "mailchimp" | "shopify" | "salesforce" | "postmark" | "stripe";
export const INTEGRATIONS: readonly Integration[] = ["hubspot", "mailchimp", "shopify", "salesforce", "postmark", "stripe"];

export type Disabled = { enabled: false; reason: string };
type Enabled<T> = { enabled: true } & T;

export interface HubSpotConfig { baseUrl: string; accessToken: string; clientSecret: string }
export interface MailchimpConfig { baseUrl: string; apiKey: string; listId: string; webhookSecret: string }
export interface ShopifyConfig { webhookSecret: string }
export interface SalesforceConfig { loginUrl: string; clientId: string; clientSecret: string; apiVersion: string; externalIdField: string }
export interface StripeConfig { baseUrl: string; secretKey: string }
export interface PostmarkConfig { baseUrl: string; serverToken: string; from: string; welcomeTemplate: string }

export interface Config {
  sandbox: boolean;
  adminToken: string | null;
  hubspot: Enabled<HubSpotConfig> | Disabled;
  mailchimp: Enabled<MailchimpConfig> | Disabled;
  shopify: Enabled<ShopifyConfig> | Disabled;
  salesforce: Enabled<SalesforceConfig> | Disabled;
  stripe: Enabled<StripeConfig> | Disabled;
  postmark: Enabled<PostmarkConfig> | Disabled;
  crm: { lostProperty: string | null; lostValue: string | null; subscriptionProperty: string | null };
  conflictPolicy: "latest-wins" | "escalate";
  retry: { scheduleSeconds: number[]; maxAgeSeconds: number };
  /** Outbound calls one consumer invocation has in flight at most (a Worker gets 6 connections at once). */
  outboundConcurrency: number;
  /** What the whole deployment may ask of each vendor (CONTRACT 4.11). */
  budgets: {
    hubspot: RateWindow[];
    mailchimpConnections: number;
    /** STRIPE_RATE_LIMIT, SALESFORCE_RATE_LIMIT (empty: no rate, only a 429's pause). */
    stripe: RateWindow[];
    /** STRIPE_ENDPOINT_RATE_LIMIT: each Stripe endpoint's own limit. */
    stripeEndpoint: RateWindow[];
    salesforce: RateWindow[];
    /** Postmark documents no rate: a 429 from it pauses everyone, nothing else. */
    postmark: RateWindow[];
  };
  /**
   * BULK_CALLS (default true): reads and writes for many contacts of a queue batch share the
   * vendors' bulk endpoints. `false` sends one call per contact: for measuring (the bench) and
   * for a vendor account whose bulk endpoints misbehave.
   */
  bulkCalls: boolean;
  alertWebhookUrl: string | null;
  /** A nightly run alerts when its mismatches are more than this share of the records compared (ALERT_MISMATCH_PERCENT, default 1). */
  alertMismatchShare: number;
  /** The conditions checked every minute (observability/alerting.ts), with their thresholds. */
  alerting: {
    /** A connector's failed share of its calls over 5 minutes (ALERT_ERROR_RATE_PERCENT, default 20), with at least 10 calls. */
    errorShare: number;
    /** The oldest unfinished event's age (ALERT_BACKLOG_SECONDS, default 900). */
    backlogSeconds: number;
    /** An open conflict's age (ALERT_CONFLICT_HOURS, default 24). */
    conflictHours: number;
    /** After an alert, the same condition is quiet this long (ALERT_COOLDOWN_MINUTES, default 60). */
    cooldownMinutes: number;
  };
  auditRetentionDays: number;
}

export interface ConfigIssue { key: string; message: string }

/** RETRY_SCHEDULE and RETRY_MAX_AGE when unset (and while the configuration cannot be read). */
export const DEFAULT_RETRY = { scheduleSeconds: [0, 1, 5, 30, 300], maxAgeSeconds: 86_400 } as const;

/**
 * A configuration that cannot run; `issues` name every offending key. `partial` is what could
 * be read, for the parts no issue touches (a webhook route whose own keys are fine).
 */
export class ConfigError extends Error {
  readonly code = "invalid_config";
  constructor(
    readonly issues: ConfigIssue[],
    readonly partial?: Config,
  ) {
    super(`invalid configuration: ${issues.map((i) => `${i.key}: ${i.message}`).join("; ")}`);
  }
}

// Empty strings (as in a copied .dev.vars.example) mean "not set".
const optionalText = z.preprocess((v) => (typeof v === "string" && v.trim() === "" ? undefined : v), z.string().trim().optional());
const url = z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, ""));
const boolText = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
const positiveInt = z.coerce.number().int().positive();
const percent = z.coerce.number().min(0).max(100);
const retrySchedule = z
  .string()
  .regex(/^\s*\d+(\s*,\s*\d+)*\s*$/, "a comma-separated list of whole seconds, e.g. 0,1,5,30,300")
  .transform((s) => s.split(",").map((n) => Number(n.trim())));
const DURATIONS: Record<string, number> = { ms: 1, s: 1_000, sec: 1_000, m: 60_000, min: 60_000, h: 3_600_000, hour: 3_600_000, d: 86_400_000, day: 86_400_000 };
/** `100/10s,250000/day`: calls per window; every window holds at once. */
const rateLimit = z
  .string()
  .regex(/^\s*\d+\s*\/\s*\d*\s*(ms|s|sec|m|min|h|hour|d|day)\s*(,\s*\d+\s*\/\s*\d*\s*(ms|s|sec|m|min|h|hour|d|day)\s*)*$/, "calls per window, comma-separated, e.g. 100/10s,250000/day")
  .transform((text) =>
    text.split(",").map((part): RateWindow => {
      const [, calls, count, unit] = /^\s*(\d+)\s*\/\s*(\d*)\s*([a-z]+)\s*$/.exec(part)!;
      return { limit: Number(calls), windowMs: Number(count || "1") * DURATIONS[unit!]! };
    }),
  )
  .refine((windows) => windows.every((w) => w.limit > 0 && w.windowMs > 0), "every limit and window must be above zero");
export const DEFAULT_HUBSPOT_RATE_LIMIT = "100/10s,250000/day";
/** Stripe's basic limit in live mode ("up to 100 operations per second"; 25 in test mode). */
export const DEFAULT_STRIPE_RATE_LIMIT = "100/1s";
/** "API endpoints have a default limit of 25 requests per second" (each endpoint, besides the account's). */
export const DEFAULT_STRIPE_ENDPOINT_RATE_LIMIT = "25/1s";
/** Salesforce's daily API request allocation of an Enterprise org before per-licence additions. */
export const DEFAULT_SALESFORCE_RATE_LIMIT = "100000/day";

// Mailchimp keys end in the data center, e.g. `…-us21`; the API host is derived from it.
const mailchimpKey = z.string().regex(/^[A-Za-z0-9]+-[a-z]+\d+$/, "expected <key>-<dc>, e.g. abc123-us21");

type Raw = Record<string, unknown>;

const MIN_SECRET_LENGTH = 16;
/** The secrets Syncwire shares with its callers (the vendors' own credentials are theirs to shape). */
const SHARED_SECRETS = ["ADMIN_TOKEN", "HUBSPOT_CLIENT_SECRET", "MAILCHIMP_WEBHOOK_SECRET", "SHOPIFY_WEBHOOK_SECRET"] as const;

class Reader {
  readonly issues: ConfigIssue[] = [];
  constructor(private readonly raw: Raw) {}

  text(key: string): string | undefined {
    return optionalText.parse(this.raw[key]);
  }

  /** Parses `key` with `schema` when set; records an issue naming the key when malformed. */
  parse<T>(key: string, schema: z.ZodType<T>, fallback?: string): T | undefined {
    const value = this.text(key) ?? fallback;
    if (value === undefined) return undefined;
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    this.issues.push({ key, message: result.error.issues[0]?.message ?? "malformed" });
    return undefined;
  }

  /**
   * The enable-or-disable rule for one integration: all of `required` present -> the values;
   * none present -> disabled with a reason; some present -> an issue for each missing key.
   */
  integration(name: string, required: string[]): Record<string, string> | Disabled {
    const values = Object.fromEntries(required.map((k) => [k, this.text(k)]));
    const missing = required.filter((k) => values[k] === undefined);
    if (missing.length === required.length) return { enabled: false, reason: `disabled: ${missing.join(", ")} not set` };
    for (const key of missing) this.issues.push({ key, message: `required when ${name} is configured` });
    return values as Record<string, string>;
  }
}

function isDisabled(v: Record<string, string> | Disabled): v is Disabled {
  return (v as Disabled).enabled === false;
}

/** Parses raw bindings into a `Config`, or throws `ConfigError` naming each bad key. */
export function parseConfig(input: Raw): Config {
  const sandbox = boolText.safeParse(optionalText.parse(input.SANDBOX) ?? "false");
  const isSandbox = sandbox.success && sandbox.data;
  // In sandbox mode, absent credentials fall back to the fakes' own.
  const raw: Raw = isSandbox ? { ...SANDBOX_CREDENTIALS, ...withoutEmpty(input) } : input;
  const r = new Reader(raw);
  if (!sandbox.success) r.issues.push({ key: "SANDBOX", message: "expected true or false" });

  const adminToken = r.text("ADMIN_TOKEN") ?? null;
  if (!isSandbox && adminToken === null) r.issues.push({ key: "ADMIN_TOKEN", message: "required outside sandbox mode" });
  // A short shared secret can be guessed, and the redactor must be able to replace every
  // secret without blanking out ordinary words (CONTRACT 2).
  if (!isSandbox) {
    for (const key of SHARED_SECRETS) {
      const value = r.text(key);
      if (value !== undefined && value.length < MIN_SECRET_LENGTH) r.issues.push({ key, message: `must be at least ${MIN_SECRET_LENGTH} characters outside sandbox mode` });
    }
  }

  const base = (key: string, real: string, sandboxPath: string) =>
    r.parse(key, url, isSandbox ? `${SANDBOX_ORIGIN}${sandboxPath}` : real);

  const hubspot = ((): Config["hubspot"] => {
    const v = r.integration("hubspot", ["HUBSPOT_ACCESS_TOKEN", "HUBSPOT_CLIENT_SECRET"]);
    if (isDisabled(v)) return v;
    const baseUrl = base("HUBSPOT_BASE_URL", "https://api.hubapi.com", "/hubspot") ?? "";
    return { enabled: true, baseUrl, accessToken: v.HUBSPOT_ACCESS_TOKEN!, clientSecret: v.HUBSPOT_CLIENT_SECRET! };
  })();

  const mailchimp = ((): Config["mailchimp"] => {
    const v = r.integration("mailchimp", ["MAILCHIMP_API_KEY", "MAILCHIMP_LIST_ID", "MAILCHIMP_WEBHOOK_SECRET"]);
    if (isDisabled(v)) return v;
    const apiKey = r.parse("MAILCHIMP_API_KEY", mailchimpKey) ?? "";
    const dc = apiKey.split("-").pop() ?? "";
    const baseUrl = base("MAILCHIMP_BASE_URL", `https://${dc}.api.mailchimp.com`, "/mailchimp") ?? "";
    return { enabled: true, baseUrl, apiKey, listId: v.MAILCHIMP_LIST_ID!, webhookSecret: v.MAILCHIMP_WEBHOOK_SECRET! };
  })();

  const shopify = ((): Config["shopify"] => {
    const v = r.integration("shopify", ["SHOPIFY_WEBHOOK_SECRET"]);
    return isDisabled(v) ? v : { enabled: true, webhookSecret: v.SHOPIFY_WEBHOOK_SECRET! };
  })();

  const salesforce = ((): Config["salesforce"] => {
    const v = r.integration("salesforce", ["SALESFORCE_LOGIN_URL", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET"]);
    if (isDisabled(v)) return v;
    return {
      enabled: true,
      loginUrl: r.parse("SALESFORCE_LOGIN_URL", url) ?? "",
      clientId: v.SALESFORCE_CLIENT_ID!,
      clientSecret: v.SALESFORCE_CLIENT_SECRET!,
      apiVersion: r.parse("SALESFORCE_API_VERSION", z.string().regex(/^v\d+\.\d$/, "expected e.g. v62.0"), "v62.0") ?? "v62.0",
      externalIdField: r.text("SALESFORCE_EXTERNAL_ID_FIELD") ?? "Shopify_Customer_Id__c",
    };
  })();

  const stripe = ((): Config["stripe"] => {
    const v = r.integration("stripe", ["STRIPE_SECRET_KEY"]);
    if (isDisabled(v)) return v;
    return { enabled: true, secretKey: v.STRIPE_SECRET_KEY!, baseUrl: base("STRIPE_BASE_URL", "https://api.stripe.com", "/stripe") ?? "" };
  })();

  const postmark = ((): Config["postmark"] => {
    const v = r.integration("postmark", ["POSTMARK_SERVER_TOKEN", "POSTMARK_FROM", "POSTMARK_WELCOME_TEMPLATE"]);
    if (isDisabled(v)) return v;
    return {
      enabled: true,
      serverToken: v.POSTMARK_SERVER_TOKEN!,
      from: v.POSTMARK_FROM!,
      welcomeTemplate: v.POSTMARK_WELCOME_TEMPLATE!,
      baseUrl: base("POSTMARK_BASE_URL", "https://api.postmarkapp.com", "/postmark") ?? "",
    };
  })();

  const config: Config = {
    sandbox: isSandbox,
    adminToken,
    hubspot,
    mailchimp,
    shopify,
    salesforce,
    stripe,
    postmark,
    crm: {
      lostProperty: r.text("CRM_LOST_PROPERTY") ?? null,
      lostValue: r.text("CRM_LOST_VALUE") ?? null,
      subscriptionProperty: r.text("CRM_SUBSCRIPTION_PROPERTY") ?? null,
    },
    conflictPolicy: r.parse("CONFLICT_POLICY", z.enum(["latest-wins", "escalate"]), "latest-wins") ?? "latest-wins",
    retry: {
      scheduleSeconds: r.parse("RETRY_SCHEDULE", retrySchedule, DEFAULT_RETRY.scheduleSeconds.join(",")) ?? [...DEFAULT_RETRY.scheduleSeconds],
      maxAgeSeconds: r.parse("RETRY_MAX_AGE", positiveInt, String(DEFAULT_RETRY.maxAgeSeconds)) ?? DEFAULT_RETRY.maxAgeSeconds,
    },
    outboundConcurrency: r.parse("OUTBOUND_CONCURRENCY", positiveInt, "6") ?? 6,
    budgets: {
      hubspot: r.parse("HUBSPOT_RATE_LIMIT", rateLimit, DEFAULT_HUBSPOT_RATE_LIMIT) ?? [{ limit: 100, windowMs: 10_000 }, { limit: 250_000, windowMs: 86_400_000 }],
      mailchimpConnections: r.parse("MAILCHIMP_MAX_CONNECTIONS", positiveInt, "10") ?? 10,
      stripe: r.parse("STRIPE_RATE_LIMIT", rateLimit, DEFAULT_STRIPE_RATE_LIMIT) ?? [{ limit: 100, windowMs: 1_000 }],
      stripeEndpoint: r.parse("STRIPE_ENDPOINT_RATE_LIMIT", rateLimit, DEFAULT_STRIPE_ENDPOINT_RATE_LIMIT) ?? [{ limit: 25, windowMs: 1_000 }],
      salesforce: r.parse("SALESFORCE_RATE_LIMIT", rateLimit, DEFAULT_SALESFORCE_RATE_LIMIT) ?? [{ limit: 100_000, windowMs: 86_400_000 }],
      postmark: [],
    },
    bulkCalls: r.parse("BULK_CALLS", boolText, "true") ?? true,
    alertWebhookUrl: r.parse("ALERT_WEBHOOK_URL", url) ?? null,
    alertMismatchShare: (r.parse("ALERT_MISMATCH_PERCENT", percent, "1") ?? 1) / 100,
    alerting: {
      errorShare: (r.parse("ALERT_ERROR_RATE_PERCENT", percent, "20") ?? 20) / 100,
      backlogSeconds: r.parse("ALERT_BACKLOG_SECONDS", positiveInt, "900") ?? 900,
      conflictHours: r.parse("ALERT_CONFLICT_HOURS", positiveInt, "24") ?? 24,
      cooldownMinutes: r.parse("ALERT_COOLDOWN_MINUTES", positiveInt, "60") ?? 60,
    },
    auditRetentionDays: r.parse("AUDIT_RETENTION_DAYS", positiveInt, "90") ?? 90,
  };
  if (r.issues.length > 0) throw new ConfigError(r.issues, config);
  return config;
}

function withoutEmpty(raw: Raw): Raw {
  return Object.fromEntries(Object.entries(raw).filter(([, v]) => !(typeof v === "string" && v.trim() === "")));
}

// Bindings are fixed for the life of an isolate: parse once per env object (an error too).
const cache = new WeakMap<object, Config | ConfigError>();

/** The parsed configuration of `env`; throws `ConfigError` (with every bad key) when it cannot run. */
export function getConfig(env: object): Config {
  let config = cache.get(env);
  if (!config) {
    try {
      config = parseConfig(env as Raw);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      config = error;
    }
    cache.set(env, config);
  }
  if (config instanceof ConfigError) throw config;
  return config;
}

/**
 * The configuration for receiving one source's webhooks: the whole one, or, when some other
 * key is wrong, what could be read, as long as no issue touches this source's own keys. Ingest
 * only verifies and queues, so a typo in, say, RETRY_SCHEDULE must not make providers give
 * up on their webhooks: the events are queued and wait for the fix (CONTRACT 2).
 */
export function configForIngest(env: object, source: "hubspot" | "mailchimp" | "shopify"): Config {
  try {
    return getConfig(env);
  } catch (error) {
    const prefix = `${source.toUpperCase()}_`;
    if (error instanceof ConfigError && error.partial && !error.issues.some((i) => i.key.startsWith(prefix) || i.key === "SANDBOX")) return error.partial;
    throw error;
  }
}

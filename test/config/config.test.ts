/** Configuration: parsed once, disabled integrations explained, bad keys named. */
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../src/config";
import { SANDBOX_CREDENTIALS } from "../../src/sandbox/credentials";

const ADMIN = "admin-token-of-16+chars";

const issuesOf = (raw: Record<string, string>) => {
  try {
    parseConfig(raw);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.issues;
  }
};

describe("parseConfig", () => {
  it("disables integrations without credentials, with the reason", () => {
    const config = parseConfig({ ADMIN_TOKEN: ADMIN });
    expect(config.hubspot).toEqual({ enabled: false, reason: "disabled: HUBSPOT_ACCESS_TOKEN, HUBSPOT_CLIENT_SECRET not set" });
    expect(config.mailchimp.enabled).toBe(false);
    expect(config.sandbox).toBe(false);
  });

  it("treats empty values, as in a copied .dev.vars.example, as not set", () => {
    const config = parseConfig({ ADMIN_TOKEN: ADMIN, HUBSPOT_ACCESS_TOKEN: "", HUBSPOT_CLIENT_SECRET: " " });
    expect(config.hubspot.enabled).toBe(false);
  });

  it("names each missing key of a partly configured integration", () => {
    expect(issuesOf({ ADMIN_TOKEN: ADMIN, MAILCHIMP_API_KEY: "abc123-us21" })).toEqual([
      { key: "MAILCHIMP_LIST_ID", message: "required when mailchimp is configured" },
      { key: "MAILCHIMP_WEBHOOK_SECRET", message: "required when mailchimp is configured" },
    ]);
  });

  it("names malformed values", () => {
    const issues = issuesOf({
      ADMIN_TOKEN: ADMIN,
      MAILCHIMP_API_KEY: "no-datacenter-suffix!",
      MAILCHIMP_LIST_ID: "l",
      MAILCHIMP_WEBHOOK_SECRET: "mailchimp-url-secret-1",
      RETRY_SCHEDULE: "1,two,3",
      RETRY_MAX_AGE: "-5",
      CONFLICT_POLICY: "coin-flip",
      OUTBOUND_CONCURRENCY: "0",
      HUBSPOT_ACCESS_TOKEN: "x",
      HUBSPOT_CLIENT_SECRET: "hubspot-client-secret-1",
      HUBSPOT_BASE_URL: "ftp://example.com",
    });
    expect(issues.map((i) => i.key).sort()).toEqual(["CONFLICT_POLICY", "HUBSPOT_BASE_URL", "MAILCHIMP_API_KEY", "OUTBOUND_CONCURRENCY", "RETRY_MAX_AGE", "RETRY_SCHEDULE"]);
    expect(new ConfigError(issues).message).toMatch(/RETRY_SCHEDULE: a comma-separated list/);
  });

  it("requires ADMIN_TOKEN outside sandbox mode only", () => {
    expect(issuesOf({})).toEqual([{ key: "ADMIN_TOKEN", message: "required outside sandbox mode" }]);
    expect(issuesOf({ SANDBOX: "true" })).toEqual([]);
  });

  it("derives the Mailchimp host from the key's data center", () => {
    const config = parseConfig({ ADMIN_TOKEN: ADMIN, MAILCHIMP_API_KEY: "abc123-us21", MAILCHIMP_LIST_ID: "l", MAILCHIMP_WEBHOOK_SECRET: "mailchimp-url-secret-1" });
    expect(config.mailchimp).toMatchObject({ enabled: true, baseUrl: "https://us21.api.mailchimp.com" });
  });

  it("in sandbox mode fills absent credentials with the sandbox's and points base URLs at the fakes", () => {
    const config = parseConfig({ SANDBOX: "true" });
    expect(config.hubspot).toMatchObject({ enabled: true, baseUrl: "https://sandbox.invalid/hubspot", accessToken: SANDBOX_CREDENTIALS.HUBSPOT_ACCESS_TOKEN });
    expect(config.mailchimp).toMatchObject({ enabled: true, baseUrl: "https://sandbox.invalid/mailchimp" });
    expect(config.salesforce).toMatchObject({ enabled: true, loginUrl: "https://sandbox.invalid/salesforce", clientId: SANDBOX_CREDENTIALS.SALESFORCE_CLIENT_ID });
    expect(config.postmark).toMatchObject({ enabled: true, baseUrl: "https://sandbox.invalid/postmark", welcomeTemplate: "welcome" });
    expect(config.stripe).toMatchObject({ enabled: true, baseUrl: "https://sandbox.invalid/stripe" });
  });

  it("refuses an admin token or webhook secret under 16 characters outside sandbox mode, naming the key, never the value", () => {
    const issues = issuesOf({
      ADMIN_TOKEN: "a",
      HUBSPOT_ACCESS_TOKEN: "pat-na1-0000-long-enough",
      HUBSPOT_CLIENT_SECRET: "fifteen-chars-x",
      SHOPIFY_WEBHOOK_SECRET: "shh",
      MAILCHIMP_API_KEY: "abc123-us21",
      MAILCHIMP_LIST_ID: "l",
      MAILCHIMP_WEBHOOK_SECRET: "exactly-16-chars",
    });
    expect(issues).toEqual([
      { key: "ADMIN_TOKEN", message: "must be at least 16 characters outside sandbox mode" },
      { key: "HUBSPOT_CLIENT_SECRET", message: "must be at least 16 characters outside sandbox mode" },
      { key: "SHOPIFY_WEBHOOK_SECRET", message: "must be at least 16 characters outside sandbox mode" },
    ]);
    expect(JSON.stringify(issues)).not.toMatch(/fifteen-chars-x|shh/);
    expect(issuesOf({ SANDBOX: "true", ADMIN_TOKEN: "a" })).toEqual([]);
  });

  it("applies the documented defaults", () => {
    const config = parseConfig({ ADMIN_TOKEN: ADMIN });
    expect(config.retry).toEqual({ scheduleSeconds: [0, 1, 5, 30, 300], maxAgeSeconds: 86400 });
    expect(config.conflictPolicy).toBe("latest-wins");
    expect(config.auditRetentionDays).toBe(90);
    expect(config.outboundConcurrency).toBe(6);
  });
});

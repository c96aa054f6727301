/**
 * Connectors for one action attempt, all sharing one audited HttpClient.
 */
import { Redactor } from "../audit/redact";
import type { Config } from "../config";
import { ActionFailure } from "./errors";
import { HubSpotConnector } from "./hubspot";
import type { HttpClient } from "./http-client";
import { mailchimpAuthorization, MailchimpConnector } from "./mailchimp";
import { PostmarkConnector } from "./postmark";
import { SalesforceConnector } from "./salesforce";
import { StripeConnector } from "./stripe";

export interface Connectors {
  hubspot(): HubSpotConnector;
  mailchimp(): MailchimpConnector;
  stripe(): StripeConnector;
  salesforce(): SalesforceConnector;
  postmark(): PostmarkConnector;
}

/** A flow that needs a disabled integration cannot succeed until it is configured: permanent. */
function notConfigured(name: string, reason: string): never {
  throw new ActionFailure("permanent", `${name} is not configured (${reason}); replay after configuring it`, { connector: name });
}

export function createConnectors(config: Config, http: HttpClient): Connectors {
  return {
    hubspot: () => (config.hubspot.enabled ? new HubSpotConnector(http, config.hubspot) : notConfigured("hubspot", config.hubspot.reason)),
    mailchimp: () =>
      config.mailchimp.enabled ? new MailchimpConnector(http, config.mailchimp) : notConfigured("mailchimp", config.mailchimp.reason),
    stripe: () => (config.stripe.enabled ? new StripeConnector(http, config.stripe) : notConfigured("stripe", config.stripe.reason)),
    // The redactor the pipeline's HttpClients audit with: it learns each access token as it is issued.
    salesforce: () =>
      config.salesforce.enabled ? new SalesforceConnector(http, config.salesforce, redactorFor(config)) : notConfigured("salesforce", config.salesforce.reason),
    postmark: () => (config.postmark.enabled ? new PostmarkConnector(http, config.postmark) : notConfigured("postmark", config.postmark.reason)),
  };
}

/** Every credential value in the configuration, and the auth header values built from them, for the redactor. */
export function configSecrets(config: Config): string[] {
  const values: (string | null | undefined)[] = [config.adminToken];
  if (config.hubspot.enabled) values.push(config.hubspot.accessToken, config.hubspot.clientSecret);
  if (config.mailchimp.enabled) {
    const basic = mailchimpAuthorization(config.mailchimp.apiKey);
    values.push(config.mailchimp.apiKey, config.mailchimp.webhookSecret, basic, basic.slice("Basic ".length));
  }
  if (config.shopify.enabled) values.push(config.shopify.webhookSecret);
  if (config.salesforce.enabled) values.push(config.salesforce.clientSecret);
  if (config.stripe.enabled) values.push(config.stripe.secretKey);
  if (config.postmark.enabled) values.push(config.postmark.serverToken);
  return values.filter((v): v is string => typeof v === "string");
}

const redactors = new WeakMap<Config, Redactor>();

/** The redactor for every secret of `config`, built once per configuration. */
export function redactorFor(config: Config): Redactor {
  let redactor = redactors.get(config);
  if (!redactor) {
    redactor = new Redactor(configSecrets(config));
    redactors.set(config, redactor);
  }
  return redactor;
}

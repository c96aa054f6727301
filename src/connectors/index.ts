/**
 * Connectors for one action attempt, all sharing one audited HttpClient.
 */
import type { Config } from "../config";
import { ActionFailure } from "./errors";
import { HubSpotConnector } from "./hubspot";
import type { HttpClient } from "./http-client";
import { MailchimpConnector } from "./mailchimp";

export interface Connectors {
  hubspot(): HubSpotConnector;
  mailchimp(): MailchimpConnector;
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
  };
}

/** Every credential value in the configuration, for the audit redactor. */
export function configSecrets(config: Config): string[] {
  const values: (string | null | undefined)[] = [config.adminToken];
  if (config.hubspot.enabled) values.push(config.hubspot.accessToken, config.hubspot.clientSecret);
  if (config.mailchimp.enabled) values.push(config.mailchimp.apiKey, config.mailchimp.webhookSecret);
  if (config.shopify.enabled) values.push(config.shopify.webhookSecret);
  if (config.salesforce.enabled) values.push(config.salesforce.clientSecret);
  if (config.stripe.enabled) values.push(config.stripe.secretKey);
  if (config.postmark.enabled) values.push(config.postmark.serverToken);
  return values.filter((v): v is string => typeof v === "string");
}

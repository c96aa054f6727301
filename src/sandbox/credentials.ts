/**
 * The sandbox's own credentials: with `SANDBOX=true`, any credential left unset takes these
 * values, and the built-in fakes accept exactly them. They guard nothing real, which is why
 * they can be committed and printed in the README.
 */
export const SANDBOX_ORIGIN = "https://sandbox.invalid";

export const SANDBOX_CREDENTIALS = {
  ADMIN_TOKEN: "sandbox-admin-token",
  HUBSPOT_ACCESS_TOKEN: "pat-sandbox-hubspot-token",
  HUBSPOT_CLIENT_SECRET: "sandbox-hubspot-client-secret",
  MAILCHIMP_API_KEY: "00000000000000000000000000000000-us21",
  MAILCHIMP_LIST_ID: "sandbox-list",
  MAILCHIMP_WEBHOOK_SECRET: "sandbox-mailchimp-secret",
  SHOPIFY_WEBHOOK_SECRET: "sandbox-shopify-secret",
  STRIPE_SECRET_KEY: "sk_test_sandbox_syncwire_0000000000",
  // The fake Salesforce answers token calls and API calls at one mount (its instance_url).
  SALESFORCE_LOGIN_URL: `${SANDBOX_ORIGIN}/salesforce`,
  SALESFORCE_CLIENT_ID: "sandbox-salesforce-client-id",
  SALESFORCE_CLIENT_SECRET: "sandbox-salesforce-client-secret",
  POSTMARK_SERVER_TOKEN: "sandbox-postmark-server-token",
  POSTMARK_FROM: "Syncwire Sandbox <welcome@sandbox.invalid>",
  POSTMARK_WELCOME_TEMPLATE: "welcome",
  // Not credentials, but the sandbox's CRM needs them to show the lost and unsubscribe flows.
  CRM_LOST_PROPERTY: "hs_lead_status",
  CRM_LOST_VALUE: "UNQUALIFIED",
  CRM_SUBSCRIPTION_PROPERTY: "syncwire_subscription",
} as const;

/**
 * Hosts the built-in fakes inside the worker (sandbox mode): one instance, named "sandbox",
 * whose fakes keep their JSON state in this object's storage, so the fake CRM and the fake
 * audience survive restarts of `npm start` and are shared by every request and consumer.
 *
 * The fakes send their webhooks back to the worker itself, without network: the request is
 * built against the sandbox origin and handed to the Hono app in-process, outside the vendor
 * call that caused it (waitUntil), retried like the vendors retry.
 */
import { DurableObject } from "cloudflare:workers";
import { getConfig, type Config } from "../config";
import { errorResponse } from "../errors";
import { app } from "../http/app";
import { SANDBOX_ORIGIN } from "./credentials";
import { createFakeHubSpot, type FakeHubSpotState } from "./fake-hubspot";
import { createFakeMailchimp, type FakeMailchimpState } from "./fake-mailchimp";
import { jsonResponse, type FakeService } from "./fake-service";
import { FakeStateStore } from "./host-storage";
import { createFakePostmark, type FakePostmarkState } from "./fake-postmark";
import { createFakeSalesforce, type FakeSalesforceState } from "./fake-salesforce";
import { createFakeStripe, type FakeStripeState } from "./fake-stripe";
import { readSeedRequest, writeIndex } from "./seed-route";
import { unsupported } from "./seed";
import { seedFakes } from "./seed-fakes";
import type { HubSpotWebhookInput } from "./hubspot-webhooks";
import type { MailchimpWebhookInput } from "./mailchimp-webhooks";
import { retryingDispatcher, type WebhookDispatcher } from "./webhooks";

type Fakes = Record<string, FakeService<unknown>>;

const PERSISTED_LOG_ENTRIES = 1_000;

/**
 * What the sandbox's HubSpot app subscribes to: contacts created and deleted, and changes of the
 * properties the flows read (the configured "lost" and subscription properties when set).
 */
export function defaultHubSpotWebhooks(config: Config, clientSecret: string): HubSpotWebhookInput {
  const properties = new Set(["email", "firstname", "lastname"]);
  for (const name of [config.crm.lostProperty, config.crm.subscriptionProperty]) if (name !== null) properties.add(name);
  return {
    targetUrl: `${SANDBOX_ORIGIN}/webhooks/hubspot`,
    clientSecret,
    subscriptions: [
      { subscriptionType: "contact.creation" },
      { subscriptionType: "contact.deletion" },
      ...[...properties].map((propertyName) => ({ subscriptionType: "contact.propertyChange" as const, propertyName })),
    ],
  };
}

/** One webhook on the audience: every event, whoever made the change. */
export function defaultMailchimpWebhooks(webhookSecret: string): MailchimpWebhookInput[] {
  return [{
    url: `${SANDBOX_ORIGIN}/webhooks/mailchimp/${encodeURIComponent(webhookSecret)}`,
    events: { subscribe: true, unsubscribe: true, profile: true, cleaned: true, upemail: true, campaign: true },
    sources: { user: true, admin: true, api: true },
  }];
}

export class SandboxHost extends DurableObject<Env> {
  private fakes: Fakes | null = null;
  private readonly deliver = retryingDispatcher(async (request) => app.fetch(request, this.env), { retries: 3, backoffMs: 200 });
  /** Never awaited by the vendor call; waitUntil keeps the object alive until delivered. */
  private readonly dispatch: WebhookDispatcher = (request) => {
    const delivery = this.deliver(request);
    this.ctx.waitUntil(delivery);
    return delivery;
  };

  private readonly store = new FakeStateStore(this.ctx.storage);

  private async load(): Promise<Fakes> {
    if (this.fakes) return this.fakes;
    const config = getConfig(this.env);
    const stored = await this.store.load(["hubspot", "mailchimp", "stripe", "salesforce", "postmark"]);
    const fakes: Fakes = {};
    if (config.hubspot.enabled) {
      fakes.hubspot = createFakeHubSpot({
        accessToken: config.hubspot.accessToken,
        state: stored.get("hubspot") as FakeHubSpotState | undefined,
        dispatch: this.dispatch,
        webhooks: defaultHubSpotWebhooks(config, config.hubspot.clientSecret),
      }) as FakeService<unknown>;
    }
    if (config.mailchimp.enabled) {
      fakes.mailchimp = createFakeMailchimp({
        apiKey: config.mailchimp.apiKey,
        listIds: [config.mailchimp.listId],
        state: stored.get("mailchimp") as FakeMailchimpState | undefined,
        dispatch: this.dispatch,
        webhooks: defaultMailchimpWebhooks(config.mailchimp.webhookSecret),
      }) as FakeService<unknown>;
    }
    if (config.stripe.enabled) {
      fakes.stripe = createFakeStripe({
        secretKey: config.stripe.secretKey,
        state: stored.get("stripe") as FakeStripeState | undefined,
      }) as FakeService<unknown>;
    }
    if (config.salesforce.enabled) {
      fakes.salesforce = createFakeSalesforce({
        clientId: config.salesforce.clientId,
        clientSecret: config.salesforce.clientSecret,
        // Token and API calls both reach this object through the sandbox origin (connectors/transport.ts).
        instanceUrl: `${SANDBOX_ORIGIN}/salesforce`,
        externalIdField: config.salesforce.externalIdField,
        state: stored.get("salesforce") as FakeSalesforceState | undefined,
      }) as FakeService<unknown>;
    }
    if (config.postmark.enabled) {
      fakes.postmark = createFakePostmark({
        serverToken: config.postmark.serverToken,
        templates: [config.postmark.welcomeTemplate],
        state: stored.get("postmark") as FakePostmarkState | undefined,
      }) as FakeService<unknown>;
    }
    this.fakes = fakes;
    return fakes;
  }

  /** `request.url` is `<any origin>/<vendor>/<vendor path>`, or `<any origin>/_sandbox/<control>` for the host's own. */
  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const [, vendor = "", ...rest] = url.pathname.split("/");
    if (vendor === HOST_CONTROLS) return this.control(request, rest.join("/"));
    const fake = (await this.load())[vendor];
    if (!fake) {
      return Response.json({ error: { code: "not_found", message: `no sandbox system named ${vendor}` } }, { status: 404 });
    }
    const response = await fake.handle(request, `/${rest.join("/")}${url.search}`);
    await this.save(vendor, fake, request.method !== "GET" && request.method !== "HEAD");
    return response;
  }

  /** Writes a fake's state; its records only after a call that may have changed them (host-storage.ts). */
  private async save(vendor: string, fake: FakeService<unknown>, records: boolean): Promise<void> {
    // Keep the request log short enough for the per-value limit.
    const log = (fake.state as { requests?: unknown[] }).requests;
    if (log && log.length > PERSISTED_LOG_ENTRIES) log.splice(0, log.length - PERSISTED_LOG_ENTRIES);
    await this.store.save(vendor, fake.state, records);
  }

  /** `/_sandbox/<name>`: controls that span the fakes (each fake's own are at `/<fake>/_sandbox/<name>`). */
  private async control(request: Request, name: string): Promise<Response> {
    if (name !== "seed" || request.method !== "POST") {
      // Read any body first: answering while the worker still streams it in fails that stream.
      if (request.body !== null) await request.arrayBuffer();
      return name !== "seed" ? errorResponse("not_found", `no sandbox control named ${name}`) : errorResponse("method_not_allowed", "seed takes POST");
    }
    const input = await readSeedRequest(request);
    if (input instanceof Response) return input;
    const config = getConfig(this.env);
    const fakes = await this.load();
    const hubspot = fakes.hubspot as FakeService<FakeHubSpotState> | undefined;
    const mailchimp = fakes.mailchimp as FakeService<FakeMailchimpState> | undefined;
    if (!hubspot || !mailchimp || !config.mailchimp.enabled) {
      return errorResponse("conflict", "seeding needs both the HubSpot and the Mailchimp fakes (their integrations are disabled)");
    }
    const settings = { listId: config.mailchimp.listId, crm: config.crm };
    const problem = unsupported(input, settings);
    if (problem !== null) return errorResponse("invalid_request", problem);
    // Both fakes change at once, before anything is awaited; then their storage, then the index.
    const { answer, index } = seedFakes(hubspot.state.data, mailchimp.state.data, input, settings);
    await Promise.all([this.save("hubspot", hubspot as FakeService<unknown>, true), this.save("mailchimp", mailchimp as FakeService<unknown>, true)]);
    await writeIndex(this.env.DB, index);
    return jsonResponse(answer);
  }
}

const HOST_CONTROLS = "_sandbox";

/**
 * Hosts the built-in fakes inside the worker (sandbox mode): one instance, named "sandbox",
 * whose fakes keep their JSON state in this object's storage, so the fake CRM and the fake
 * audience survive restarts of `npm start` and are shared by every request and consumer.
 */
import { DurableObject } from "cloudflare:workers";
import { getConfig } from "../config";
import { createFakeHubSpot, type FakeHubSpotState } from "./fake-hubspot";
import { createFakeMailchimp, type FakeMailchimpState } from "./fake-mailchimp";
import type { FakeService } from "./fake-service";

type Fakes = Record<string, FakeService<unknown>>;

const PERSISTED_LOG_ENTRIES = 1_000;

export class SandboxHost extends DurableObject<Env> {
  private fakes: Fakes | null = null;

  private async load(): Promise<Fakes> {
    if (this.fakes) return this.fakes;
    const config = getConfig(this.env);
    const stored = await this.ctx.storage.get<Record<string, unknown>>(["hubspot", "mailchimp"]);
    const fakes: Fakes = {};
    if (config.hubspot.enabled) {
      fakes.hubspot = createFakeHubSpot({
        accessToken: config.hubspot.accessToken,
        state: stored.get("hubspot") as FakeHubSpotState | undefined,
      }) as FakeService<unknown>;
    }
    if (config.mailchimp.enabled) {
      fakes.mailchimp = createFakeMailchimp({
        apiKey: config.mailchimp.apiKey,
        listIds: [config.mailchimp.listId],
        state: stored.get("mailchimp") as FakeMailchimpState | undefined,
      }) as FakeService<unknown>;
    }
    this.fakes = fakes;
    return fakes;
  }

  /** `request.url` is `<any origin>/<vendor>/<vendor path>`. */
  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const [, vendor = "", ...rest] = url.pathname.split("/");
    const fake = (await this.load())[vendor];
    if (!fake) {
      return Response.json({ error: { code: "not_found", message: `no sandbox system named ${vendor}` } }, { status: 404 });
    }
    const response = await fake.handle(request, `/${rest.join("/")}${url.search}`);
    // One stored value per fake: keep its request log short enough for the per-value limit.
    const log = (fake.state as { requests?: unknown[] }).requests;
    if (log && log.length > PERSISTED_LOG_ENTRIES) log.splice(0, log.length - PERSISTED_LOG_ENTRIES);
    await this.ctx.storage.put(vendor, fake.state);
    return response;
  }
}

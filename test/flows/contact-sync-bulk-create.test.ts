/**
 * CRM contacts made in bulk: people who subscribed in the email platform and whom the CRM does
 * not know are looked up together (batch/read by email) and made together (batch/create with an
 * objectWriteTraceId per input), and one address the CRM got in the meantime (409, "Existing
 * ID") is that contact's alone: it joins the existing contact, nothing is made twice.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { createConnectors } from "../../src/connectors";
import { HttpClient } from "../../src/connectors/http-client";
import { createTransport } from "../../src/connectors/transport";
import { pipelineDeps } from "../../src/pipeline/consumer";
import { emailSubscribed } from "../support/contacts";
import { actionRow, consume } from "../support/messages";
import { unique } from "../support/sync";
import { createCrmContact, HUBSPOT_TOKEN, resetSandbox, sandboxFetch, vendorRequests } from "../support/sandbox";

beforeEach(resetSandbox);

async function crmIdsOf(email: string): Promise<string | null> {
  const res = await sandboxFetch(`/hubspot/crm/v3/objects/contacts/${encodeURIComponent(email)}?idProperty=email`, { headers: { authorization: `Bearer ${HUBSPOT_TOKEN}` } });
  return res.status === 200 ? ((await res.json()) as { id: string }).id : null;
}

describe("subscribes of people the CRM does not know, in one batch", () => {
  it("are read and made in one call each; an address the CRM got meanwhile joins its contact", async () => {
    const emails = [unique("new.a"), unique("new.b"), unique("new.c")];
    const messages = await Promise.all(emails.map((e, i) => emailSubscribed(e, `First${i}`, `Last${i}`)));
    // A person adds the third address to the CRM between the sync's read and its create.
    let existing: string | null = null;
    const config = pipelineDeps(env).config;
    const sandbox = createTransport(env, config);
    const transport = async (request: Request) => {
      if (request.url.endsWith("/batch/create") && existing === null) existing = await createCrmContact({ email: emails[2]! });
      return sandbox(request);
    };
    const base = pipelineDeps(env);
    const from = (await vendorRequests("hubspot")).length;
    const result = await consume(messages, {
      ...base,
      connectorsFor: (context, audit, deadline) => createConnectors(config, new HttpClient({ transport, audit, redactor: base.redactor, context, deadline })),
    });
    expect(result.explicitAcks.sort()).toEqual([...result.ids].sort());

    const calls = (await vendorRequests("hubspot")).slice(from).filter((r) => !(r.method === "POST" && r.path === "/crm/v3/objects/contacts"));
    // The existing contact then gets the subscribe's names (it had none): a write of its own.
    expect(calls.map((r) => `${r.method} ${r.path.split("?")[0]}`)).toEqual([
      "POST /crm/v3/objects/contacts/batch/read",
      "POST /crm/v3/objects/contacts/batch/create",
      `PATCH /crm/v3/objects/contacts/${existing}`,
    ]);
    expect(calls[2]!.body).toMatchObject({ properties: { firstname: "First2", lastname: "Last2" } });
    expect(calls[0]!.body).toMatchObject({ idProperty: "email", inputs: emails.map((id) => ({ id })) });
    const created = calls[1]!;
    expect(created.status).toBe(207);
    expect((created.body as { inputs: { objectWriteTraceId?: string; properties: Record<string, string> }[] }).inputs.map((i) => [i.properties.email, i.objectWriteTraceId])).toEqual(emails.map((e, i) => [e, String(i)]));

    // One contact per address: the third is the person's, not a second one.
    expect(await crmIdsOf(emails[2]!)).toBe(existing);
    for (const email of emails.slice(0, 2)) expect(await crmIdsOf(email)).not.toBeNull();
    for (const m of messages) expect(await actionRow(m.event.id)).toMatchObject({ state: "done" });
    const indexed = await env.DB.prepare("SELECT contact_key FROM contact_emails WHERE email = ?").bind(emails[2]).first<{ contact_key: string }>();
    expect(indexed?.contact_key).toBe(`contact:${existing}`);
  });
});

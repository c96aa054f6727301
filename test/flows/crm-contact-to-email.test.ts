/** The first flow: order-insensitive and idempotent because it writes the CRM's current state. */
import { beforeEach, expect, it } from "vitest";
import { createCrmContact, HUBSPOT_TOKEN, mailchimpMember, resetSandbox, sandboxFetch, vendorRequests } from "../support/sandbox";
import { contactCreated, deliver } from "../support/messages";

beforeEach(resetSandbox);

async function renameContact(id: string, firstname: string) {
  const res = await sandboxFetch(`/hubspot/crm/v3/objects/contacts/${id}`, {
    method: "PATCH",
    headers: { authorization: `Bearer ${HUBSPOT_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ properties: { firstname } }),
  });
  expect(res.status).toBe(200);
}

it("ends with the CRM's current names whatever order two events for a contact arrive in", async () => {
  const id = await createCrmContact({ email: "order@example.com", firstname: "Old", lastname: "Name" });
  const early = await contactCreated(id);
  await renameContact(id, "New");
  const late = await contactCreated(id);
  await deliver([late]);
  await deliver([early]);
  expect(await mailchimpMember("order@example.com")).toMatchObject({ merge_fields: { FNAME: "New", LNAME: "Name" } });
});

it("reads the contact with the properties it needs and PUTs the member by its subscriber hash", async () => {
  const id = await createCrmContact({ email: "Shape@Example.com", firstname: "Sha", lastname: "Pe" });
  await deliver([await contactCreated(id)]);
  const [get] = (await vendorRequests("hubspot")).filter((r) => r.method === "GET");
  expect(get?.path).toBe(`/crm/v3/objects/contacts/${id}?properties=email,firstname,lastname`);
  const [put] = (await vendorRequests("mailchimp")).filter((r) => r.method === "PUT");
  expect(put?.path).toBe("/3.0/lists/list0001/members/173f96de42ed1d615ede6f18ac198242"); // md5("shape@example.com")
  expect(put?.body).toEqual({ email_address: "shape@example.com", status_if_new: "subscribed", merge_fields: { FNAME: "Sha", LNAME: "Pe" } });
});

it("never resubscribes a member who unsubscribed", async () => {
  const id = await createCrmContact({ email: "gone@example.com", firstname: "Gone" });
  await deliver([await contactCreated(id)]);
  const res = await sandboxFetch(`/mailchimp/3.0/lists/list0001/members/gone@example.com`, {
    method: "PATCH",
    headers: { authorization: `Basic ${btoa("x:0123456789abcdef0123456789abcdef-us21")}`, "content-type": "application/json" },
    body: JSON.stringify({ status: "unsubscribed" }),
  });
  expect(res.status).toBe(200);
  await deliver([await contactCreated(id)]);
  expect(await mailchimpMember("gone@example.com")).toMatchObject({ status: "unsubscribed" });
});

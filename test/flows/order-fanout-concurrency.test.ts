/**
 * Two orders of one customer processed at once, by two consumer invocations side by side (the
 * platform runs up to max_concurrency of them; Miniflare runs one, so the test calls the
 * handler twice concurrently): one welcome email ever (once_effects claimed in one D1 batch),
 * one Stripe customer (the same Idempotency-Key; a key still in flight answers 409, retried),
 * and an invoice per order.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { pipelineDeps } from "../../src/pipeline/consumer";
import { consume } from "../support/messages";
import { deliverUntilSettled } from "../support/sync";
import { invoicesOf, orderMessage, outbox, resetFanoutFakes, shopifyOrder, stripeData } from "../support/orders";

beforeEach(resetFanoutFakes);

describe("two orders of one customer at the same time", () => {
  it("in two concurrent invocations: one welcome, one Stripe customer, two invoices", async () => {
    const first = shopifyOrder({ name: "#2001", lines: [{ title: "Mug", price: "12.00", quantity: 1 }], totalPrice: "12.00" });
    const second = shopifyOrder({ customerId: first.customerId, email: first.email, name: "#2002", lines: [{ title: "Tea", price: "8.00", quantity: 2 }], totalPrice: "16.00" });
    const messages = [await orderMessage(first.raw), await orderMessage(second.raw)];

    await Promise.all([consume([messages[0]!], pipelineDeps(env)), consume([messages[1]!], pipelineDeps(env))]);
    // A Stripe key still in flight in the other invocation is a transient 409: settle what was retried.
    await deliverUntilSettled(messages);

    expect(await outbox(first.email)).toHaveLength(1);
    const customers = Object.values((await stripeData()).customers).filter((c) => c.metadata.shopify_customer_id === first.customerId);
    expect(customers).toHaveLength(1);
    const invoices = [...(await invoicesOf(first.orderId)), ...(await invoicesOf(second.orderId))];
    expect(invoices.map((i) => [i.status, i.total, i.customer])).toEqual([
      ["open", 1200, customers[0]!.id],
      ["open", 1600, customers[0]!.id],
    ]);
  });
});

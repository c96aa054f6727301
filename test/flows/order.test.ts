/**
 * A Shopify order as the fan-out reads it: invoice lines in minor units whose sum is the order's
 * total_price, whatever the currency, discounts, shipping and tax; what makes an order invalid.
 */
import { describe, expect, it } from "vitest";
import { invoiceOf, parseOrder } from "../../src/flows/order-fanout/order";

const invoice = (payload: unknown) => invoiceOf(parseOrder(payload));
import { parseJsonLossless } from "../../src/ingest/json";

const base = {
  id: 450789469,
  name: "#1001",
  email: "bob@example.com",
  currency: "USD",
  taxes_included: false,
  customer: { id: 207119551, email: "bob@example.com", first_name: "Bob", last_name: "Norman" },
};

const sum = (lines: { amount: number }[]) => lines.reduce((n, l) => n + l.amount, 0);

describe("invoice lines", () => {
  it("prices each line less its discounts, then shipping after its discount, then tax: the order's total exactly", () => {
    const order = invoice({
      ...base,
      total_price: "59.93",
      total_tax: "4.44",
      line_items: [
        { id: 1, title: "IPod Nano", quantity: 2, price: "19.99", discount_allocations: [{ amount: "3.00" }] },
        { id: 2, title: "Cable", quantity: 1, price: "9.50", discount_allocations: [] },
      ],
      shipping_lines: [{ title: "Standard", price: "10.00", discounted_price: "9.01" }],
    });
    expect(order.lines).toEqual([
      { description: "IPod Nano x 2", amount: 3698 },
      { description: "Cable", amount: 950 },
      { description: "Shipping", amount: 901 },
      { description: "Tax", amount: 444 },
    ]);
    expect(sum(order.lines)).toBe(5993);
    expect(order.total).toBe(5993);
  });

  it("keeps yen whole (a zero-decimal currency), and adds no tax line when prices include it", () => {
    const order = invoice({ ...base, currency: "JPY", taxes_included: true, total_tax: "91", total_price: "1000", line_items: [{ title: "Tea", quantity: 1, price: "1000" }] });
    expect(order.lines).toEqual([{ description: "Tea", amount: 1000 }]);
    expect(order.total).toBe(1000);
  });

  it("says by how much Shopify's figures miss the total (an order-level discount allocated to no line), so the invoice still totals the order", () => {
    const order = invoice({ ...base, total_price: "15.00", line_items: [{ title: "Mug", quantity: 1, price: "20.00" }] });
    expect(order.lines.at(-1)).toEqual({ description: "Order discount", amount: -500 });
    expect(sum(order.lines)).toBe(1500);
  });

  it("keeps an 18-digit customer id exact from the raw body", () => {
    const raw = `{"id": 820982911946154508, "currency": "USD", "total_price": "1.00", "line_items": [{"title": "x", "quantity": 1, "price": "1.00"}], "customer": {"id": 115310627314723954, "email": "a@example.com"}}`;
    const parsed = parseJsonLossless(raw);
    if (!parsed.ok) throw new Error(parsed.message);
    const order = parseOrder(parsed.value);
    expect(order.id).toBe("820982911946154508");
    expect(order.customerId).toBe("115310627314723954");
  });
});

describe("what the fan-out cannot invoice", () => {
  it("leaves the customer readable when only the amounts are wrong (the Contact and the welcome need no amounts)", () => {
    expect(parseOrder({ ...base, currency: "JPY", total_price: "10.5", line_items: [] }).customerId).toBe("207119551");
  });

  const line = [{ title: "x", quantity: 1, price: "1.00" }];
  it.each([
    ["no currency", { ...base, currency: undefined, total_price: "1.00", line_items: line }],
    ["a yen amount with decimals", { ...base, currency: "JPY", total_price: "10.5", line_items: [] }],
    ["an amount that is not a number", { ...base, total_price: "ten", line_items: line }],
  ])("%s: the invoice is invalid, never retried", (_, payload) => {
    expect(() => invoice(payload)).toThrowError(expect.objectContaining({ kind: "invalid" }));
  });
});

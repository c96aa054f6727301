/**
 * /docs in real headless Chromium (issue 10): Scalar renders the worker's own OpenAPI document
 * from the script the worker serves, with no request to any other origin and nothing refused by
 * the page's CSP (a refusal would mean Scalar tried to reach out). Screenshot in test-results/.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, outside, recordRequests, screenshot } from "../support/browser";
import { startLocalWorker, type LocalWorker } from "../support/local-worker";

let worker: LocalWorker;
let browser: Browser;

beforeAll(async () => {
  [worker, browser] = await Promise.all([startLocalWorker({ vars: { SANDBOX: "true", ADMIN_TOKEN: "docs-browser-admin-token" } }), launchChromium()]);
});

afterAll(async () => {
  await Promise.all([browser?.close(), worker?.close()]);
});

describe("GET /docs in Chromium", () => {
  it("renders every tag of the document offline, and talks only to the worker", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const requests = recordRequests(page);
    const refused: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") refused.push(message.text());
    });
    const res = await page.goto(`${worker.url}/docs`);
    expect(res?.status()).toBe(200);
    // Scalar fetched /openapi.json and drew it: every tag as a sidebar group, the first one open.
    await page.getByText("HubSpot webhook (a batch of up to 100 events)").first().waitFor({ timeout: 30_000 });
    const sidebar = await page.locator("body").innerText();
    for (const tag of ["events", "conflicts", "sync runs", "dead letters", "audit", "dashboard", "metrics"]) {
      expect(sidebar, tag).toContain(`Open Group - ${tag}`);
    }
    // A closed group opens on a click and shows its operations.
    await page.getByText("Open Group - conflicts").first().click();
    await page.getByText("Resolve a conflict").first().waitFor({ timeout: 10_000 });
    expect(await page.locator("body").innerText()).toContain("List conflicts, newest first");
    expect(requests).toContain(`${worker.url}/openapi.json`);
    expect(outside(requests, worker.url)).toEqual([]);
    expect(refused.filter((text) => /Content Security Policy|Refused to/i.test(text))).toEqual([]);
    // The reference is one long page; the first screen shows what a newcomer sees.
    await screenshot(page, "docs", false);
    await context.close();
  });
});

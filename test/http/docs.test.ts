/**
 * GET /docs (issue 10): the API reference, public, and working with no internet. The page loads
 * one script, from this worker's static assets, and shows /openapi.json; its CSP lets the browser
 * reach nothing but this origin. The script itself is a static asset, which SELF does not reach
 * (it calls the worker, not the assets in front of it): test/e2e/docs.test.ts fetches it from the
 * bundled worker in Miniflare, as deployed. The page in a real browser: test/browser.
 */
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DOCS_CSP, SCALAR_OPTIONS, SCALAR_SCRIPT } from "../../src/http/docs";
import { ORIGIN } from "./admin-support";

const get = (path: string) => SELF.fetch(`${ORIGIN}${path}`);

/** Every URL the page names in a src or href attribute. */
const urlsIn = (html: string) => [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);

describe("GET /docs", () => {
  it("is served without a token, as HTML", async () => {
    const res = await get("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await res.text()).toContain("<title>Syncwire API reference</title>");
  });

  it("loads its script from this origin only, and shows /openapi.json", async () => {
    const html = await (await get("/docs")).text();
    const scripts = [...html.matchAll(/<script\b[^>]*\bsrc="([^"]*)"/g)].map((m) => m[1]);
    expect(scripts).toEqual([SCALAR_SCRIPT]);
    for (const url of urlsIn(html)) expect(url, url).toMatch(/^(\/(?!\/)|data:)/);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).toContain('data-url="/openapi.json"');
    // The options Scalar reads, as the page carries them (entities decoded as the browser does).
    const config = /data-configuration="([^"]*)"/.exec(html)?.[1]?.replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
    expect(JSON.parse(config ?? "null")).toEqual(SCALAR_OPTIONS);
    expect(SCALAR_OPTIONS).toMatchObject({ url: "/openapi.json", withDefaultFonts: false, agent: { disabled: true }, mcp: { disabled: true }, showDeveloperTools: "never", hideClientButton: true });
    expect(SCALAR_OPTIONS).not.toHaveProperty("proxyUrl");
  });

  it("has no inline script to run: the one script element without src is JSON data", async () => {
    const html = await (await get("/docs")).text();
    const inline = [...html.matchAll(/<script\b(?![^>]*\bsrc=)([^>]*)>/g)].map((m) => m[1]);
    expect(inline).toHaveLength(1);
    expect(inline[0]).toContain('type="application/json"');
  });

  it("sends a CSP that allows nothing from another origin", async () => {
    const res = await get("/docs");
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toBe(DOCS_CSP);
    const directives = new Map(csp.split(";").map((d) => d.trim().split(/\s+/)).map(([name, ...sources]) => [name!, sources]));
    expect(directives.get("script-src")).toEqual(["'self'"]);
    expect(directives.get("connect-src")).toEqual(["'self'"]);
    for (const [name, sources] of directives) {
      for (const source of sources) expect(`${name} ${source}`).toMatch(/ ('self'|'none'|'unsafe-inline'|data:|blob:)$/);
    }
    expect(directives.get("style-src")).toContain("'unsafe-inline'");
    expect(directives.get("script-src")).not.toContain("'unsafe-inline'");
  });
});

/**
 * /docs as deployed: the bundled worker in Miniflare with wrangler.toml's [assets], where a
 * request matches a static file first and reaches the worker otherwise. The script comes from
 * the assets (so the page needs no CDN); /docs itself and what no file matches reach the worker.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DOCS_CSP, SCALAR_SCRIPT } from "../../src/http/docs";
import { startLocalWorker, type LocalWorker } from "../support/local-worker";

let worker: LocalWorker;

beforeAll(async () => {
  worker = await startLocalWorker({ vars: { SANDBOX: "true", ADMIN_TOKEN: "e2e-docs-admin-token-0123456789" } });
});

afterAll(async () => {
  await worker?.close();
});

describe("/docs with the worker's static assets", () => {
  it("serves the reference's script from the assets, as copied by scripts/copy-assets.mjs", async () => {
    const res = await fetch(`${worker.url}${SCALAR_SCRIPT}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/javascript/);
    const served = await res.text();
    expect(served.length).toBeGreaterThan(1_000_000);
    // The package's single-file bundle, less its source-map comment (the map is not served).
    const bundle = await readFile(resolve(import.meta.dirname, "../../node_modules/@scalar/api-reference/dist/browser/standalone.js"), "utf8");
    expect(served).toBe(bundle.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n"));
  });

  it("lets /docs reach the worker: the page, with its CSP", async () => {
    const res = await fetch(`${worker.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("content-security-policy")).toBe(DOCS_CSP);
    expect(await res.text()).toContain(`<script src="${SCALAR_SCRIPT}"></script>`);
  });

  it("lets what no file matches reach the worker (its 404), and the document it shows", async () => {
    const missing = await fetch(`${worker.url}/docs/missing.js`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: "not_found", message: "no such route" } });
    const doc = await fetch(`${worker.url}/openapi.json`);
    expect(doc.status).toBe(200);
    expect(((await doc.json()) as { paths: Record<string, unknown> }).paths).toHaveProperty("/docs");
  });
});

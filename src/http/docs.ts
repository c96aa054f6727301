/**
 * GET /docs: the interactive API reference (Scalar) over GET /openapi.json. Public, like the
 * document it shows (CONTRACT 5).
 *
 * It works with no internet: Scalar's single-file browser bundle is a static asset of this worker
 * (wrangler.toml [assets], copied from node_modules by scripts/copy-assets.mjs), the options below
 * turn off everything that would call Scalar's services or load its fonts, and the page's
 * Content-Security-Policy lets the browser load or fetch nothing from another origin, so anything
 * that tried would fail visibly rather than leak.
 *
 * The page is written here rather than by @scalar/hono-api-reference: that one starts Scalar from
 * an inline script, while this page passes the options in a `data-configuration` attribute, so
 * the CSP can say `script-src 'self'` with no inline script, hash or nonce.
 */
import { Hono } from "hono";
import type { AppEnv } from "./app-env";

/** Served by the worker's static assets, not by a route: see scripts/copy-assets.mjs. */
export const SCALAR_SCRIPT = "/docs/scalar.js";

/** The document the reference shows. */
export const DOCUMENT_URL = "/openapi.json";

/**
 * Scalar's options (@scalar/api-reference 1.76.0, read from its bundle's config schema). Without
 * these, the page would reach other origins: fonts.scalar.com for Inter and JetBrains Mono, and on
 * localhost the "Ask AI" agent (api.scalar.com) and the developer tools' explore modal (which
 * loads a cal.com script). `telemetry` is read by nothing in this version; off in case a later
 * one does. The request proxy (proxy.scalar.com) is used only when `proxyUrl` is set, so it is
 * left unset: "Test request" calls this worker directly, same-origin.
 */
export const SCALAR_OPTIONS = {
  url: DOCUMENT_URL,
  withDefaultFonts: false, // the system's fonts instead of fonts.scalar.com
  telemetry: false,
  agent: { disabled: true },
  mcp: { disabled: true },
  showDeveloperTools: "never",
  // The sidebar's "Open API Client" opens client.scalar.com with this document's URL; each
  // operation's "Test request" (Scalar's client inside the page) stays.
  hideClientButton: true,
} as const;

/**
 * Everything from this origin only. Styles may be inline: Scalar injects its stylesheet and
 * theme as <style> elements; a style cannot fetch anything font-src / img-src do not allow.
 */
export const DOCS_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const attribute = (value: string) => value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

// Scalar mounts itself before the `#api-reference` element and reads its options from it; the
// element is `application/json`, so it is data, never run. The icon is inline so that the browser
// does not ask for /favicon.ico.
const PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Syncwire API reference</title>
<link rel="icon" href="data:,">
</head>
<body>
<script id="api-reference" type="application/json" data-url="${attribute(DOCUMENT_URL)}" data-configuration="${attribute(JSON.stringify(SCALAR_OPTIONS))}"></script>
<script src="${SCALAR_SCRIPT}"></script>
<noscript>The API reference needs JavaScript; the document itself is at <a href="${DOCUMENT_URL}">${DOCUMENT_URL}</a>.</noscript>
</body>
</html>
`;

export const docs = new Hono<AppEnv>().get("/", (c) =>
  c.html(PAGE, 200, { "content-security-policy": DOCS_CSP, "x-content-type-options": "nosniff", "referrer-policy": "no-referrer" }),
);

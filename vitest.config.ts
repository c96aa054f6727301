import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Three projects: `workers` runs inside workerd with the real D1, Queue and Durable Object
// bindings from wrangler.toml; `e2e` runs in Node, starts the bundled worker in Miniflare and
// answers its outbound calls from the sandbox fakes served as real local HTTP servers; `browser`
// drives the dashboard and /docs in headless Chromium.
export default defineConfig(async () => {
  const migrations = await readD1Migrations("migrations");
  return {
    test: {
      projects: [
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: {
                  TEST_MIGRATIONS: migrations,
                  // Tests run against the built-in fakes with known credentials, so every
                  // outbound call is answered by code written to the vendors' docs.
                  SANDBOX: "true",
                  ADMIN_TOKEN: "test-admin-token",
                  HUBSPOT_ACCESS_TOKEN: "pat-test-hubspot-token",
                  HUBSPOT_CLIENT_SECRET: "test-hubspot-client-secret",
                  MAILCHIMP_API_KEY: "0123456789abcdef0123456789abcdef-us21",
                  MAILCHIMP_LIST_ID: "list0001",
                  MAILCHIMP_WEBHOOK_SECRET: "test-mailchimp-url-secret",
                  SHOPIFY_WEBHOOK_SECRET: "test-shopify-secret",
                  // The Stripe fake enforces no rate, and a 400-line order would spend 16 s in
                  // Stripe's real per-endpoint budget (25/s); the budget tests set their own.
                  STRIPE_RATE_LIMIT: "10000/1s",
                  STRIPE_ENDPOINT_RATE_LIMIT: "10000/1s",
                },
              },
            }),
          ],
          test: {
            name: "workers",
            include: ["test/**/*.test.ts"],
            exclude: ["test/e2e/**", "test/browser/**"],
            setupFiles: ["./test/setup.ts"],
            // The worker logs a JSON line per step; show them only for failing tests.
            silent: "passed-only",
            // Some tests wait for the real queue to deliver (batch timeout 1 s, retries 1 s+).
            testTimeout: 20_000,
          },
        },
        {
          test: {
            name: "e2e",
            environment: "node",
            include: ["test/e2e/**/*.test.ts"],
            testTimeout: 120_000,
            hookTimeout: 120_000,
          },
        },
        {
          // The dashboard and /docs in real headless Chromium (playwright-core, /usr/bin/chromium),
          // against the bundled worker in Miniflare.
          test: {
            name: "browser",
            environment: "node",
            include: ["test/browser/**/*.test.ts"],
            testTimeout: 120_000,
            hookTimeout: 120_000,
          },
        },
      ],
    },
  };
});

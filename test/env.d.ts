import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
    }
    // Types `exports` from "cloudflare:workers" as the worker's own module.
    interface GlobalProps {
      mainModule: typeof import("../src/index");
    }
  }
}
export {};

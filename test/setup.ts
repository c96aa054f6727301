import { env } from "cloudflare:workers";
import { applyD1Migrations } from "cloudflare:test";

// Storage is shared by the tests of a file; migrations are idempotent, so every file applies them.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);

#!/usr/bin/env node
// `npm start`: apply the D1 migrations locally, then serve the worker with `wrangler dev`
// (local D1, Queues, Durable Objects and cron). With no .dev.vars the worker runs in sandbox
// mode against its built-in fake APIs. Extra arguments go to wrangler: `npm start -- --port 8788`.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const wrangler = process.platform === "win32" ? "wrangler.cmd" : "wrangler";
const args = process.argv.slice(2);

const migrate = spawnSync("npx", [wrangler, "d1", "migrations", "apply", "DB", "--local"], {
  stdio: "inherit",
  env: { ...process.env, CI: "true" }, // never stop to ask for confirmation
});
if (migrate.status !== 0) process.exit(migrate.status ?? 1);

const devArgs = ["dev", "--test-scheduled", ...args];
if (!existsSync(".dev.vars")) {
  console.log("No .dev.vars: starting in sandbox mode (built-in fake HubSpot and Mailchimp). See README.");
  devArgs.push("--var", "SANDBOX:true");
}
const dev = spawn("npx", [wrangler, ...devArgs], { stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => dev.kill(signal));
dev.on("exit", (code) => process.exit(code ?? 0));

/**
 * Syncwire: wiring only. HTTP goes to the Hono app, each queue to its consumer, the cron to
 * the nightly job; the Durable Object classes are re-exported for the runtime.
 */
import { app } from "./http/app";
import { log } from "./observability/log";
import { consumeDeadLetters, consumeEvents } from "./pipeline/consumer";

export { EntityCoordinator } from "./entities/entity-coordinator.do";
export { SandboxHost } from "./sandbox/sandbox-host.do";

export default {
  fetch: app.fetch,
  async queue(batch, env) {
    if (batch.queue.endsWith("dead-letters")) await consumeDeadLetters(batch, env);
    else await consumeEvents(batch, env);
  },
  async scheduled(controller) {
    // The nightly reconciliation arrives with its own issue; the trigger is wired already.
    log("nightly_check", { cron: controller.cron, outcome: "skipped", reason: "the reconciliation is not built yet" });
  },
} satisfies ExportedHandler<Env>;

/**
 * Syncwire: wiring only. HTTP goes to the Hono app, each queue to its consumer, the cron to
 * the nightly job; the Durable Object classes are re-exported for the runtime.
 */
import { getConfig } from "./config";
import { app } from "./http/app";
import { log } from "./observability/log";
import { consumeDeadLetters, consumeEvents, redactorOf } from "./pipeline/consumer";
import { database } from "./pipeline/ledger";
import { r2PayloadStore } from "./pipeline/payloads";
import { pruneExpired } from "./pipeline/retention";

export { VendorBudget } from "./budgets/vendor-budget.do";
export { EntityCoordinator } from "./entities/entity-coordinator.do";
export { SandboxHost } from "./sandbox/sandbox-host.do";

// Only for a failure outside the per-message handling (which decides every message itself):
// retry what was not yet decided, after a pause rather than at once.
const CONSUMER_FAILURE_DELAY_SECONDS = 30;

export default {
  fetch: app.fetch,
  async queue(batch, env) {
    try {
      if (batch.queue.endsWith("dead-letters")) await consumeDeadLetters(batch, env);
      else await consumeEvents(batch, env);
    } catch (error) {
      // Returning would ack every message not yet decided; retry those instead.
      log("consumer_error", { queue: batch.queue, error: redactorOf(env)(String(error)), delaySeconds: CONSUMER_FAILURE_DELAY_SECONDS }, "error");
      batch.retryAll({ delaySeconds: CONSUMER_FAILURE_DELAY_SECONDS });
    }
  },
  async scheduled(controller, env) {
    // The nightly reconciliation arrives with its own issue; retention runs already.
    log("nightly_check", { cron: controller.cron, outcome: "skipped", reason: "the reconciliation is not built yet" });
    await pruneExpired(database(env.DB), r2PayloadStore(env.PAYLOADS), getConfig(env).auditRetentionDays);
  },
} satisfies ExportedHandler<Env>;

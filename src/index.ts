/**
 * Syncwire: wiring only. HTTP goes to the Hono app, each queue to its consumer, the cron to
 * the nightly job; the Durable Object classes are re-exported for the runtime.
 */
import { app } from "./http/app";
import { log } from "./observability/log";
import { consumeDeadLetters, consumeEvents, redactorOf } from "./pipeline/consumer";
import { scheduledTick } from "./reconcile/nightly";
import { consumeSync } from "./reconcile/consumer";

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
      else if (batch.queue.endsWith("-sync")) await consumeSync(batch, env);
      else await consumeEvents(batch, env);
    } catch (error) {
      // Returning would ack every message not yet decided; retry those instead.
      log("consumer_error", { queue: batch.queue, error: redactorOf(env)(String(error)), delaySeconds: CONSUMER_FAILURE_DELAY_SECONDS }, "error");
      batch.retryAll({ delaySeconds: CONSUMER_FAILURE_DELAY_SECONDS });
    }
  },
  async scheduled(controller, env) {
    await scheduledTick(env, controller.cron);
  },
} satisfies ExportedHandler<Env>;

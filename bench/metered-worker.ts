/**
 * Bench-only entry: the real worker (src/index.ts, unchanged) with its bindings wrapped in
 * meters, so the billable operations of the end-to-end run are counted where Cloudflare bills
 * them, at the binding boundary, instead of being guessed from the outside:
 * - Queues: messages written (send/sendBatch), delivered to the consumer, acked, retried;
 * - D1: round trips, statements, and `meta.rows_read` / `meta.rows_written` of every result
 *   (Miniflare fills these from SQLite's own cursor counters, as D1 does);
 * - Durable Objects: stub requests (fetch or RPC) on either namespace.
 * `GET /__bench/meter` answers the totals; every other request goes to the worker untouched.
 * The wrappers add a few function calls per binding call and nothing on the network.
 */
import worker from "../src/index";

export { EntityCoordinator, SandboxHost } from "../src/index";

export interface BindingMeter {
  queueWrites: Record<string, number>;
  queueDeliveries: Record<string, number>;
  queueAcks: Record<string, number>;
  queueRetries: Record<string, number>;
  d1RoundTrips: number;
  d1Statements: number;
  d1RowsRead: number;
  d1RowsWritten: number;
  /** `.raw()` results carry no meta; counted so a gap in the row figures is visible. */
  d1UnmeteredStatements: number;
  durableObjectRequests: number;
}

const meter: BindingMeter = {
  queueWrites: {},
  queueDeliveries: {},
  queueAcks: {},
  queueRetries: {},
  d1RoundTrips: 0,
  d1Statements: 0,
  d1RowsRead: 0,
  d1RowsWritten: 0,
  d1UnmeteredStatements: 0,
  durableObjectRequests: 0,
};

function bump(counter: Record<string, number>, key: string, by = 1): void {
  counter[key] = (counter[key] ?? 0) + by;
}

function addMeta(result: D1Result<unknown>): void {
  meter.d1RowsRead += result.meta?.rows_read ?? 0;
  meter.d1RowsWritten += result.meta?.rows_written ?? 0;
}

/** A statement that remembers the real one, so `batch` can hand the runtime its own objects. */
class MeteredStatement {
  constructor(readonly inner: D1PreparedStatement) {}
  bind(...values: unknown[]): MeteredStatement {
    return new MeteredStatement(this.inner.bind(...values));
  }
  private async counted(result: Promise<D1Result<unknown>>): Promise<D1Result<unknown>> {
    meter.d1RoundTrips++;
    meter.d1Statements++;
    const r = await result;
    addMeta(r);
    return r;
  }
  run(): Promise<D1Result<unknown>> {
    return this.counted(this.inner.run());
  }
  all(): Promise<D1Result<unknown>> {
    return this.counted(this.inner.all());
  }
  async first(column?: string): Promise<unknown> {
    const { results } = await this.all();
    const row = results[0] as Record<string, unknown> | undefined;
    return row === undefined ? null : column === undefined ? row : row[column];
  }
  raw(options?: { columnNames?: boolean }): Promise<unknown[]> {
    meter.d1RoundTrips++;
    meter.d1Statements++;
    meter.d1UnmeteredStatements++;
    return (this.inner.raw as (o?: { columnNames?: boolean }) => Promise<unknown[]>)(options);
  }
}

function meteredD1(d1: D1Database): D1Database {
  const wrapper = {
    prepare: (query: string) => new MeteredStatement(d1.prepare(query)),
    async batch(statements: MeteredStatement[]) {
      meter.d1RoundTrips++;
      meter.d1Statements += statements.length;
      const results = await d1.batch(statements.map((s) => s.inner));
      for (const r of results) addMeta(r);
      return results;
    },
    exec: (query: string) => d1.exec(query),
    withSession: () => wrapper,
  };
  return wrapper as unknown as D1Database;
}

function meteredQueue(name: string, queue: Queue): Queue {
  return {
    metrics: () => queue.metrics(),
    send(body, options) {
      bump(meter.queueWrites, name);
      return queue.send(body, options);
    },
    sendBatch(messages, options) {
      const list = [...messages];
      bump(meter.queueWrites, name, list.length);
      return queue.sendBatch(list, options);
    },
  };
}

function meteredNamespace(ns: DurableObjectNamespace): DurableObjectNamespace {
  // Only `get(id)` reaches an object; every call on the stub (fetch or RPC) is one request.
  return new Proxy(ns, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (prop !== "get" || typeof value !== "function") return typeof value === "function" ? value.bind(target) : value;
      return (...args: unknown[]) => {
        const stub = (value as (...a: unknown[]) => object).apply(target, args);
        return new Proxy(stub, {
          get(s, p) {
            const member = Reflect.get(s, p, s) as unknown;
            if (typeof member !== "function") return member;
            return (...a: unknown[]) => {
              meter.durableObjectRequests++;
              return (member as (...x: unknown[]) => unknown).apply(s, a);
            };
          },
        });
      };
    },
  });
}

// getConfig() caches per env object, so each original env maps to exactly one wrapped env.
const wrappedEnvs = new WeakMap<Env, Env>();

function metered(env: Env): Env {
  let wrapped = wrappedEnvs.get(env);
  if (!wrapped) {
    wrapped = {
      ...env,
      DB: meteredD1(env.DB),
      EVENTS: meteredQueue("syncwire-events", env.EVENTS),
      DEAD_LETTERS: meteredQueue("syncwire-dead-letters", env.DEAD_LETTERS),
      ENTITY: meteredNamespace(env.ENTITY),
      SANDBOX_HOST: meteredNamespace(env.SANDBOX_HOST),
    };
    wrappedEnvs.set(env, wrapped);
  }
  return wrapped;
}

function meteredBatch(batch: MessageBatch<unknown>): MessageBatch<unknown> {
  const queue = batch.queue;
  bump(meter.queueDeliveries, queue, batch.messages.length);
  const messages = batch.messages.map((m): Message<unknown> => ({
    id: m.id,
    timestamp: m.timestamp,
    body: m.body,
    attempts: m.attempts,
    ack() {
      bump(meter.queueAcks, queue);
      m.ack();
    },
    retry(options) {
      bump(meter.queueRetries, queue);
      m.retry(options);
    },
  }));
  return {
    queue,
    metadata: batch.metadata,
    messages,
    ackAll() {
      bump(meter.queueAcks, queue, messages.length);
      batch.ackAll();
    },
    retryAll(options) {
      bump(meter.queueRetries, queue, messages.length);
      batch.retryAll(options);
    },
  };
}

export default {
  fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "/__bench/meter") return Response.json(meter);
    return worker.fetch(request, metered(env), ctx);
  },
  queue(batch, env, ctx) {
    return worker.queue(meteredBatch(batch), metered(env), ctx);
  },
  scheduled(controller, env, ctx) {
    return worker.scheduled(controller, metered(env), ctx);
  },
} satisfies ExportedHandler<Env>;

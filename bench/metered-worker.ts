/**
 * Bench-only entry: the real worker (src/index.ts, unchanged) with its bindings wrapped in
 * meters, so the billable operations of the end-to-end run are counted where Cloudflare bills
 * them, at the binding boundary, instead of being guessed from the outside:
 * - Queues: messages written (send/sendBatch), delivered to the consumer, acked, retried;
 * - D1: round trips, statements, and `meta.rows_read` / `meta.rows_written` of every result
 *   (Miniflare fills these from SQLite's own cursor counters, as D1 does);
 * - Durable Objects: stub requests (fetch or RPC) on every namespace (ENTITY, SANDBOX_HOST, and
 *   BUDGET, the vendor budgets), whether the stub came from `get(id)` or `getByName(name)`: every
 *   call on a stub is one billed request;
 * - Workers: consumer invocations, and per invocation (one queue batch) its messages, the
 *   distinct entities they name, the Durable Object requests it made and the distinct objects
 *   it addressed, the vendor budgets' apart (attributed through AsyncLocalStorage, so
 *   overlapping invocations stay apart);
 * - R2: class A (put, list) and class B (get) operations on the payload store.
 * `GET /__bench/meter` answers the totals; every other request goes to the worker untouched.
 * The wrappers add a few function calls per binding call and nothing on the network.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import worker from "../src/index";

export { EntityCoordinator, SandboxHost, VendorBudget } from "../src/index";

export interface BindingMeter {
  queueWrites: Record<string, number>;
  queueDeliveries: Record<string, number>;
  queueAcks: Record<string, number>;
  queueRetries: Record<string, number>;
  d1RoundTrips: number;
  d1Statements: number;
  d1RowsRead: number;
  d1RowsWritten: number;
  /** Per statement kind (`insert events`, `select actions`, …): how often, rows read and written. */
  d1ByStatement: Record<string, { count: number; rowsRead: number; rowsWritten: number }>;
  /** `.raw()` results carry no meta; counted so a gap in the row figures is visible. */
  d1UnmeteredStatements: number;
  durableObjectRequests: number;
  /** The same requests by binding (ENTITY, SANDBOX_HOST, BUDGET). */
  durableObjectRequestsByNamespace: Record<string, number>;
  /** One entry per consumer invocation, in the order they started. */
  batches: BatchStat[];
  /** R2 operations on the payload store (large events only). */
  r2ClassA: number;
  r2ClassB: number;
  /** Where the consumer's time goes (wall ms; overlapping calls add up). */
  timing: { queueBatches: number; queueBatchMs: number; d1Ms: number; outboundFetches: number; outboundFetchMs: number; durableObjectMs: number };
}

/** What one consumer invocation (one queue batch) did. */
export interface BatchStat {
  queue: string;
  messages: number;
  /** Distinct `event.entityKey` of the batch's messages, before the email index joins any. */
  entityKeys: number;
  /** Requests to the entities' objects (ENTITY, SANDBOX_HOST); the vendor budgets' are `budgetRequests`. */
  durableObjectRequests: number;
  /** Distinct objects addressed (`getByName` names, `get` ids): the entities that reached a Durable Object. */
  durableObjects: number;
  /** Requests to the vendor budgets' objects (BUDGET): a few per batch, whatever its size. */
  budgetRequests: number;
  ms: number;
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
  d1ByStatement: {},
  d1UnmeteredStatements: 0,
  durableObjectRequests: 0,
  durableObjectRequestsByNamespace: {},
  batches: [],
  r2ClassA: 0,
  r2ClassB: 0,
  timing: { queueBatches: 0, queueBatchMs: 0, d1Ms: 0, outboundFetches: 0, outboundFetchMs: 0, durableObjectMs: 0 },
};

/** The invocation a binding call belongs to; undefined outside a queue invocation (a webhook, the admin API). */
interface BatchContext {
  stat: BatchStat;
  objects: Set<string>;
}
const currentBatch = new AsyncLocalStorage<BatchContext>();

/** Adds the wall time of `work` to a timing counter (workerd's clock moves only across I/O, which is what is measured). */
async function timed<T>(key: "queueBatchMs" | "d1Ms" | "outboundFetchMs" | "durableObjectMs", work: Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await work;
  } finally {
    meter.timing[key] += Date.now() - started;
  }
}

// The connectors call the global fetch; counting it here costs one wrapper per call.
const platformFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  meter.timing.outboundFetches++;
  return timed("outboundFetchMs", platformFetch(input, init));
};

function bump(counter: Record<string, number>, key: string, by = 1): void {
  counter[key] = (counter[key] ?? 0) + by;
}

/** `insert events`, `update actions`, `select audit_log`: the verb and the table, from drizzle's SQL. */
function statementKind(sql: string): string {
  const verb = /^\s*(\w+)/.exec(sql)?.[1]?.toLowerCase() ?? "?";
  const table = /\b(?:into|update|from)\s+"?(\w+)"?/i.exec(sql)?.[1] ?? "?";
  return `${verb} ${table}`;
}

function addMeta(sql: string, result: D1Result<unknown>): void {
  const read = result.meta?.rows_read ?? 0;
  const written = result.meta?.rows_written ?? 0;
  meter.d1RowsRead += read;
  meter.d1RowsWritten += written;
  const kind = (meter.d1ByStatement[statementKind(sql)] ??= { count: 0, rowsRead: 0, rowsWritten: 0 });
  kind.count++;
  kind.rowsRead += read;
  kind.rowsWritten += written;
}

/** A statement that remembers the real one, so `batch` can hand the runtime its own objects. */
class MeteredStatement {
  constructor(
    readonly sql: string,
    readonly inner: D1PreparedStatement,
  ) {}
  bind(...values: unknown[]): MeteredStatement {
    return new MeteredStatement(this.sql, this.inner.bind(...values));
  }
  private async counted(result: Promise<D1Result<unknown>>): Promise<D1Result<unknown>> {
    meter.d1RoundTrips++;
    meter.d1Statements++;
    const r = await timed("d1Ms", result);
    addMeta(this.sql, r);
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
    prepare: (query: string) => new MeteredStatement(query, d1.prepare(query)),
    async batch(statements: MeteredStatement[]) {
      meter.d1RoundTrips++;
      meter.d1Statements += statements.length;
      const results = await timed("d1Ms", d1.batch(statements.map((s) => s.inner)));
      results.forEach((r, i) => addMeta(statements[i]!.sql, r));
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

function meteredNamespace<T extends Rpc.DurableObjectBranded | undefined>(binding: string, ns: DurableObjectNamespace<T>): DurableObjectNamespace<T> {
  // Only a stub reaches an object (`get(id)`, `getByName(name)`); every call on it (fetch or RPC) is one request.
  const stubMakers = new Set<PropertyKey>(["get", "getByName"]);
  return new Proxy(ns, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (!stubMakers.has(prop) || typeof value !== "function") return typeof value === "function" ? value.bind(target) : value;
      return (...args: unknown[]) => {
        const stub = Reflect.apply(value as (...a: unknown[]) => object, target, args) as object;
        // A name, or an id (whose toString() is its hex form): either way one object.
        const object = `${binding}:${String(args[0])}`;
        return new Proxy(stub, {
          get(s, p) {
            const member = Reflect.get(s, p, s) as unknown;
            if (typeof member !== "function") return member;
            return (...a: unknown[]) => {
              meter.durableObjectRequests++;
              bump(meter.durableObjectRequestsByNamespace, binding);
              const batch = currentBatch.getStore();
              if (batch && binding === "BUDGET") {
                batch.stat.budgetRequests++;
              } else if (batch) {
                batch.stat.durableObjectRequests++;
                batch.objects.add(object);
                batch.stat.durableObjects = batch.objects.size;
              }
              // Reflect.apply, not member.apply: on an RPC stub, `.apply` would be a remote method.
              return timed("durableObjectMs", Promise.resolve(Reflect.apply(member as (...x: unknown[]) => unknown, s, a)));
            };
          },
        });
      };
    },
  });
}

/** R2 bills writes and lists as class A, reads as class B operations; deletes are free. */
function meteredBucket(bucket: R2Bucket): R2Bucket {
  return new Proxy(bucket, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (prop === "put" || prop === "list") meter.r2ClassA++;
        else if (prop === "get" || prop === "head") meter.r2ClassB++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
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
      SYNC: meteredQueue("syncwire-sync", env.SYNC),
      ENTITY: meteredNamespace("ENTITY", env.ENTITY),
      SANDBOX_HOST: meteredNamespace("SANDBOX_HOST", env.SANDBOX_HOST),
      BUDGET: meteredNamespace("BUDGET", env.BUDGET),
      PAYLOADS: meteredBucket(env.PAYLOADS),
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

// Typed as the platform sees it, so a handler that later takes `ctx` still gets it.
const real: Required<Pick<ExportedHandler<Env>, "fetch" | "queue" | "scheduled">> = worker;

export default {
  fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "/__bench/meter") return Response.json(meter);
    return real.fetch(request, metered(env), ctx);
  },
  queue(batch, env, ctx) {
    meter.timing.queueBatches++;
    const entityKeys = new Set(batch.messages.map((m) => (m.body as { event?: { entityKey?: unknown; id?: unknown } } | null)?.event).map((e) => String(e?.entityKey ?? e?.id)));
    const stat: BatchStat = { queue: batch.queue, messages: batch.messages.length, entityKeys: entityKeys.size, durableObjectRequests: 0, durableObjects: 0, budgetRequests: 0, ms: 0 };
    meter.batches.push(stat);
    const started = Date.now();
    return currentBatch.run({ stat, objects: new Set() }, () =>
      timed("queueBatchMs", Promise.resolve(real.queue(meteredBatch(batch), metered(env), ctx))).finally(() => {
        stat.ms = Date.now() - started;
      }),
    );
  },
  scheduled(controller, env, ctx) {
    return real.scheduled(controller, metered(env), ctx);
  },
} satisfies ExportedHandler<Env>;

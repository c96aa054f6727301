/**
 * Writes message outcomes (ledger rows, event status, dead letters, audit rows) as messages
 * finish, coalesced into few D1 round trips without letting a slow message hold the others:
 * an outcome waits at most SETTLE_WINDOW_MS for others to join it, and not at all once every
 * message of the batch has an outcome. Outcomes that arrive while a write is in flight go
 * into the next one. So a batch whose messages finish together settles in one round trip, and
 * a message that takes seconds delays the others' settle (and ack) by the window at most.
 *
 * When a shared write fails (D1 rejects the whole batch, e.g. for one bad row), each outcome is
 * written on its own, so only the message that cannot be settled is retried. An outbound call
 * that returned always ends with its audit row: if even its own settle fails, its audit rows
 * are written alone, and if D1 takes nothing at all, they go to the log as a last record.
 */
import type { Redactor } from "../audit/redact";
import { auditInserts, type AuditRecord } from "../audit/sink";
import { log } from "../observability/log";
import { runBatch, settleBatchStatements, type Db, type Settlement } from "./ledger";

/**
 * How long a finished outcome waits for others. Vendor calls take 100 ms and more, a D1 round
 * trip about 10 ms in production: 50 ms gathers most of a batch without delaying any ack by
 * more than a fraction of one vendor call.
 */
export const SETTLE_WINDOW_MS = 50;

interface Entry {
  settlement: Settlement;
  resolve(): void;
  reject(error: unknown): void;
}

export class Settler {
  private queue: Entry[] = [];
  private writing = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  /** @param outstanding how many messages of the batch may still submit an outcome */
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
    private readonly redactor: Redactor,
    private outstanding: number,
    private readonly windowMs = SETTLE_WINDOW_MS,
  ) {}

  /** Resolves once `settlement` is in D1; rejects when it could not be written. */
  submit(settlement: Settlement): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ settlement, resolve, reject });
      this.outstanding--;
      this.schedule();
    });
  }

  /** A message that ended without an outcome to write (decided at once, or failed): nobody waits for it. */
  skip(): void {
    this.outstanding--;
    this.schedule();
  }

  private schedule(): void {
    if (this.writing || this.queue.length === 0) return;
    if (this.outstanding <= 0) {
      void this.flush();
      return;
    }
    this.timer ??= setTimeout(() => void this.flush(), this.windowMs);
  }

  private async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.writing || this.queue.length === 0) return;
    this.writing = true;
    const entries = this.queue;
    this.queue = [];
    try {
      await this.write(entries);
    } finally {
      this.writing = false;
      // What arrived meanwhile has waited at least one write already: no further window.
      if (this.queue.length > 0) void this.flush();
    }
  }

  private async write(entries: Entry[]): Promise<void> {
    try {
      await runBatch(this.db, settleBatchStatements(this.db, entries.map((e) => e.settlement), this.now()));
      for (const e of entries) e.resolve();
      return;
    } catch {
      // One bad settlement fails the whole D1 batch, and a passing D1 error fails it just as
      // well: every outcome gets a write of its own (for a lone outcome, its second try).
    }
    await Promise.all(
      entries.map(async (entry) => {
        try {
          await runBatch(this.db, settleBatchStatements(this.db, [entry.settlement], this.now()));
          entry.resolve();
        } catch (error) {
          await this.settleFailed(entry, error);
        }
      }),
    );
  }

  /** The outcome is lost (the message will be retried); its audit rows are not. */
  private async settleFailed(entry: Entry, error: unknown): Promise<void> {
    const rows = entry.settlement.audit;
    if (rows.length > 0) await recordAuditAlone(this.db, rows, this.redactor);
    entry.reject(error);
  }
}

async function recordAuditAlone(db: Db, rows: AuditRecord[], redactor: Redactor): Promise<void> {
  try {
    await runBatch(db, auditInserts(db.$client, rows));
  } catch (error) {
    // Already redacted (HttpClient builds every row through the redactor).
    log("audit_unrecorded", { eventId: rows[0]?.eventId ?? undefined, error: redactor.redact(String(error)), rows }, "error");
  }
}

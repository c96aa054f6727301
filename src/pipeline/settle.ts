/**
 * Writes message outcomes (ledger rows, event status, dead letters, audit rows) as messages
 * finish, coalescing: the first outcome is written at once, and every outcome that arrives
 * while a write is in flight goes into the next one. Messages that finish together share one
 * D1 round trip; a slow message never holds the others back.
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

interface Entry {
  settlement: Settlement;
  resolve(): void;
  reject(error: unknown): void;
}

export class Settler {
  private queue: Entry[] = [];
  private writing: Promise<void> | null = null;

  constructor(
    private readonly db: Db,
    private readonly now: () => number,
    private readonly redactor: Redactor,
  ) {}

  /** Resolves once `settlement` is in D1; rejects when it could not be written. */
  submit(settlement: Settlement): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ settlement, resolve, reject });
      this.writing ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    // Let outcomes that finish in the same turn join the first write.
    await Promise.resolve();
    while (this.queue.length > 0) {
      const entries = this.queue;
      this.queue = [];
      await this.write(entries);
    }
    this.writing = null;
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

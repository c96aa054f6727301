/**
 * One Durable Object per entity (a contact by its CRM id, an order's customer by its Shopify
 * id). It will serialize every change to its entity, hold the per-field versions that make
 * conflict resolution and echo suppression possible, and keep them in its SQLite storage.
 * Bidirectional sync builds on it; for now it only owns its storage schema.
 */
import { DurableObject } from "cloudflare:workers";

export class EntityCoordinator extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      ctx.storage.sql.exec(
        `CREATE TABLE IF NOT EXISTS field_versions (
           field TEXT PRIMARY KEY,
           value TEXT,
           source TEXT NOT NULL,
           source_timestamp INTEGER NOT NULL,
           applied_at INTEGER NOT NULL
         )`,
      );
    });
  }
}

/**
 * A stand-in for the D1 platform binding that refuses chosen `batch` calls, the way D1 does when
 * it is briefly unavailable ("D1_ERROR: ..."). Everything else goes to the real binding.
 */
export interface StatementView {
  sql: string;
  params: unknown[];
}

/** What a prepared statement holds; workerd keeps both on the object. */
export function view(statement: D1PreparedStatement): StatementView {
  const s = statement as unknown as { statement: string; params: unknown[] };
  return { sql: s.statement, params: s.params ?? [] };
}

export function refusingBatches(d1: D1Database, refuse: (statements: StatementView[]) => boolean): D1Database & { refused: number } {
  const state = { refused: 0 };
  return new Proxy(d1, {
    get(target, prop) {
      if (prop === "refused") return state.refused;
      if (prop === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          if (refuse(statements.map(view))) {
            state.refused++;
            throw new Error("D1_ERROR: injected by the test: the database is unavailable");
          }
          return target.batch(statements);
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as D1Database & { refused: number };
}

/** True for a batch that settles actions (writes an outcome under a claim token). */
export const settlesActions = (statements: StatementView[]) => statements.some((s) => s.sql.startsWith("UPDATE actions SET state = ?, last_error"));

/**
 * Node side: the real worker, bundled as `wrangler deploy` would bundle it, served by
 * Miniflare with the bindings of wrangler.toml (local D1, Queues with their real delays,
 * Durable Objects) and the migrations applied. Shared by the end-to-end tests and the bench.
 */
import { readD1Migrations } from "@cloudflare/vitest-plugin";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

const ROOT = resolve(import.meta.dirname, "../..");

/** Bundles `entry` to one ES module the way wrangler does (workerd conditions, cloudflare:/node: external). */
export async function bundleWorker(entry = join(ROOT, "src/index.ts"), outfile = join(ROOT, ".build/worker.mjs")): Promise<string> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["browser", "module", "main"],
    external: ["cloudflare:*", "node:*"],
    logLevel: "warning",
  });
  return outfile;
}

export interface LocalWorker {
  url: string;
  mf: Miniflare;
  /** Runs one SQL statement against the worker's D1 and returns its rows. */
  query<T = Record<string, unknown>>(sql: string, ...params: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export interface LocalWorkerOptions {
  /** Vars and secrets, as `.dev.vars` would give them. */
  vars: Record<string, string>;
  /** A prebuilt bundle; built from src/index.ts when absent. */
  scriptPath?: string;
  /** Miniflare's own log of workerd output; off unless asked for. */
  verbose?: boolean;
  /** When given, everything the worker prints (its JSON log lines) is appended here. */
  logs?: string[];
  /** Opens workerd's V8 inspector on this port (for a CPU profile of the worker). */
  inspectorPort?: number;
  /**
   * Serve wrangler.toml's static assets (default true). Miniflare puts an asset router in front
   * of the worker for every request, on workerd's one thread; in production Cloudflare does that
   * lookup outside the worker. The bench turns it off to measure the worker's own paths.
   */
  assets?: boolean;
}

export async function startLocalWorker(options: LocalWorkerOptions): Promise<LocalWorker> {
  const scriptPath = options.scriptPath ?? (await bundleWorker());
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  if (options.assets === false) delete workerOptions.assets;
  const persist = await mkdtemp(join(tmpdir(), "syncwire-"));
  const mf = new Miniflare({
    ...workerOptions,
    name: "syncwire",
    modules: true,
    scriptPath,
    bindings: { ...workerOptions.bindings, ...options.vars },
    host: "127.0.0.1",
    // No fetch of Cloudflare's cf.json: this harness stays on loopback.
    cf: false,
    // Miniflare sends every outbound fetch through a worker of its own that strips the
    // CF-Connecting-IP header (production does that at the edge, for free). The fakes never read
    // it, and that hop cost a twelfth of workerd's CPU in the orders bench.
    stripCfConnectingIp: false,
    port: 0,
    defaultPersistRoot: persist,
    verbose: options.verbose ?? false,
    ...(options.inspectorPort ? { inspectorPort: options.inspectorPort } : {}),
    handleRuntimeStdio: options.verbose ? undefined : (stdout: NodeJS.ReadableStream, stderr: NodeJS.ReadableStream) => {
      for (const stream of [stdout, stderr]) {
        if (options.logs) stream.on("data", (chunk: Buffer) => options.logs!.push(chunk.toString("utf8")));
        else stream.resume();
      }
    },
  });
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const db = await mf.getD1Database("DB");
  for (const migration of await readD1Migrations(join(ROOT, "migrations"))) {
    for (const statement of migration.queries) await db.prepare(statement).run();
  }
  return {
    url,
    mf,
    async query<T>(sql: string, ...params: unknown[]) {
      const { results } = await db.prepare(sql).bind(...params).all();
      return results as T[];
    },
    close: () => mf.dispose(),
  };
}

import { join } from "node:path";
import { bundleWorker } from "../test/support/local-worker";
import { closeAll, ROOT } from "./harness";
import { runIngest } from "./ingest";
const script = await bundleWorker(join(ROOT, "src/index.ts"), join(ROOT, ".build/bench-worker.mjs"));
const conns = Number(process.argv[2] ?? 50);
try {
  const r = await runIngest(script, { connections: conns, durationSeconds: Number(process.argv[3] ?? 5), warmupSeconds: 2, distinctRequests: 30000 }, 1_000_000);
  console.log(JSON.stringify(r, null, 1));
} finally { await closeAll(); }

// Copies the files the worker serves as static assets (wrangler.toml [assets], ./public) out of
// node_modules, so they are never committed and always match the installed version: the Scalar API
// reference's browser bundle, served at /docs/scalar.js for the page at /docs (src/http/docs.ts).
// The page must work with no internet, so its script comes from the worker, not from a CDN.
// Run by `npm install` / `npm ci` (postinstall) and before `npm run deploy` (predeploy, --strict).
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

// A top-level devDependency, so npm always puts it in the root node_modules. `standalone.js` is
// one self-contained file (no chunks fetched later); the package's `exports` do not list it.
const copies = [{ from: "node_modules/@scalar/api-reference/dist/browser/standalone.js", to: "public/docs/scalar.js" }];

let missing = 0;
for (const { from, to } of copies) {
  const source = join(root, from);
  const target = join(root, to);
  // The directory always exists, so wrangler (which refuses a missing assets directory) still starts.
  await mkdir(dirname(target), { recursive: true });
  if (!(await stat(source).catch(() => null))) {
    // `npm ci --omit=dev` is not an error here; a deploy without the file is (--strict).
    console.warn(`copy-assets: ${from} is not installed, so /${relative("public", to)} will be missing`);
    missing++;
    continue;
  }
  // The source map is not copied, so its comment goes too: DevTools would ask the worker for it.
  const text = (await readFile(source, "utf8")).replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n");
  await writeFile(target, text);
  console.log(`copy-assets: ${to} (${((await stat(target)).size / 1e6).toFixed(1)} MB)`);
}

if (missing && process.argv.includes("--strict")) process.exit(1);

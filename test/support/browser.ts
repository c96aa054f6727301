/**
 * Node side: headless Chromium (the Debian package, never a download) driven by playwright-core,
 * for the dashboard and /docs tests. `.ci/run` installs the package when it is missing.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";

// Debian's package path first (what .ci/run installs), then the other distributions' names.
const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];
export const CHROMIUM = process.env.CHROMIUM_PATH ?? CANDIDATES.find((path) => existsSync(path)) ?? CANDIDATES[0]!;
export const RESULTS_DIR = resolve(import.meta.dirname, "../../test-results");

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run \`apt-get update && apt-get install -y chromium\` (or set CHROMIUM_PATH)`);
  // --no-sandbox: CI runs as root, where Chromium's own sandbox cannot start.
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}

/** Every URL the page asks for (documents, scripts, fetches, fonts), to prove it talks to nothing but the worker. */
export function recordRequests(page: Page): string[] {
  const urls: string[] = [];
  page.on("request", (request) => urls.push(request.url()));
  return urls;
}

/** The requests that left the worker's origin (data: and blob: URLs never leave the page). */
export const outside = (urls: string[], origin: string): string[] => urls.filter((u) => !u.startsWith(`${origin}/`) && !/^(data|blob|about):/.test(u));

/** A PNG of the page under test-results/ (ignored by git); the whole page unless `fullPage` is false. */
export async function screenshot(page: Page, name: string, fullPage = true): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage });
  return path;
}

/** The frame every dashboard page shares, and the small formatting helpers of its tables. */
import { raw } from "hono/html";
import type { Child, FC } from "hono/jsx";
import { SCRIPT, STYLE } from "./assets";

export const Layout: FC<{ title: string; nonce: string; signedIn: boolean; children?: Child }> = ({ title, nonce, signedIn, children }) => (
  <>
  {raw("<!DOCTYPE html>")}
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>{title} · Syncwire</title>
      <style dangerouslySetInnerHTML={{ __html: STYLE }} />
    </head>
    <body>
      <header>
        <h1>
          <a href="/dashboard">Syncwire</a>
        </h1>
        <span>{title}</span>
        <nav>
          <a href="/docs">API reference</a>
          {signedIn ? (
            <button type="button" id="signout">
              Sign out
            </button>
          ) : null}
        </nav>
      </header>
      <div id="status" role="status" aria-live="polite"></div>
      <main>{children}</main>
      <script nonce={nonce} dangerouslySetInnerHTML={{ __html: SCRIPT }} />
    </body>
  </html>
  </>
);

/** `2026-05-01T09:00:00.000Z` -> `2026-05-01 09:00:00Z`: exact, and readable in a table. */
export const when = (iso: string | null | undefined): string => (iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}Z` : "—");

/** Seconds as the largest whole unit: 42 s, 7 min, 3 h, 2 d. */
export function age(seconds: number | null): string {
  if (seconds === null) return "—";
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7_200) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3_600)} h`;
  return `${Math.floor(seconds / 86_400)} d`;
}

export const percent = (rate: number): string => `${+(rate * 100).toFixed(1)}%`;

export const ms = (value: number | null): string => (value === null ? "—" : `≤${value} ms`);

/** A status word in the colour of what it means. */
export const State: FC<{ value: string }> = ({ value }) => {
  const tone = ["ok", "enabled", "succeeded", "done", "success", "resolved", "delivered"].includes(value)
    ? "ok"
    : ["failed", "dead", "degraded", "misconfigured", "error", "open"].includes(value)
      ? "bad"
      : ["running", "retrying", "processing", "pending"].includes(value)
        ? "warn"
        : "muted";
  return <span class={`pill ${tone}`}>{value}</span>;
};

/** A button that POSTs `body` to an admin API path, then reloads the page with `done` as a message. */
export const ApiButton: FC<{ path: string; body?: unknown; done: string; confirm?: string; testId?: string; children?: Child }> = ({ path, body, done, confirm, testId, children }) => (
  <button type="button" data-post={path} data-body={JSON.stringify(body ?? {})} data-done={done} data-confirm={confirm} data-testid={testId}>
    {children}
  </button>
);

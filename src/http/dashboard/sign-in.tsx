/**
 * The dashboard's token. A browser cannot send a bearer header when it navigates, so the sign-in
 * form POSTs the token once (never in a URL: not in history, not in request logs) and gets it back
 * as a session cookie scoped to /dashboard, gone when the browser session ends. The pages take
 * that cookie or `Authorization: Bearer`; the admin API takes only the header, which the page's
 * script sends for every button, reading the token from the cookie (so the cookie cannot be
 * HttpOnly: the page's strict CSP and escaped output are what keep a script from reading it).
 */
import type { Context, MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { bearerToken, isAdminToken, operatorConfig, unauthorized } from "../admin/auth";
import type { AppEnv } from "../app-env";
import { TOKEN_COOKIE } from "./assets";
import { Layout } from "./layout";

export type DashboardEnv = AppEnv & { Variables: { secureHeadersNonce?: string } };

/** A token is a few dozen characters; a form body past this is not a sign-in. */
export const MAX_SIGN_IN_BYTES = 4 * 1024;

export const wantsHtml = (c: Context) => (c.req.header("accept") ?? "").includes("text/html");

const CHALLENGE = { "WWW-Authenticate": 'Bearer realm="syncwire"', "cache-control": "no-store" };

async function isToken(c: Context<DashboardEnv>, presented: string | null): Promise<boolean> {
  const token = operatorConfig(c.env).adminToken;
  return presented !== null && token !== null && (await isAdminToken(presented, token));
}

/** The sign-in page, answered with a 401; `wrong` when a token was presented and refused. */
function signInPage(c: Context<DashboardEnv>, wrong: boolean) {
  return c.html(
    <Layout title="Sign in" nonce={c.get("secureHeadersNonce") ?? ""} signedIn={false}>
      <form class="login" method="post" action="/dashboard/session" data-testid="login">
        <h2>Sign in</h2>
        <p class="muted">Enter the deployment's ADMIN_TOKEN. It is kept for this browser session only and sent to nothing but this worker.</p>
        {wrong ? <p class="bad" data-testid="login-error">That is not the admin token.</p> : null}
        <label>
          Admin token
          <input type="password" name="token" autocomplete="current-password" required autofocus />
        </label>
        <button type="submit">Sign in</button>
      </form>
    </Layout>,
    401,
    CHALLENGE,
  );
}

/** Middleware for every page: the admin token by header or cookie, else the sign-in page (a browser) or the 401 error shape. */
export const requireSignIn: MiddlewareHandler<DashboardEnv> = async (c, next) => {
  const presented = bearerToken(c.req.header("authorization")) ?? getCookie(c, TOKEN_COOKIE) ?? null;
  if (await isToken(c, presented)) return next();
  if (!wantsHtml(c)) return unauthorized(presented === null ? "send Authorization: Bearer <ADMIN_TOKEN>" : "the bearer token is not the admin token");
  return signInPage(c, presented !== null);
};

/** POST /dashboard/session (the form): the token right, the cookie set and back to the page (303); wrong, the form again (401). */
export async function signIn(c: Context<DashboardEnv>) {
  // The body's size is capped by the route (bodyLimit); anything but the form is no token.
  const form = (c.req.header("content-type") ?? "").startsWith("application/x-www-form-urlencoded") ? await c.req.parseBody() : {};
  const presented = typeof form.token === "string" ? form.token.trim() : null;
  if (!(await isToken(c, presented))) {
    if (!wantsHtml(c)) return unauthorized(presented === null ? "send the admin token as the form field `token`" : "the token is not the admin token");
    return signInPage(c, presented !== null);
  }
  // No Max-Age: a session cookie. Not HttpOnly: the page's script sends it as the API's bearer.
  setCookie(c, TOKEN_COOKIE, presented!, { path: "/dashboard", sameSite: "Strict", secure: new URL(c.req.url).protocol === "https:" });
  return c.redirect("/dashboard", 303);
}

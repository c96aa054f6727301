/**
 * GET /dashboard (CONTRACT 5): server-rendered pages for a person, behind the admin token like
 * the API. A browser cannot send a bearer header on navigation, so the token also comes from a
 * session cookie the sign-in form sets (assets.ts); without either, a browser gets the sign-in
 * form and everything else the 401 error shape. Every button calls the admin API (/api/*).
 */
import { Hono, type Context, type MiddlewareHandler } from "hono";
import type { Child } from "hono/jsx";
import { getCookie } from "hono/cookie";
import { NONCE, secureHeaders } from "hono/secure-headers";
import { z } from "zod";
import { RANGES, type Range } from "../../observability/series";
import type { AppEnv } from "../app-env";
import { bearerToken, isAdminToken, operatorConfig, unauthorized } from "../admin/auth";
import { TOKEN_COOKIE } from "./assets";
import { readEvent, readOverview, readRun } from "./data";
import { EventPage, RunPage } from "./details";
import { Layout } from "./layout";
import { OverviewPage } from "./overview";

type DashboardEnv = AppEnv & { Variables: { secureHeadersNonce?: string } };

// The page runs only its own inline script (by nonce) and talks only to this worker.
const headers = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    scriptSrc: [NONCE],
    styleSrc: ["'unsafe-inline'"],
    imgSrc: ["'self'", "data:"],
    connectSrc: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
  },
  referrerPolicy: "no-referrer",
});

const wantsHtml = (c: Context) => (c.req.header("accept") ?? "").includes("text/html");

const SignIn: MiddlewareHandler<DashboardEnv> = async (c, next) => {
  const token = operatorConfig(c.env).adminToken;
  const presented = bearerToken(c.req.header("authorization")) ?? getCookie(c, TOKEN_COOKIE) ?? null;
  if (presented !== null && token !== null && (await isAdminToken(presented, token))) return next();
  const message = presented === null ? "send Authorization: Bearer <ADMIN_TOKEN>" : "the bearer token is not the admin token";
  if (!wantsHtml(c)) return unauthorized(message);
  const page = (
    <Layout title="Sign in" nonce={c.get("secureHeadersNonce") ?? ""} signedIn={false}>
      <form class="login" id="login" data-testid="login">
        <h2>Sign in</h2>
        <p class="muted">Enter the deployment's ADMIN_TOKEN. It is kept for this browser session only and sent to nothing but this worker.</p>
        {presented !== null ? <p class="bad" data-testid="login-error">That is not the admin token.</p> : null}
        <label>
          Admin token
          <input type="password" name="token" autocomplete="current-password" required autofocus />
        </label>
        <button type="submit">Sign in</button>
      </form>
    </Layout>
  );
  return c.html(page, 401, { "WWW-Authenticate": 'Bearer realm="syncwire"', "cache-control": "no-store" });
};

const RangeQuery = z.object({ range: z.enum(Object.keys(RANGES) as [Range, ...Range[]]).catch("1h").default("1h") });

const render = (c: Context<DashboardEnv>, title: string, body: Child, status: 200 | 404 = 200) =>
  c.html(
    <Layout title={title} nonce={c.get("secureHeadersNonce") ?? ""} signedIn>
      {body}
    </Layout>,
    status,
    // The pages show customer data: never cache them anywhere.
    { "cache-control": "no-store" },
  );

export const dashboard = new Hono<DashboardEnv>()
  .use("*", headers, SignIn)
  .get("/", async (c) => {
    const { range } = RangeQuery.parse({ range: c.req.query("range") });
    return render(c, "Overview", <OverviewPage data={await readOverview(c.env, Date.now(), range)} />);
  })
  .get("/events/:id", async (c) => {
    const event = await readEvent(c.env, c.req.param("id"));
    return event ? render(c, `Event ${event.id}`, <EventPage event={event} />) : render(c, "Not found", <p class="bad">No event {c.req.param("id")}.</p>, 404);
  })
  .get("/sync-runs/:id", async (c) => {
    const found = await readRun(c.env, c.req.param("id"), c.req.query("cursor"));
    return found ? render(c, `Sync run ${found.run.id}`, <RunPage {...found} />) : render(c, "Not found", <p class="bad">No sync run {c.req.param("id")}.</p>, 404);
  });

/**
 * GET /dashboard (CONTRACT 5): server-rendered pages for a person, behind the admin token like
 * the API (sign-in.tsx: the header, or the session cookie its form sets). Every button calls the
 * admin API (/api/*) with the token as a bearer, as a script would.
 */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Child } from "hono/jsx";
import { NONCE, secureHeaders } from "hono/secure-headers";
import { z } from "zod";
import { errorResponse } from "../../errors";
import { log } from "../../observability/log";
import { RANGES, type Range } from "../../observability/series";
import { readEvent, readOverview, readRun } from "./data";
import { EventPage, RunPage } from "./details";
import { Layout } from "./layout";
import { OverviewPage } from "./overview";
import { MAX_SIGN_IN_BYTES, requireSignIn, signIn, wantsHtml, type DashboardEnv } from "./sign-in";

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

/** An unknown range is the default one, not an error: the page is for a person following links. */
const RangeQuery = z.object({ range: z.enum(Object.keys(RANGES) as [Range, ...Range[]]).catch("1h").default("1h") });

type Status = 200 | 400 | 404 | 503;

const render = (c: Context<DashboardEnv>, title: string, body: Child, status: Status = 200) =>
  c.html(
    <Layout title={title} nonce={c.get("secureHeadersNonce") ?? ""} signedIn={status !== 503}>
      {body}
    </Layout>,
    status,
    // The pages show customer data: never cache them anywhere.
    { "cache-control": "no-store" },
  );

export const dashboard = new Hono<DashboardEnv>()
  .use("*", headers)
  // Before the sign-in check: this is where the token arrives.
  .post("/session", bodyLimit({ maxSize: MAX_SIGN_IN_BYTES, onError: () => errorResponse("payload_too_large", `the body is over ${MAX_SIGN_IN_BYTES} bytes`) }), signIn)
  .use("*", requireSignIn)
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
    if (found === "bad_cursor") return render(c, "Bad link", <p class="bad">That is not a page of this run's mismatches.</p>, 400);
    return found ? render(c, `Sync run ${found.run.id}`, <RunPage {...found} />) : render(c, "Not found", <p class="bad">No sync run {c.req.param("id")}.</p>, 404);
  })
  .onError((error, c) => {
    // A person gets a page that says what to do; a script gets the error shape from app.onError.
    if (!wantsHtml(c)) throw error;
    log("unhandled_error", { route: c.req.path, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, "error");
    return render(
      c,
      "Unavailable",
      <p class="bad" data-testid="unavailable">
        The dashboard could not read Syncwire's state (its database or its configuration). <a href="/health">GET /health</a> says which; try again in a moment.
      </p>,
      503,
    );
  });

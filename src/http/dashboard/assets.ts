/**
 * The dashboard's style and its one script, inlined in every page (the script under the page's
 * CSP nonce): nothing is fetched but the page itself and the admin API.
 *
 * The script reads the admin token from the session cookie the sign-in sets (sign-in.tsx) and
 * sends it as `Authorization: Bearer` to the admin API for every button: the dashboard acts only
 * through the API a script would use. The API itself takes no cookie, so another site cannot
 * make a browser act on it.
 */
export const TOKEN_COOKIE = "syncwire_admin";

export const STYLE = `
:root { color-scheme: light; --fg:#111827; --muted:#6b7280; --line:#e5e7eb; --ok:#047857; --bad:#b91c1c; --warn:#b45309; --bg:#f9fafb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1rem; align-items: center; padding: .6rem 1.2rem; background: #111827; color: #fff; }
header a { color: #fff; } header nav { margin-left: auto; display: flex; gap: 1rem; align-items: center; }
main { padding: 1rem 1.2rem 3rem; max-width: 1200px; margin: 0 auto; }
h1 { font-size: 1.1rem; margin: 0; } h2 { font-size: 1rem; margin: 1.6rem 0 .5rem; }
section.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: .6rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem; }
.card .n { font-size: 1.5rem; font-weight: 600; } .card .l { color: var(--muted); font-size: .8rem; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; font-size: .8rem; color: var(--muted); background: #f3f4f6; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: 12px/1.4 ui-monospace, monospace; } pre { background: #fff; border: 1px solid var(--line); padding: .6rem; overflow: auto; max-height: 24rem; }
.ok { color: var(--ok); } .bad { color: var(--bad); } .warn { color: var(--warn); } .muted { color: var(--muted); }
.pill { display: inline-block; padding: 0 .45rem; border-radius: 9px; font-size: .75rem; border: 1px solid currentColor; }
button { font: inherit; padding: .2rem .6rem; border: 1px solid #9ca3af; border-radius: 4px; background: #fff; cursor: pointer; }
button:hover { background: #f3f4f6; } button:disabled { opacity: .5; cursor: wait; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: .6rem; }
figure.chart { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .5rem; }
figure.chart figcaption { font-weight: 600; display: flex; flex-wrap: wrap; gap: .6rem; align-items: center; }
.unit { font-weight: 400; font-size: .75rem; }
.legend { font-weight: 400; font-size: .75rem; display: flex; gap: .5rem; flex-wrap: wrap; }
.legend i { display: inline-block; width: .7rem; height: .7rem; margin-right: .2rem; border-radius: 2px; }
svg { width: 100%; height: auto; } svg text { font-size: 10px; fill: var(--muted); } svg .grid { stroke: var(--line); }
svg text.empty { font-size: 12px; }
#status { position: sticky; top: 0; padding: .4rem 1.2rem; min-height: 1.8rem; }
#status[data-kind=ok] { background: #d1fae5; } #status[data-kind=error] { background: #fee2e2; } #status[data-kind=info] { background: #e0e7ff; }
form.login { max-width: 26rem; margin: 4rem auto; background: #fff; border: 1px solid var(--line); padding: 1.2rem; border-radius: 6px; }
form.login input { width: 100%; padding: .4rem; margin: .5rem 0 .8rem; font: inherit; }
.range a { margin-right: .5rem; } .range a.on { font-weight: 700; text-decoration: none; color: var(--fg); }
`;

/** The page script: sign out, and the buttons that call the admin API. */
export const SCRIPT = `
(() => {
  const COOKIE = ${JSON.stringify(TOKEN_COOKIE)};
  const token = () => {
    const entry = document.cookie.split("; ").find((c) => c.startsWith(COOKIE + "="));
    return entry ? decodeURIComponent(entry.slice(COOKIE.length + 1)) : "";
  };
  const status = document.getElementById("status");
  const say = (text, kind) => { if (status) { status.textContent = text; status.dataset.kind = kind; } };
  // A message survives the reload that shows its effect, once.
  const flash = sessionStorage.getItem("syncwire.flash");
  if (flash) { sessionStorage.removeItem("syncwire.flash"); say(flash, "ok"); }

  const signout = document.getElementById("signout");
  if (signout) signout.addEventListener("click", () => {
    document.cookie = COOKIE + "=; Path=/dashboard; Max-Age=0; SameSite=Strict";
    location.href = "/dashboard";
  });

  document.addEventListener("click", async (e) => {
    const button = e.target instanceof Element ? e.target.closest("button[data-post]") : null;
    if (!button) return;
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    say("Working…", "info");
    try {
      const res = await fetch(button.dataset.post, {
        method: "POST",
        headers: { authorization: "Bearer " + token(), "content-type": "application/json" },
        body: button.dataset.body || "{}",
      });
      const body = await res.json().catch(() => null);
      if (!res.ok) {
        const error = body && body.error ? body.error.code + ": " + body.error.message : res.statusText;
        say(res.status + " " + error, "error");
        button.disabled = false;
        return;
      }
      let done = (button.dataset.done || "Done").replace("{queued}", body && "queued" in body ? body.queued : "");
      // A bounded replay-all says when letters remain for the next press.
      if (body && body.more === true) done += "; more remain: press it again";
      sessionStorage.setItem("syncwire.flash", done);
      location.reload();
    } catch (err) {
      say(String(err), "error");
      button.disabled = false;
    }
  });
})();
`;

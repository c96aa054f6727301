/**
 * The front page's lists: what waits for a person (dead letters, conflicts) with the buttons that
 * act on it through the admin API, the nightly check's runs, recent events and alerts.
 */
import type { FC } from "hono/jsx";
import type { Conflict } from "../../entities/conflicts";
import type { Metrics } from "../../observability/metrics";
import type { DeadLetter } from "../../pipeline/dead-letter-queries";
import type { EventSummary } from "../../pipeline/event-queries";
import type { Alert } from "../../reconcile/queries";
import type { SyncRun } from "../../reconcile/runs";
import { age, ApiButton, State, when } from "./layout";

const eventLink = (id: string) => <a href={`/dashboard/events/${encodeURIComponent(id)}`}>{id}</a>;

export const DeadLetterList: FC<{ letters: { items: DeadLetter[]; more: boolean }; openCount: number }> = ({ letters, openCount }) => (
  <>
    <h2>
      Dead letters <span class="muted">({openCount} open)</span>{" "}
      {letters.items.length ? (
        <ApiButton path="/api/dead-letters/replay" body={{ all: true }} done="Replayed {queued} events" confirm="Replay every open dead letter?" testId="replay-all">
          Replay all
        </ApiButton>
      ) : null}
    </h2>
    {letters.items.length === 0 ? (
      <p class="muted" data-testid="no-dead-letters">No open dead letters: every action was delivered or is still being retried.</p>
    ) : (
      <table data-testid="dead-letters">
        <thead>
          <tr><th>died</th><th>event</th><th>source</th><th>action</th><th>reason</th><th class="num">replays</th><th></th></tr>
        </thead>
        <tbody>
          {letters.items.map((l) => (
            <tr data-testid={`dead-letter-${l.id}`}>
              <td>{when(l.createdAt)}</td>
              <td>{eventLink(l.eventId)}</td>
              <td>{l.source}</td>
              <td>{l.action ?? <span class="muted">(unreadable message)</span>}</td>
              <td><code>{l.reason}</code></td>
              <td class="num">{l.replayCount}</td>
              <td>
                <ApiButton path="/api/dead-letters/replay" body={{ ids: [l.id] }} done="Replayed: the event is back on the queue" testId={`replay-${l.id}`}>Replay</ApiButton>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    )}
    {letters.more ? <p class="muted">Older ones: <code>GET /api/dead-letters?status=open</code>.</p> : null}
  </>
);

const Side: FC<{ side: Conflict["crm"] }> = ({ side }) =>
  side ? (
    <>
      <strong>{side.value ?? <span class="muted">(empty)</span>}</strong>
      <div class="muted">{when(side.at)}</div>
    </>
  ) : (
    <span class="muted">—</span>
  );

export const ConflictList: FC<{ conflicts: { items: Conflict[]; more: boolean }; openCount: number }> = ({ conflicts, openCount }) => (
  <>
    <h2>
      Open conflicts <span class="muted">({openCount})</span>
    </h2>
    {conflicts.items.length === 0 ? (
      <p class="muted" data-testid="no-conflicts">No open conflicts.</p>
    ) : (
      <table data-testid="conflicts">
        <thead>
          <tr><th>since</th><th>entity</th><th>field</th><th>CRM (HubSpot)</th><th>email (Mailchimp)</th><th>keep</th></tr>
        </thead>
        <tbody>
          {conflicts.items.map((c) => (
            <tr data-testid={`conflict-${c.id}`}>
              <td>{when(c.createdAt)}</td>
              <td>{c.entityKey}</td>
              <td>{c.field}</td>
              <td><Side side={c.crm} /></td>
              <td><Side side={c.email} /></td>
              <td>
                <ApiButton path={`/api/conflicts/${encodeURIComponent(c.id)}/resolve`} body={{ choose: "crm", by: "dashboard" }} done="Kept the CRM value; it is being written to both systems" testId={`keep-crm-${c.id}`}>Keep CRM</ApiButton>{" "}
                <ApiButton path={`/api/conflicts/${encodeURIComponent(c.id)}/resolve`} body={{ choose: "email", by: "dashboard" }} done="Kept the email value; it is being written to both systems" testId={`keep-email-${c.id}`}>Keep email</ApiButton>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    )}
    {conflicts.more ? <p class="muted">More: <code>GET /api/conflicts?status=open</code>.</p> : null}
  </>
);

export const RunList: FC<{ runs: SyncRun[] }> = ({ runs }) => (
  <>
    <h2>
      Nightly check{" "}
      <ApiButton path="/api/sync-runs" body={{ dryRun: false }} done="Sync run started" testId="start-run">Run now</ApiButton>{" "}
      <ApiButton path="/api/sync-runs" body={{ dryRun: true }} done="Dry run started" testId="start-dry-run">Dry run</ApiButton>
    </h2>
    {runs.length === 0 ? (
      <p class="muted">No run yet. The check runs at 02:00 UTC.</p>
    ) : (
      <table data-testid="sync-runs">
        <thead>
          <tr><th>started</th><th>trigger</th><th>status</th><th class="num">duration</th><th class="num">CRM / email records</th><th>mismatches</th><th class="num">repairs</th></tr>
        </thead>
        <tbody>
          {runs.map((r) => (
            <tr data-testid={`run-${r.id}`}>
              <td><a href={`/dashboard/sync-runs/${encodeURIComponent(r.id)}`}>{when(r.startedAt)}</a></td>
              <td>{r.trigger}{r.dryRun ? " (dry run)" : ""}</td>
              <td><State value={r.status} />{r.error ? <div class="bad">{r.error}</div> : null}</td>
              <td class="num">{r.durationMs === null ? "—" : `${(r.durationMs / 1000).toFixed(1)} s`}</td>
              <td class="num">{r.recordsCompared.crm} / {r.recordsCompared.email}</td>
              <td>
                <strong>{r.mismatches.total}</strong>{" "}
                <span class="muted">{Object.entries(r.mismatches.byKind).map(([kind, n]) => `${kind} ${n}`).join(", ")}</span>
              </td>
              <td class="num">{r.repairsQueued}</td>
            </tr>
          ))}
        </tbody>
      </table>
    )}
  </>
);

export const EventList: FC<{ events: EventSummary[]; backlog: Metrics["backlog"] }> = ({ events, backlog }) => (
  <>
    <h2>
      Recent events <span class="muted">(backlog: {backlog.events}{backlog.capped ? "+" : ""} in progress, oldest {age(backlog.oldestAgeSeconds)})</span>
    </h2>
    {events.length === 0 ? (
      <p class="muted">No events yet. Webhooks arrive at <code>/webhooks/hubspot</code>, <code>/webhooks/mailchimp</code>, <code>/webhooks/shopify</code>.</p>
    ) : (
      <table data-testid="events">
        <thead>
          <tr><th>received</th><th>event</th><th>source</th><th>type</th><th>entity</th><th>status</th></tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr>
              <td>{when(e.receivedAt)}</td>
              <td>{eventLink(e.id)}</td>
              <td>{e.source}</td>
              <td>{e.type}</td>
              <td>{e.entityKey ?? "—"}</td>
              <td><State value={e.status} />{e.lastError ? <div class="bad"><code>{e.lastError}</code></div> : null}</td>
            </tr>
          ))}
        </tbody>
      </table>
    )}
  </>
);

export const AlertList: FC<{ alerts: Alert[] }> = ({ alerts }) => (
  <>
    <h2>Recent alerts</h2>
    {alerts.length === 0 ? (
      <p class="muted">No alerts raised.</p>
    ) : (
      <table data-testid="alerts">
        <thead>
          <tr><th>raised</th><th>kind</th><th>text</th><th>delivered</th></tr>
        </thead>
        <tbody>
          {alerts.map((a) => (
            <tr>
              <td>{when(a.createdAt)}</td>
              <td>{a.kind}</td>
              <td>{a.text}</td>
              <td>{a.deliveredAt ? when(a.deliveredAt) : <span class="muted">{a.lastError ? `not yet: ${a.lastError}` : "not sent (no ALERT_WEBHOOK_URL, or queued)"}</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    )}
  </>
);

/**
 * One event's story (the webhook, its actions, every call made for it) and one sync run with its
 * mismatches: the pages a front-page row links to.
 */
import type { FC } from "hono/jsx";
import type { EventDetail } from "../../pipeline/event-queries";
import type { Mismatch } from "../../reconcile/queries";
import type { SyncRun } from "../../reconcile/runs";
import { ApiButton, State, when } from "./layout";

export const EventPage: FC<{ event: EventDetail }> = ({ event }) => {
  const replayable = event.actions.some((a) => a.state === "failed" || a.state === "dead");
  const path = `/api/events/${encodeURIComponent(event.id)}/replay`;
  return (
    <>
      <h2>
        Event <code>{event.id}</code> <State value={event.status} />
      </h2>
      <table data-testid="event-summary">
        <tbody>
          <tr><th>source / type</th><td>{event.source} · {event.type}</td></tr>
          <tr><th>entity</th><td>{event.entityKey ?? "—"}</td></tr>
          <tr><th>received</th><td>{when(event.receivedAt)} <span class="muted">(happened {when(event.occurredAt)}; {event.duplicates} duplicate deliveries ignored)</span></td></tr>
          <tr><th>dedupe key</th><td><code>{event.dedupeKey}</code></td></tr>
          {event.lastError ? <tr><th>last error</th><td class="bad"><code>{event.lastError}</code></td></tr> : null}
          {event.replayedAt ? <tr><th>replayed</th><td>{when(event.replayedAt)}</td></tr> : null}
        </tbody>
      </table>
      <h2>
        Actions{" "}
        {replayable ? <ApiButton path={path} done="Replaying the failed and dead actions" testId="replay-event">Replay failed actions</ApiButton> : null}{" "}
        <ApiButton path={`${path}?all=true`} done="Replaying every action" confirm="Run every action of this event again, finished ones too?" testId="replay-event-all">Replay all actions</ApiButton>
      </h2>
      {event.actions.length === 0 ? (
        <p class="muted">No actions recorded (yet): the event is queued, or it needed none.</p>
      ) : (
        <table data-testid="event-actions">
          <thead>
            <tr><th>action</th><th>flow</th><th>state</th><th class="num">attempts</th><th>last error</th><th>next attempt</th><th>note</th></tr>
          </thead>
          <tbody>
            {event.actions.map((a) => (
              <tr>
                <td>{a.action}</td>
                <td>{a.flow}</td>
                <td><State value={a.state} /></td>
                <td class="num">{a.attempts}</td>
                <td>{a.lastError ? <code class="bad">{a.lastStatus ? `${a.lastStatus} ` : ""}{a.lastError}</code> : "—"}</td>
                <td>{when(a.nextAttemptAt)}</td>
                <td>{a.note ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>
        Outbound calls <span class="muted">({event.audit.length}{event.auditTruncated ? ", the latest ones" : ""}; bodies redacted)</span>
      </h2>
      {event.audit.length === 0 ? (
        <p class="muted">No calls made for this event.</p>
      ) : (
        <table data-testid="event-audit">
          <thead>
            <tr><th>at</th><th>connector</th><th>call</th><th class="num">status</th><th class="num">ms</th><th>outcome</th><th>action</th></tr>
          </thead>
          <tbody>
            {event.audit.map((r) => (
              <tr>
                <td>{when(r.createdAt)}</td>
                <td>{r.connector}</td>
                <td>
                  <code>{r.method} {r.url}</code>
                  {r.served ? <div class="muted">bulk call for {r.served.length} events</div> : null}
                  {r.error ? <div class="bad"><code>{r.error}</code></div> : null}
                </td>
                <td class="num">{r.status ?? "—"}</td>
                <td class="num">{Math.round(r.durationMs)}</td>
                <td><State value={r.outcome} /></td>
                <td>{r.action ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Webhook payload</h2>
      <pre data-testid="event-payload">{event.payload ? JSON.stringify(event.payload, null, 2) : "(the stored payload is gone)"}</pre>
    </>
  );
};

export const RunPage: FC<{ run: SyncRun; mismatches: Mismatch[]; nextCursor: string | null }> = ({ run, mismatches, nextCursor }) => (
  <>
    <h2>
      Sync run <code>{run.id}</code> <State value={run.status} />
    </h2>
    <table data-testid="run-summary">
      <tbody>
        <tr><th>trigger</th><td>{run.trigger}{run.dryRun ? " (dry run: nothing repaired)" : ""}</td></tr>
        <tr><th>started / finished</th><td>{when(run.startedAt)} / {when(run.finishedAt)}{run.durationMs === null ? "" : ` (${(run.durationMs / 1000).toFixed(1)} s)`}</td></tr>
        <tr><th>records compared</th><td>CRM {run.recordsCompared.crm}, email {run.recordsCompared.email}</td></tr>
        <tr><th>mismatches</th><td>{run.mismatches.total} {Object.entries(run.mismatches.byKind).map(([k, n]) => `${k} ${n}`).join(", ")}</td></tr>
        <tr><th>repairs queued</th><td>{run.repairsQueued}</td></tr>
        {run.error ? <tr><th>error</th><td class="bad">{run.error}</td></tr> : null}
      </tbody>
    </table>
    <h2>Mismatches</h2>
    {mismatches.length === 0 ? (
      <p class="muted">None{run.status === "running" ? " so far" : ""}.</p>
    ) : (
      <table data-testid="mismatches">
        <thead>
          <tr><th>entity</th><th>kind</th><th>field</th><th>CRM</th><th>email</th><th>repair</th></tr>
        </thead>
        <tbody>
          {mismatches.map((m) => (
            <tr>
              <td>{m.entityKey}</td>
              <td>{m.kind}</td>
              <td>{m.field ?? "—"}</td>
              <td>{m.crmValue ?? <span class="muted">—</span>}</td>
              <td>{m.emailValue ?? <span class="muted">—</span>}</td>
              <td>{m.repairEventId ? <a href={`/dashboard/events/${encodeURIComponent(m.repairEventId)}`}>{m.repairEventId}</a> : <span class="muted">none</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    )}
    {nextCursor ? <p><a href={`/dashboard/sync-runs/${encodeURIComponent(run.id)}?cursor=${encodeURIComponent(nextCursor)}`}>More mismatches</a></p> : null}
  </>
);

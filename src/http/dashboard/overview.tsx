/**
 * The dashboard's front page: is anything wrong, how much flows, how fast, and what waits for a
 * person. The lists with their buttons are in lists.tsx.
 */
import type { FC } from "hono/jsx";
import { INTEGRATIONS } from "../../config";
import type { Series } from "../../observability/series";
import { LineChart } from "./charts";
import type { Overview } from "./data";
import { AlertList, ConflictList, DeadLetterList, EventList, RunList } from "./lists";
import { age, ms, percent, State, when } from "./layout";

export const OverviewPage: FC<{ data: Overview }> = ({ data }) => (
  <>
    <Summary data={data} />
    <Integrations data={data} />
    <Charts series={data.series} />
    <DeadLetterList letters={data.deadLetters} openCount={data.metrics.deadLetters.open} />
    <ConflictList conflicts={data.conflicts} openCount={data.metrics.conflicts.open} />
    <RunList runs={data.runs} />
    <EventList events={data.events} backlog={data.metrics.backlog} />
    <AlertList alerts={data.alerts} />
  </>
);

const Card: FC<{ label: string; value: string | number; tone?: string; testId: string; note?: string }> = ({ label, value, tone, testId, note }) => (
  <div class="card" data-testid={testId}>
    <div class={`n ${tone ?? ""}`}>{value}</div>
    <div class="l">
      {label}
      {note ? <> · {note}</> : null}
    </div>
  </div>
);

const Summary: FC<{ data: Overview }> = ({ data }) => {
  const { health, metrics } = data;
  const hour = Object.values(metrics.connectors).reduce((sum, c) => ({ calls: sum.calls + c["1h"].calls, errors: sum.errors + c["1h"].errors }), { calls: 0, errors: 0 });
  const capped = (n: number, isCapped: boolean) => (isCapped ? `${n}+` : n);
  const last = metrics.lastSyncRun;
  return (
    <>
      <h2>
        Status <State value={health.status} />
      </h2>
      {health.status === "misconfigured" ? (
        <p class="bad">Configuration problems (values are never shown): {health.issues.map((i) => `${i.key}: ${i.message}`).join("; ")}</p>
      ) : health.reasons?.length ? (
        <p class="bad">{health.reasons.join("; ")}</p>
      ) : (
        <p class="muted">Nothing needs a person right now{health.sandbox ? " (sandbox mode: vendors are the built-in fakes)" : ""}.</p>
      )}
      <section class="cards">
        <Card testId="card-backlog" label="events in progress" value={capped(metrics.backlog.events, metrics.backlog.capped)} note={`oldest ${age(metrics.backlog.oldestAgeSeconds)}`} tone={metrics.backlog.events ? "warn" : "ok"} />
        <Card testId="card-dead-letters" label="open dead letters" value={capped(metrics.deadLetters.open, metrics.deadLetters.capped)} tone={metrics.deadLetters.open ? "bad" : "ok"} />
        <Card testId="card-conflicts" label="open conflicts" value={capped(metrics.conflicts.open, metrics.conflicts.capped)} tone={metrics.conflicts.open ? "warn" : "ok"} />
        <Card testId="card-calls" label="vendor calls, last hour" value={hour.calls} />
        <Card testId="card-errors" label="failed calls, last hour" value={hour.errors} note={hour.calls ? percent(hour.errors / hour.calls) : undefined} tone={hour.errors ? "bad" : "ok"} />
        <Card testId="card-last-run" label="last sync run" value={last ? last.status : "none yet"} note={last ? when(last.startedAt) : undefined} tone={last?.status === "failed" ? "bad" : last ? "ok" : "muted"} />
      </section>
    </>
  );
};

/** Each integration's configuration and its calls over the last hour and day. */
const Integrations: FC<{ data: Overview }> = ({ data }) => {
  const { health, metrics } = data;
  const budgets = health.status === "misconfigured" ? null : health.budgets;
  return (
    <>
      <h2>Integrations</h2>
      <table data-testid="integrations">
        <thead>
          <tr>
            <th>integration</th>
            <th>state</th>
            <th class="num">calls 1 h</th>
            <th class="num">errors 1 h</th>
            <th class="num">p50 / p95 / p99 1 h</th>
            <th class="num">calls 24 h</th>
            <th class="num">errors 24 h</th>
            <th>budget</th>
          </tr>
        </thead>
        <tbody>
          {INTEGRATIONS.map((name) => {
            const m = metrics.connectors[name];
            const state = health.status === "misconfigured" ? "unknown" : health.integrations[name];
            const budget = budgets?.[name as keyof typeof budgets] as { pausedUntil?: string | null; low?: boolean } | undefined;
            return (
              <tr data-testid={`integration-${name}`}>
                <td>{name}</td>
                <td>{state === "enabled" ? <State value="enabled" /> : <span class="muted">{state}</span>}</td>
                <td class="num" data-testid={`calls-1h-${name}`}>{m?.["1h"].calls ?? 0}</td>
                <td class="num" data-testid={`errors-1h-${name}`}>
                  {m?.["1h"].errors ?? 0}
                  {m?.["1h"].calls ? <span class="muted"> ({percent(m["1h"].errorRate)})</span> : null}
                </td>
                <td class="num">{m ? `${ms(m["1h"].p50Ms)} / ${ms(m["1h"].p95Ms)} / ${ms(m["1h"].p99Ms)}` : "—"}</td>
                <td class="num">{m?.["24h"].calls ?? 0}</td>
                <td class="num">{m?.["24h"].errors ?? 0}</td>
                <td>{budget ? budget.pausedUntil ? <span class="warn">paused until {when(budget.pausedUntil)}</span> : budget.low ? <span class="warn">daily budget low</span> : "ok" : <span class="muted">—</span>}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <p class="muted">Shopify only sends webhooks, so it makes no calls. Latency is the upper bound of its histogram bucket.</p>
    </>
  );
};

const Charts: FC<{ series: Series }> = ({ series }) => {
  const from = series.points[0]?.start ?? null;
  const to = new Date(Date.parse(series.points[series.points.length - 1]?.start ?? "") + series.bucketMinutes * 60_000).toISOString();
  const range = { from: when(from).slice(11), to: when(to).slice(11) };
  const per = series.bucketMinutes === 1 ? "per minute" : `per ${series.bucketMinutes} min`;
  return (
    <>
      <h2>
        Over time{" "}
        <span class="range">
          {(["1h", "24h"] as const).map((r) => (
            <a href={`/dashboard?range=${r}`} class={r === series.range ? "on" : ""}>
              last {r}
            </a>
          ))}
        </span>
      </h2>
      <div class="charts">
        <LineChart testId="chart-throughput" title="Throughput" unit={`calls ${per}`} {...range} lines={series.connectors.map((name) => ({ name, values: series.points.map((p) => p.byConnector[name] ?? 0) }))} />
        <LineChart testId="chart-errors" title="Errors" unit={`failed calls ${per}`} {...range} lines={[{ name: "failed", values: series.points.map((p) => p.errors) }]} />
        <LineChart
          testId="chart-latency"
          title="Latency"
          unit="ms (bucket bound)"
          {...range}
          lines={[
            { name: "p50", values: series.points.map((p) => p.p50Ms) },
            { name: "p95", values: series.points.map((p) => p.p95Ms) },
          ]}
        />
      </div>
    </>
  );
};

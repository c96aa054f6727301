/**
 * The ingest phase (bench/ingest.ts) in the bench's output: its goals (the headline of CONTRACT
 * section 9: the worker against the minimal enqueue worker) and its section of the table, flat
 * out and at a fixed rate.
 */
import type { CpuShare } from "./cpu";
import type { IngestFigures, IngestResult } from "./ingest";
import type { Goal } from "./report";
import { cores, fixed, num, table } from "./table";

export function ingestGoals(ingest: IngestResult): Goal[] {
  return [
    // The headline (CONTRACT section 9): against the floor of any ingest that queues before it answers.
    {
      name: "ingest req/s vs minimal enqueue",
      target: ">= 0.7x enqueue",
      value: fixed(ingest.ratioRequestsPerSecondVsEnqueue),
      pass: ingest.ratioRequestsPerSecondVsEnqueue >= 0.7,
    },
    { name: "ingest p99 vs minimal enqueue", target: "< 2x enqueue p99", value: fixed(ingest.ratioP99VsEnqueue), pass: ingest.ratioP99VsEnqueue < 2 },
    // Against the bare worker the ratio also carries the local queue broker's cost, which is not ours to cut.
    { name: "ingest req/s vs bare", target: "information", value: fixed(ingest.ratioRequestsPerSecond), pass: null },
    { name: "ingest p99 vs bare", target: "information", value: fixed(ingest.ratioP99), pass: null },
  ];
}

function cpuCells(cpu: CpuShare): string[] {
  return [cores(cpu.workerd), cores(cpu.benchNode), cores(cpu.otherProcesses)];
}

function failures(f: IngestFigures): string {
  const codes = Object.entries(f.statusCodes).filter(([code]) => !code.startsWith("2")).map(([code, n]) => `${n}x${code}`);
  if (f.errors > 0) codes.push(`${f.errors} errors`);
  if (f.timeouts > 0) codes.push(`${f.timeouts} timeouts`);
  return codes.join(" ") || "0";
}

function ingestRow(name: string, f: IngestFigures): string[] {
  return [name, num(f.requestsPerSecond), num(f.p50Ms, 2), num(f.p99Ms, 2), failures(f), ...cpuCells(f.cpu)];
}

export function renderIngest(ingest: IngestResult): string {
  const out: string[] = [];
  const s = ingest.settings;
  out.push(`INGEST  signed single-event HubSpot webhooks (${ingest.subscriptionType} of ${ingest.propertyName}, which the sync does not hold: no flow consumes it, the consumer records it as ignored)`);
  out.push(`        flat out: ${s.connections} connections, ${s.rounds} x ${s.durationSeconds / s.rounds} s after a ${s.warmupSeconds} s warm-up, each queue drained between rounds`);
  out.push(`        minimal enqueue worker: reads the body, one sendBatch, answers 202; its consumer acks (the floor of an ingest that queues first)`);
  const cpuHead = ["workerd cores", "bench node cores", "other procs cores"];
  out.push(
    table(["target", "req/s", "p50 ms", "p99 ms", "failed", ...cpuHead], [
      ingestRow("bare 202 worker", ingest.bare),
      ingestRow("minimal enqueue worker", ingest.enqueue),
      ingestRow("syncwire worker", ingest.worker),
      ["worker / enqueue", num(ingest.ratioRequestsPerSecondVsEnqueue, 2), num(ingest.worker.p50Ms / ingest.enqueue.p50Ms, 2), num(ingest.ratioP99VsEnqueue, 2), "", "", "", ""],
      ["worker / bare", num(ingest.ratioRequestsPerSecond, 2), num(ingest.worker.p50Ms / ingest.bare.p50Ms, 2), num(ingest.ratioP99, 2), "", "", "", ""],
    ]),
  );
  const recorded = Object.entries(ingest.consumerRecorded).map(([k, v]) => `${v} ${k}`).join(", ") || "none";
  out.push(`        the consumer recorded ${ingest.worker.consumedDuringRounds ?? 0} of the ${ingest.worker.requests} events while the rounds ran (flooded, workerd starves its timers),`);
  out.push(`        the rest in the pauses; in all: ${recorded}; vendor calls: ${ingest.vendorCalls}`);
  out.push(`        (the enqueue worker's consumer acked ${ingest.enqueue.consumedDuringRounds ?? 0} of its ${ingest.enqueue.requests} messages while the rounds ran)`);
  const fr = ingest.fixedRate;
  out.push(`        fixed rate ${fr.requestsPerSecond} req/s (${s.fixedRateConnections} connections, ~${Math.round(s.fixedRateShare * 100)}% of the worker's flat-out rate; here the consumer keeps up, so its work shares the thread):`);
  out.push(
    table(["target", "req/s", "p50 ms", "p99 ms", "failed", ...cpuHead], [
      ingestRow("bare 202 worker", fr.bare),
      ingestRow("minimal enqueue worker", fr.enqueue),
      ingestRow("syncwire worker", fr.worker),
      ["worker / enqueue", "", num(fr.ratioP50VsEnqueue, 2), num(fr.ratioP99VsEnqueue, 2), "", "", "", ""],
      ["worker / bare", "", num(fr.ratioP50, 2), num(fr.ratioP99, 2), "", "", "", ""],
    ]),
  );
  return out.join("\n");
}

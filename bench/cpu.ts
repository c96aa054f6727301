/**
 * CPU accounting from /proc over a measured window: how much the bench's own Node process,
 * its workerd processes, and everything else on the machine used. On a 2-core machine shared
 * with other work (a test run, a build) the figures mean little without the last number, so
 * the bench reports it next to each result. Linux only; elsewhere every figure is null.
 */
import { readdirSync, readFileSync } from "node:fs";

export interface CpuShare {
  /** Core-seconds per wall second (2.0 = both cores busy), per group. */
  benchNode: number | null;
  workerd: number | null;
  otherProcesses: number | null;
  /** The largest peak resident memory (VmHWM) of the bench's workerd processes at the window's end, MB. */
  workerdPeakMb: number | null;
}

type Group = "benchNode" | "workerd" | "otherProcesses";

interface Sample {
  at: number;
  ticks: Map<number, { ticks: number; group: Group }>;
}

// USER_HZ is 100 on every Linux the bench is expected to run on.
const TICKS_PER_SECOND = 100;

function readStat(pid: string): { ppid: number; comm: string; ticks: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm is in parentheses and may contain spaces; the fields after it are space-separated.
    const close = text.lastIndexOf(")");
    const comm = text.slice(text.indexOf("(") + 1, close);
    const fields = text.slice(close + 2).split(" ");
    // After comm: state(0) ppid(1) … utime(11) stime(12)
    return { ppid: Number(fields[1]), comm, ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null; // the process ended between readdir and read
  }
}

function sample(): Sample | null {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  const stats = new Map<number, { ppid: number; comm: string; ticks: number }>();
  for (const pid of pids) {
    const s = readStat(pid);
    if (s) stats.set(Number(pid), s);
  }
  const isOurs = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
      if (p === process.pid) return true;
      p = stats.get(p)?.ppid ?? 0;
    }
    return false;
  };
  const ticks = new Map<number, { ticks: number; group: Group }>();
  for (const [pid, s] of stats) {
    const group: Group = pid === process.pid ? "benchNode" : isOurs(pid) && s.comm.startsWith("workerd") ? "workerd" : isOurs(pid) ? "benchNode" : "otherProcesses";
    ticks.set(pid, { ticks: s.ticks, group });
  }
  return { at: performance.now(), ticks };
}

/** Peak resident memory of a process so far (VmHWM), in MB; null when unreadable. */
function peakMb(pid: number): number | null {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? null : Math.round(Number(kb) / 1024);
  } catch {
    return null;
  }
}

/** Starts a window; the returned function ends it and gives the shares. */
export function startCpuWindow(): () => CpuShare {
  const start = sample();
  return () => {
    const end = sample();
    if (!start || !end) return { benchNode: null, workerd: null, otherProcesses: null, workerdPeakMb: null };
    const seconds = (end.at - start.at) / 1000;
    const peaks = [...end.ticks].filter(([, e]) => e.group === "workerd").map(([pid]) => peakMb(pid) ?? 0);
    const share: Record<Group, number> = { benchNode: 0, workerd: 0, otherProcesses: 0 };
    for (const [pid, e] of end.ticks) {
      // A process that started inside the window counts from zero.
      share[e.group] += e.ticks - (start.ticks.get(pid)?.ticks ?? 0);
    }
    const toCores = (t: number) => Math.round((t / TICKS_PER_SECOND / seconds) * 100) / 100;
    return {
      benchNode: toCores(share.benchNode),
      workerd: toCores(share.workerd),
      otherProcesses: toCores(share.otherProcesses),
      workerdPeakMb: peaks.length > 0 ? Math.max(...peaks) : null,
    };
  };
}

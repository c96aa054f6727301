/**
 * The decisions of the contact sync, on the pure state (the Durable Object stores exactly this
 * around the same functions): order by source time, stale changes, echoes, conflicts under both
 * policies, and the unsubscribe that is never reversed.
 */
import { describe, expect, it } from "vitest";
import { applyInputs, applyOutcomes, planWrites, type EntityInput, type Lifecycle, type PlanOptions, type Write } from "../../src/entities/plan";
import { shuffled } from "../support/sync";
import { emptyState, type ConflictPolicy, type EntityState, type Field, type Observation, type System } from "../../src/entities/sync-state";

class Sim {
  state: EntityState = emptyState();
  life: Lifecycle = { deletedAt: null, archived: false };
  // Our clock and the sources' share an epoch, as they do in production (echoes are matched by time).
  now = 0;
  conflicts = 0;
  constructor(private readonly policy: ConflictPolicy = "latest-wins") {}

  options(extra: Partial<PlanOptions> = {}): PlanOptions {
    return { policy: this.policy, crmTakesSubscription: true, now: this.now, ...extra };
  }

  /** One group: inputs in, writes planned (not yet confirmed). */
  plan(inputs: EntityInput[], extra: Partial<PlanOptions> = {}) {
    this.now += 1000;
    const verdicts = applyInputs(this.state, this.life, inputs, this.options(extra), () => `cf_${++this.conflicts}`);
    return { verdicts: verdicts.flatMap((v) => v.verdicts), writes: planWrites(this.state, this.life, this.options(extra)) };
  }

  settle(writes: Write[], outcome: "ok" | "failed" | "rejected" = "ok") {
    applyOutcomes(this.state, this.life, writes.map((write) => ({ write, outcome })), this.now);
  }

  /** Plan and confirm every write. */
  step(inputs: EntityInput[]) {
    const planned = this.plan(inputs);
    this.settle(planned.writes);
    return planned;
  }

  held(system: System): Record<Field, string | undefined> {
    const f = this.state.fields;
    return { email: f.email[system]?.value, firstname: f.firstname[system]?.value, lastname: f.lastname[system]?.value, subscription: f.subscription[system]?.value };
  }
}

let ids = 0;
const obs = (system: System, field: Field, value: string, at: number): EntityInput => ({ eventId: `e${++ids}`, kind: "observe", observations: [{ system, field, value, at }] });

describe("order by source time", () => {
  // 20 changes to one contact from both systems, each field changed several times.
  const changes: Observation[] = Array.from({ length: 20 }, (_, i) => {
    const field = (["email", "firstname", "lastname", "firstname", "email"] as const)[i % 5]!;
    const system: System = i % 3 === 0 ? "email" : "crm";
    return { system, field, value: field === "email" ? `v${i}@example.com` : `name-${i}`, at: 10_000 + i * 1000 };
  });
  const newest = (field: Field) => changes.filter((c) => c.field === field).at(-1)!.value;

  for (const seed of [1, 2, 3, 42, 2026]) {
    it(`ends in the newest state on both sides in shuffled order (seed ${seed})`, () => {
      const sim = new Sim();
      sim.step([{ eventId: "seed", kind: "observe", observations: [{ system: "crm", field: "email", value: "v-start@example.com", at: 1 }] }]);
      for (const c of shuffled(changes, seed)) sim.step([{ eventId: `c${c.at}`, kind: "observe", observations: [c] }]);
      for (const field of ["email", "firstname", "lastname"] as const) {
        expect(sim.state.fields[field].desired?.value).toBe(newest(field));
        expect(sim.held("crm")[field]).toBe(newest(field));
        expect(sim.held("email")[field]).toBe(newest(field));
      }
      // Nothing left to write once everything has arrived.
      expect(sim.plan([]).writes).toEqual([]);
    });
  }

  it("records a change older than the applied one as stale, and writes nothing for it", () => {
    const sim = new Sim();
    sim.step([obs("crm", "email", "a@example.com", 1000), obs("crm", "firstname", "New", 5000)]);
    const late = sim.plan([obs("crm", "firstname", "Old", 4000)]);
    expect(late.verdicts).toEqual(["stale"]);
    expect(late.writes).toEqual([]);
    expect(sim.held("email").firstname).toBe("New");
  });

  it("breaks a cross-system tie for the CRM (Mailchimp has whole seconds only)", () => {
    const sim = new Sim();
    sim.step([obs("crm", "email", "a@example.com", 1000)]);
    sim.step([obs("crm", "lastname", "Crm", 60_000)]);
    expect(sim.plan([obs("email", "lastname", "Email", 60_000)]).verdicts).toEqual(["stale"]);
    expect(sim.state.fields.lastname.desired?.value).toBe("Crm");
  });
});

describe("echoes", () => {
  it("recognizes the webhook reporting our own write, even before the write's settle lands", () => {
    const sim = new Sim();
    sim.step([obs("crm", "email", "a@example.com", 1000)]);
    const planned = sim.plan([obs("crm", "firstname", "Ann", 50_000)]);
    expect(planned.writes).toEqual([expect.objectContaining({ system: "email", op: "patch", set: { firstname: "Ann" } })]);
    // The vendor fires before our settle: still an echo, and nothing goes back to the CRM.
    const back = sim.plan([obs("email", "firstname", "Ann", 50_500)]);
    expect(back.verdicts).toEqual(["echo"]);
    expect(back.writes).toEqual([]);
    sim.settle(planned.writes);
    expect(sim.plan([]).writes).toEqual([]);
  });

  it("takes a genuine later change back to the same value as a change, not as an echo", () => {
    const sim = new Sim();
    sim.step([obs("crm", "email", "a@example.com", 1000)]);
    sim.step([obs("crm", "firstname", "Ann", 50_000)]);
    expect(sim.step([obs("email", "firstname", "Ann", 50_500)]).verdicts).toEqual(["echo"]);
    expect(sim.step([obs("email", "firstname", "Bob", 60_000)]).writes).toEqual([expect.objectContaining({ system: "crm", set: { firstname: "Bob" } })]);
    const again = sim.step([obs("email", "firstname", "Ann", 70_000)]);
    expect(again.verdicts).toEqual(["applied"]);
    expect(again.writes).toEqual([expect.objectContaining({ system: "crm", set: { firstname: "Ann" } })]);
  });
});

describe("conflicts: both systems changed a field since the last sync", () => {
  function outage(policy: ConflictPolicy) {
    const sim = new Sim(policy);
    sim.step([obs("crm", "email", "a@example.com", 1000), obs("crm", "lastname", "Start", 1000)]);
    // The CRM's change cannot reach the email platform (down)...
    const crmChange = sim.plan([obs("crm", "lastname", "FromCrm", 10_000)]);
    sim.settle(crmChange.writes, "failed");
    // ...and a person changes the same field there meanwhile, later.
    const emailChange = sim.plan([obs("email", "lastname", "FromEmail", 20_000)]);
    return { sim, emailChange };
  }

  it("latest-wins writes the newer value to both sides", () => {
    const { sim, emailChange } = outage("latest-wins");
    expect(emailChange.verdicts).toEqual(["applied"]);
    expect(emailChange.writes).toEqual([expect.objectContaining({ system: "crm", set: { lastname: "FromEmail" } })]);
    sim.settle(emailChange.writes);
    expect(sim.held("crm").lastname).toBe("FromEmail");
    expect(sim.held("email").lastname).toBe("FromEmail");
    expect(sim.plan([]).writes).toEqual([]);
  });

  it("latest-wins keeps the newer CRM change over an older email one that arrives later", () => {
    const sim = new Sim("latest-wins");
    sim.step([obs("crm", "email", "a@example.com", 1000), obs("crm", "lastname", "Start", 1000)]);
    sim.settle(sim.plan([obs("crm", "lastname", "FromCrm", 30_000)]).writes, "failed");
    const older = sim.plan([obs("email", "lastname", "FromEmail", 20_000)]);
    expect(older.verdicts).toEqual(["superseded"]);
    expect(older.writes).toEqual([expect.objectContaining({ system: "email", set: { lastname: "FromCrm" } })]);
  });

  it("escalate writes neither side, opens one conflict, and applies the person's choice", () => {
    const { sim, emailChange } = outage("escalate");
    expect(emailChange.verdicts).toEqual(["conflict"]);
    expect(emailChange.writes).toEqual([]);
    const conflict = sim.state.fields.lastname.conflict!;
    expect(conflict).toMatchObject({ field: "lastname", crm: { value: "FromCrm", at: 10_000 }, email: { value: "FromEmail", at: 20_000 } });
    // Retries while it is open: still nothing written, still one conflict.
    expect(sim.plan([]).writes).toEqual([]);
    expect(sim.conflicts).toBe(1);
    const resolved = sim.step([{ eventId: "r", kind: "resolve", field: "lastname", conflictId: conflict.id, choose: "crm" }]);
    expect(resolved.writes).toEqual([expect.objectContaining({ system: "email", set: { lastname: "FromCrm" } })]);
    expect(sim.held("email").lastname).toBe("FromCrm");
    expect(sim.state.fields.lastname.conflict).toBeNull();
  });
});

describe("subscriptions", () => {
  it("never subscribes an unsubscribed member again, whatever the CRM says later", () => {
    const sim = new Sim();
    sim.step([obs("crm", "email", "a@example.com", 1000), obs("crm", "subscription", "subscribed", 1000)]);
    const unsub = sim.step([obs("email", "subscription", "unsubscribed", 5000)]);
    expect(unsub.writes).toEqual([expect.objectContaining({ system: "crm", set: { subscription: "unsubscribed" } })]);
    const resub = sim.step([obs("crm", "subscription", "subscribed", 9000)]);
    expect(resub.writes).toEqual([]);
  });
});

describe("a late webhook and our own later write", () => {
  it("writes a winning change back to the system our later write overwrote it in", () => {
    const sim = new Sim();
    sim.step([obs("crm", "email", "a@example.com", 1000), obs("crm", "lastname", "Start", 1000)]);
    // The CRM's change reaches the email platform (our write, confirmed at sim.now)...
    sim.now = 20_000;
    sim.step([obs("crm", "lastname", "FromCrm", 10_000)]);
    const writtenAt = sim.now;
    // ...where a person had changed the same field a moment later than the CRM did, before our
    // write landed: its webhook arrives now. It wins, and the email platform needs it back.
    const late = sim.plan([obs("email", "lastname", "FromEmail", writtenAt - 500)]);
    expect(late.verdicts).toEqual(["applied"]);
    expect(late.writes).toEqual([
      expect.objectContaining({ system: "crm", set: { lastname: "FromEmail" } }),
      expect.objectContaining({ system: "email", set: { lastname: "FromEmail" } }),
    ]);
  });
});

describe("review: what an expected echo may and may not swallow", () => {
  it("a reassert of values the systems hold leaves no expectation behind to swallow a later change", () => {
    const sim = new Sim();
    sim.step([obs("crm", "email", "a@example.com", 1000), obs("crm", "firstname", "Ann", 1000)]);
    const before = [...sim.state.expectations];
    const replay = sim.plan([], { reassert: true });
    expect(replay.writes).not.toEqual([]);
    sim.settle(replay.writes);
    expect(sim.state.expectations).toEqual(before);
    // A person changes the CRM Ann -> Bob -> Ann later the same day: the last one is a change.
    sim.now = 3_600_000;
    sim.step([obs("crm", "firstname", "Bob", 3_600_000)]);
    sim.step([obs("email", "firstname", "Bob", 3_600_500)]);
    const back = sim.plan([obs("crm", "firstname", "Ann", 7_200_000)]);
    expect(back.verdicts).toEqual(["applied"]);
    expect(back.writes).toEqual([expect.objectContaining({ system: "email", set: { firstname: "Ann" } })]);
  });

  it("matches an echo only near the write it expects", () => {
    const sim = new Sim();
    sim.step([obs("crm", "email", "a@example.com", 1000)]);
    sim.now = 100_000;
    const planned = sim.plan([obs("crm", "lastname", "Lee", 100_000)]);
    sim.settle(planned.writes);
    // Ten minutes after the write, a person sets the same value in the email platform: not an echo.
    expect(sim.plan([obs("email", "lastname", "Lee", 100_000 + 10 * 60_000)]).verdicts).toEqual(["unchanged"]);
    expect(sim.state.expectations.filter((e) => e.field === "lastname")).toHaveLength(1);
  });
});

describe("review: escalate when our write overwrote a person's change", () => {
  it("opens a conflict with the person's value, and the choice is written to both", () => {
    const sim = new Sim("escalate");
    sim.step([obs("crm", "email", "a@example.com", 1000), obs("crm", "firstname", "Ann", 1000)]);
    sim.now = 50_000;
    // The CRM's change reaches the email platform at sim.now...
    sim.step([obs("crm", "firstname", "Carl", 40_000)]);
    // ...where a person had set Dora just before; its webhook comes after our write.
    const late = sim.plan([obs("email", "firstname", "Dora", 49_500)]);
    expect(late.verdicts).toEqual(["conflict"]);
    expect(late.writes).toEqual([]);
    const conflict = sim.state.fields.firstname.conflict!;
    expect(conflict).toMatchObject({ crm: { value: "Carl" }, email: { value: "Dora", at: 49_500 } });
    const chosen = sim.step([{ eventId: "r", kind: "resolve", field: "firstname", conflictId: conflict.id, choose: "email" }]);
    expect(chosen.writes).toEqual([
      expect.objectContaining({ system: "crm", set: { firstname: "Dora" } }),
      expect.objectContaining({ system: "email", set: { firstname: "Dora" } }),
    ]);
  });

  it("a resolution counts as newer than both sides, so a change made right after it still wins", () => {
    const sim = new Sim("escalate");
    sim.step([obs("crm", "email", "a@example.com", 1000), obs("crm", "lastname", "Start", 1000)]);
    sim.settle(sim.plan([obs("crm", "lastname", "C", 10_000)]).writes, "failed");
    sim.plan([obs("email", "lastname", "E", 20_000)]);
    const id = sim.state.fields.lastname.conflict!.id;
    sim.now = 10_000_000; // our clock far ahead of the vendors'
    sim.step([{ eventId: "r", kind: "resolve", field: "lastname", conflictId: id, choose: "crm" }]);
    expect(sim.step([obs("crm", "lastname", "Later", 20_001)]).verdicts).toEqual(["applied"]);
  });
});

describe("review: addresses", () => {
  it("an event under an address the contact left long ago is not applied to it", () => {
    const sim = new Sim();
    sim.step([obs("crm", "email", "old@example.com", 1000)]);
    sim.step([obs("crm", "email", "new@example.com", 2000)]);
    const soon = sim.step([{ eventId: "x", kind: "observe", address: "old@example.com", observations: [{ system: "email", field: "firstname", value: "Late", at: 2500 }] }]);
    expect(soon.verdicts).toEqual(["applied"]);
    sim.now += 25 * 60 * 60_000;
    const stranger = sim.plan([{ eventId: "y", kind: "observe", address: "old@example.com", observations: [{ system: "email", field: "firstname", value: "Zoe", at: sim.now }] }]);
    expect(stranger.verdicts).toEqual(["foreign"]);
    expect(stranger.writes).toEqual([]);
  });

  it("a deletion closes the contact's conflicts", () => {
    const sim = new Sim("escalate");
    sim.step([obs("crm", "email", "a@example.com", 1000), obs("crm", "lastname", "Start", 1000)]);
    sim.settle(sim.plan([obs("crm", "lastname", "C", 10_000)]).writes, "failed");
    sim.plan([obs("email", "lastname", "E", 20_000)]);
    expect(sim.state.fields.lastname.conflict).not.toBeNull();
    sim.step([{ eventId: "d", kind: "delete", at: 30_000 }]);
    expect(sim.state.fields.lastname.conflict).toBeNull();
  });
});

describe("review: the echo of an earlier write, after a later one", () => {
  it("does not make the object believe the system went back to the earlier value", () => {
    const sim = new Sim();
    sim.step([obs("crm", "email", "a@example.com", 1000), obs("crm", "firstname", "Ada", 1000)]); // we write Ada (no echo yet)
    sim.step([obs("crm", "firstname", "Both", 5000)]); // then Both, confirmed
    // The echo of the Ada write arrives only now.
    const late = sim.plan([obs("email", "firstname", "Ada", 1500)]);
    expect(late.verdicts).toEqual(["echo"]);
    expect(sim.held("email").firstname).toBe("Both");
    expect(late.writes).toEqual([]);
  });
});

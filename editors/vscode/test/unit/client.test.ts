/**
 * The client's process handling, driven with small Node children that crash or misbehave on
 * purpose. Talking to a real sidecar is the end-to-end suite's job.
 */

import { afterEach, describe, expect, it, vi } from "vitest";

import { SidecarUnavailable, SwitchboardClient, type SidecarState } from "../../src/client";
import { alive, makeStub } from "./stub";

const clients: SwitchboardClient[] = [];

function client(args: string[], command = process.execPath, healthyAfterMs = 60_000) {
  const lines: string[] = [];
  const states: SidecarState[] = [];
  const sidecar = new SwitchboardClient({
    command,
    args,
    log: (line) => lines.push(line),
    backoff: { initialMs: 20, maxMs: 70, healthyAfterMs },
  });
  sidecar.onDidChangeState((state) => states.push(state));
  clients.push(sidecar);
  return { sidecar, lines, states };
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((sidecar) => sidecar.stop()));
});

const downDelays = (states: SidecarState[]): Array<number | null> =>
  states.flatMap((state) => (state.kind === "down" ? [state.retryInMs] : []));

describe("SwitchboardClient process handling", () => {
  it("reports a missing executable and keeps trying with growing delays", async () => {
    const { sidecar, states } = client([], "/nonexistent/switchboard");
    sidecar.start();
    await vi.waitFor(() => expect(downDelays(states).length).toBeGreaterThanOrEqual(4), { timeout: 5000 });
    expect(downDelays(states).slice(0, 4)).toEqual([20, 40, 70, 70]);
    const down = states.find((state) => state.kind === "down");
    expect(down).toMatchObject({ reason: "could not start '/nonexistent/switchboard': not found (set switchboard.path)" });
    await expect(sidecar.list()).rejects.toBeInstanceOf(SidecarUnavailable);
  });

  it("forwards stderr line by line and says how the sidecar ended", async () => {
    const { sidecar, lines, states } = client([
      "-e",
      "process.stderr.write('first line\\nsecond '); process.stderr.write('line\\n'); process.exit(3)",
    ]);
    sidecar.start();
    await vi.waitFor(() => expect(downDelays(states).length).toBeGreaterThanOrEqual(1), { timeout: 5000 });
    expect(lines).toContain("first line");
    expect(lines).toContain("second line");
    expect(states.find((state) => state.kind === "down")).toMatchObject({ reason: "exited with code 3" });
  });

  it("resets the delay after a sidecar that stayed up long enough", async () => {
    const { sidecar, states } = client(["-e", "process.exit(1)"], process.execPath, 0);
    sidecar.start();
    await vi.waitFor(() => expect(downDelays(states).length).toBeGreaterThanOrEqual(3), { timeout: 5000 });
    expect(downDelays(states).slice(0, 3)).toEqual([20, 20, 20]);
  });

  it("fails a request in flight when the sidecar dies before answering", async () => {
    const { sidecar } = client(["-e", "process.stdin.on('data', (d) => { if (String(d).includes('account/list')) process.exit(0); })"]);
    sidecar.start();
    await expect(sidecar.list()).rejects.toThrow(SidecarUnavailable);
  });

  it("stops for good: no restart after stop", async () => {
    const { sidecar, states } = client(["-e", "setInterval(() => {}, 1000)"]);
    sidecar.start();
    await sidecar.stop();
    expect(sidecar.state.kind).toBe("stopped");
    const seen = states.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(states.length).toBe(seen);
    expect(downDelays(states)).toEqual([]);
  });
});

/** A client of the stub sidecar, which records every pid it runs under. */
function stubClient(env: NodeJS.ProcessEnv = {}) {
  const stub = makeStub();
  const lines: string[] = [];
  const sidecar = new SwitchboardClient({
    command: stub.command,
    env: { ...process.env, STUB_PIDFILE: stub.pidfile, ...env },
    log: (line) => lines.push(line),
    backoff: { initialMs: 20, maxMs: 70, healthyAfterMs: 60_000 },
  });
  clients.push(sidecar);
  return { sidecar, stub, lines };
}

describe("SwitchboardClient life cycle", () => {
  it("leaves no sidecar behind when stopped while a restart is under way", async () => {
    // Deactivating the extension while a settings change restarts the sidecar used to start a
    // fresh sidecar after the stop had finished: a process nobody would ever end.
    const { sidecar, stub } = stubClient();
    sidecar.start();
    await vi.waitFor(() => expect(sidecar.state.kind).toBe("running"), { timeout: 5000 });
    const restarting = sidecar.restart();
    await sidecar.stop();
    await restarting;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sidecar.state.kind).toBe("stopped");
    expect(sidecar.pid).toBeUndefined();
    expect(stub.pids().filter(alive)).toEqual([]);
  });

  it("runs exactly one sidecar after restarts asked for at once, and says it runs", async () => {
    // Typing a path into the settings editor fires one configuration change per keystroke.
    const { sidecar, stub } = stubClient();
    sidecar.start();
    await vi.waitFor(() => expect(sidecar.state.kind).toBe("running"), { timeout: 5000 });
    await Promise.all([sidecar.restart(), sidecar.restart(), sidecar.restart()]);
    await vi.waitFor(() => expect(sidecar.state.kind).toBe("running"), { timeout: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sidecar.state.kind).toBe("running");
    const running = stub.pids().filter(alive);
    expect(running).toEqual([sidecar.pid]);
  });
});

describe("SwitchboardClient request order", () => {
  it("sends account changes one at a time, in the order they were asked for", async () => {
    // The sidecar runs requests concurrently, so two quick switches could land in either
    // order and leave Claude on the account the person picked first.
    const { sidecar, lines } = stubClient({ STUB_USE_DELAY_MS: "50" });
    sidecar.start();
    const targets = ["home", "work", "home", "work", "home"];
    const answers = await Promise.all(targets.map((alias) => sidecar.use(alias)));
    expect(answers.map((answer) => answer.active.alias)).toEqual(targets);
    expect(lines.filter((line) => line.startsWith("overlapping"))).toEqual([]);
    expect((await sidecar.list()).active).toBe("home");
  });
});

/**
 * The client's process handling, driven with small Node children that crash or misbehave on
 * purpose. Talking to a real sidecar is the end-to-end suite's job.
 */

import { afterEach, describe, expect, it, vi } from "vitest";

import { SidecarUnavailable, SwitchboardClient, type SidecarState } from "../../src/client";

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

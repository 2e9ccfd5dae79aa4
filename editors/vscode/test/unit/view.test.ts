import { describe, expect, it, vi } from "vitest";

import type { SidecarState } from "../../src/client";
import { Emitter } from "vscode-jsonrpc/node";
import type { DidChangeParams, ListResult } from "../../src/protocol";
import {
  describeExpiry,
  SHOW_LOG_COMMAND,
  statusBarView,
  StatusController,
  SWITCH_COMMAND,
  type StatusBarView,
} from "../../src/view";
import { account, home, list, MINUTE, NOW, unmanaged } from "./fixtures";

const running: SidecarState = { kind: "running", version: "0.1.0" };

function withActiveState(state: string, expiresAt: number | null = NOW + 125 * MINUTE): ListResult {
  return list({ accounts: [home(), account({ active: true, state, expiresAt })] });
}

describe("statusBarView", () => {
  it("shows the active alias with a person icon when its token is ok", () => {
    const view = statusBarView(running, withActiveState("ok"), NOW);
    expect(view.text).toBe("$(account) work");
    expect(view.background).toBeNull();
    expect(view.command).toBe(SWITCH_COMMAND);
    expect(view.tooltip).toContain("ada@example.com · Example Corp");
    expect(view.tooltip).toContain("Subscription: max");
    expect(view.tooltip).toContain("Token: signed in, expires in 2 h 5 min");
  });

  it("shows a clock without warning while the token is expiring", () => {
    const view = statusBarView(running, withActiveState("expiring", NOW + 3 * MINUTE), NOW);
    expect(view.text).toBe("$(clock) work");
    expect(view.background).toBeNull();
    expect(view.tooltip).toContain("expires in 3 min");
  });

  it("warns when the token has expired", () => {
    const view = statusBarView(running, withActiveState("expired", NOW - 10 * MINUTE), NOW);
    expect(view.text).toBe("$(warning) work");
    expect(view.background).toBe("warning");
    expect(view.tooltip).toContain("expired 10 min ago");
  });

  it("warns and says how to recover when the account needs a new login", () => {
    const view = statusBarView(running, withActiveState("needsLogin"), NOW);
    expect(view.text).toBe("$(error) work");
    expect(view.background).toBe("warning");
    expect(view.tooltip).toContain("run `claude /login` with this account, then add it again as 'work'");
  });

  it("shows a question mark for an unknown state, and for a state it has never heard of", () => {
    for (const state of ["unknown", "someFutureState"]) {
      const view = statusBarView(running, withActiveState(state), NOW);
      expect(view.text).toBe("$(question) work");
      expect(view.background).toBeNull();
    }
  });

  it("names an unmanaged login as such and offers to add it", () => {
    const accounts = list({ active: null, accounts: [home()], unmanaged: unmanaged() });
    const view = statusBarView(running, accounts, NOW);
    expect(view.text).toBe("$(person-add) new@example.com");
    expect(view.tooltip).toContain("new@example.com · New Org, which Switchboard does not manage");
    expect(view.tooltip).toContain("Add Account");
    expect(view.command).toBe(SWITCH_COMMAND);
  });

  it("names an unidentified unmanaged login without inventing an email", () => {
    const login = unmanaged({ email: null, organizationName: null, accountUuid: null });
    const view = statusBarView(running, list({ active: null, accounts: [], unmanaged: login }), NOW);
    expect(view.text).toBe("$(person-add) unmanaged login");
    expect(view.tooltip).toContain("an account Switchboard could not identify");
  });

  it("says when Claude Code has no login at all", () => {
    const view = statusBarView(running, list({ active: null, accounts: [] }), NOW);
    expect(view.text).toBe("$(account) no login");
    expect(view.tooltip).toContain("claude /login");
  });

  it("shows the sidecar down, with the reason and the retry delay, and links to the log", () => {
    const down: SidecarState = { kind: "down", reason: "exited with code 101", retryInMs: 4000 };
    const view = statusBarView(down, withActiveState("ok"), NOW);
    expect(view.text).toBe("$(debug-disconnect) Switchboard");
    expect(view.text).not.toContain("work");
    expect(view.background).toBe("error");
    expect(view.command).toBe(SHOW_LOG_COMMAND);
    expect(view.tooltip).toContain("exited with code 101");
    expect(view.tooltip).toContain("Starting it again in 4 s");
  });

  it("shows a spinner while the first sidecar starts", () => {
    const view = statusBarView({ kind: "starting" }, null, NOW);
    expect(view.text).toBe("$(sync~spin) Switchboard");
  });

  it("shows why the accounts cannot be read instead of a spinner or the last accounts", () => {
    const failure = "the vault: /v/catalog.json is corrupt: it is not valid JSON (line 1, column 2)";
    for (const accounts of [null, withActiveState("ok")]) {
      const view = statusBarView(running, accounts, NOW, failure);
      expect(view.text).toBe("$(warning) Switchboard");
      expect(view.background).toBe("warning");
      expect(view.tooltip).toContain(`cannot read the accounts: ${failure}`);
      expect(view.command).toBe(SWITCH_COMMAND);
    }
    const down: SidecarState = { kind: "down", reason: "exited with code 1", retryInMs: 500 };
    expect(statusBarView(down, null, NOW, failure).text).toBe("$(debug-disconnect) Switchboard");
  });

  it("says it is reading the accounts while a running sidecar has not answered yet", () => {
    const view = statusBarView(running, null, NOW);
    expect(view.text).toBe("$(sync~spin) Switchboard");
    expect(view.tooltip).toBe("Reading Switchboard's accounts…");
    expect(view.command).toBe(SWITCH_COMMAND);
  });

  it("warns about an unmanaged login whose token has expired", () => {
    const accounts = list({ active: null, accounts: [], unmanaged: unmanaged({ state: "expired" }) });
    const view = statusBarView(running, accounts, NOW);
    expect(view.background).toBe("warning");
    expect(view.tooltip).not.toContain("Click to switch");
  });

  it("shows a stopped sidecar", () => {
    const view = statusBarView({ kind: "stopped" }, list(), NOW);
    expect(view.text).toBe("$(circle-slash) Switchboard");
  });
});

describe("describeExpiry", () => {
  it("words future and past times relative to now", () => {
    expect(describeExpiry(null, NOW)).toBeNull();
    expect(describeExpiry(NOW + 30_000, NOW)).toBe("expires in less than a minute");
    expect(describeExpiry(NOW + 60 * MINUTE, NOW)).toBe("expires in 1 h");
    expect(describeExpiry(NOW - 3 * 24 * 60 * MINUTE, NOW)).toBe("expired 3 days ago");
  });
});

/** A client stand-in whose state and notifications the test drives by hand. */
class ScriptedSource {
  state: SidecarState = { kind: "starting" };
  readonly stateEmitter = new Emitter<SidecarState>();
  readonly changeEmitter = new Emitter<DidChangeParams>();
  readonly onDidChangeState = this.stateEmitter.event;
  readonly onDidChangeAccounts = this.changeEmitter.event;
  listAnswers: Array<Promise<ListResult>> = [];
  listCalls = 0;

  list(): Promise<ListResult> {
    this.listCalls += 1;
    return this.listAnswers.shift() ?? Promise.reject(new Error("no answer scripted"));
  }

  become(state: SidecarState): void {
    this.state = state;
    this.stateEmitter.fire(state);
  }
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => (resolve = done));
  return { promise, resolve };
}

function didChange(accounts: ListResult, reason = "use", external = false): DidChangeParams {
  return { ...accounts, reason, external };
}

describe("StatusController", () => {
  it("asks for the account list once the sidecar runs and draws it", async () => {
    const source = new ScriptedSource();
    const views: StatusBarView[] = [];
    source.listAnswers.push(Promise.resolve(list()));
    const controller = new StatusController(source, (view) => views.push(view), { now: () => NOW });
    expect(views.at(-1)?.text).toBe("$(sync~spin) Switchboard");
    source.become(running);
    await vi.waitFor(() => expect(views.at(-1)?.text).toBe("$(account) work"));
    expect(source.listCalls).toBe(1);
    controller.dispose();
  });

  it("follows account/didChange, including switches made elsewhere", () => {
    const source = new ScriptedSource();
    source.state = running;
    const views: StatusBarView[] = [];
    const controller = new StatusController(source, (view) => views.push(view), { now: () => NOW });
    const switched = list({
      active: "home",
      previous: "work",
      accounts: [home({ active: true }), account()],
    });
    source.changeEmitter.fire(didChange(switched, "external", true));
    expect(views.at(-1)?.text).toBe("$(account) home");
    expect(controller.accounts?.active).toBe("home");
    controller.dispose();
  });

  it("never lets an older list answer overwrite a newer notification", async () => {
    const source = new ScriptedSource();
    source.state = running;
    const views: StatusBarView[] = [];
    const controller = new StatusController(source, (view) => views.push(view), { now: () => NOW });
    const slow = deferred<ListResult>();
    source.listAnswers.push(slow.promise);
    const refreshing = controller.refresh();
    source.changeEmitter.fire(
      didChange(list({ active: "home", accounts: [home({ active: true }), account()] })),
    );
    slow.resolve(list());
    await refreshing;
    expect(views.at(-1)?.text).toBe("$(account) home");
    controller.dispose();
  });

  it("shows a failed account list, and clears it once a later list succeeds", async () => {
    const source = new ScriptedSource();
    source.state = running;
    const views: StatusBarView[] = [];
    const controller = new StatusController(source, (view) => views.push(view), { now: () => NOW });
    source.listAnswers.push(Promise.reject(new Error("the vault: catalog.json is corrupt")));
    await controller.refresh();
    expect(views.at(-1)?.text).toBe("$(warning) Switchboard");
    expect(views.at(-1)?.tooltip).toContain("the vault: catalog.json is corrupt");
    source.listAnswers.push(Promise.resolve(list()));
    controller.tick();
    await vi.waitFor(() => expect(views.at(-1)?.text).toBe("$(account) work"));
    expect(source.listCalls).toBe(2);
    controller.tick();
    expect(source.listCalls).toBe(2);
    controller.dispose();
  });

  it("clears a failed account list when a notification brings the accounts", async () => {
    const source = new ScriptedSource();
    source.state = running;
    const views: StatusBarView[] = [];
    const controller = new StatusController(source, (view) => views.push(view), { now: () => NOW });
    source.listAnswers.push(Promise.reject(new Error("credential store is not valid json")));
    await controller.refresh();
    source.changeEmitter.fire(didChange(list(), "external", true));
    expect(views.at(-1)?.text).toBe("$(account) work");
    controller.dispose();
  });

  it("shows the sidecar down as soon as it dies, and the accounts again once it is back", async () => {
    const source = new ScriptedSource();
    source.state = running;
    const views: StatusBarView[] = [];
    source.listAnswers.push(Promise.resolve(list()));
    const controller = new StatusController(source, (view) => views.push(view), { now: () => NOW });
    await controller.refresh();
    source.become({ kind: "down", reason: "killed by SIGKILL", retryInMs: 500 });
    expect(views.at(-1)?.text).toBe("$(debug-disconnect) Switchboard");
    source.listAnswers.push(Promise.resolve(list({ active: "home", accounts: [home({ active: true })] })));
    source.become(running);
    await vi.waitFor(() => expect(views.at(-1)?.text).toBe("$(account) home"));
    controller.dispose();
  });
});

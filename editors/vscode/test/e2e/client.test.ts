/**
 * The extension's client module, status bar controller and command wording against the real
 * `switchboard` sidecar and the real `fake-anthropic`, each test in its own scratch HOME and
 * SWITCHBOARD_HOME with its own fake service.
 */

import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";

import { afterEach, describe, expect, it, vi } from "vitest";

import { switchFollowUp } from "../../src/claude";
import type { SwitchboardClient } from "../../src/client";
import { statusMessage } from "../../src/commands";
import { describeError, errorKind } from "../../src/errors";
import type { DidChangeParams } from "../../src/protocol";
import { StatusController, type StatusBarView } from "../../src/view";
import { HOME_ACCOUNT, Scene, switchboardBin, THIRD, WORK } from "./harness";

/** How long an external change may take to reach a client, end to end. */
const NOTIFICATION_BUDGET_MS = 1000;

let scene: Scene | undefined;

afterEach(async () => {
  await scene?.dispose();
  scene = undefined;
});

/** A scene with `home` and `work` added, `work` active, and a client that has started. */
async function twoAccounts(): Promise<{ scene: Scene; client: SwitchboardClient; log: string[] }> {
  scene = await Scene.start();
  await scene.addAccounts({ home: HOME_ACCOUNT, work: WORK });
  const log: string[] = [];
  const client = scene.startClient(log);
  await vi.waitFor(() => expect(client.state.kind).toBe("running"), { timeout: 10_000 });
  return { scene, client, log };
}

/** Collects notifications and lets a test wait for one that matches. */
function notifications(client: SwitchboardClient) {
  const seen: Array<{ at: number; params: DidChangeParams }> = [];
  client.onDidChangeAccounts((params) => seen.push({ at: performance.now(), params }));
  return {
    seen,
    async next(
      match: (params: DidChangeParams) => boolean,
      timeout = 5000,
    ): Promise<{ at: number; params: DidChangeParams }> {
      let found: { at: number; params: DidChangeParams } | undefined;
      await vi.waitFor(
        () => {
          found = seen.find((entry) => match(entry.params));
          expect(found, "an account/didChange matching the test's condition").toBeDefined();
        },
        { timeout, interval: 5 },
      );
      return found!;
    },
  };
}

describe("against the real sidecar", () => {
  it("lists the accounts the CLI added, the active one marked", async () => {
    const { client } = await twoAccounts();
    const list = await client.list();
    expect(list.active).toBe("work");
    expect(list.unmanaged).toBeNull();
    expect(list.accounts.map((account) => account.alias)).toEqual(["home", "work"]);
    const work = list.accounts.find((account) => account.alias === "work");
    expect(work).toMatchObject({
      email: WORK.email,
      organizationName: WORK.organizationName,
      active: true,
      state: "ok",
    });
    expect(list.accounts.find((account) => account.alias === "home")?.active).toBe(false);
  });

  it("reports the status of the live store in the scratch HOME, and validates it", async () => {
    const { scene, client } = await twoAccounts();
    const status = await client.status();
    expect(status.account?.alias).toBe("work");
    expect(status.store).toEqual({ kind: "file", path: scene.credentialsFile });
    expect(status.configDir).toBe(scene.claudeDir);
    expect(status.shadowedBy).toEqual([]);
    const validated = await client.status({ validate: true });
    expect(validated.account?.state).toBe("ok");
    expect(validated.account?.validatedAt).not.toBeNull();
    const shown = statusMessage(validated, Date.now());
    expect(shown.message).toBe("Claude Code uses 'work': signed in");
    expect(shown.detail).toContain(`Live store: ${scene.credentialsFile}`);
    expect(shown.detail).toContain("Last validated: less than a minute ago");
  });

  it("switches with account/use, rewrites Claude's files and announces the change", async () => {
    const { scene, client } = await twoAccounts();
    const changes = notifications(client);
    const result = await client.use("home");
    expect(result.active).toMatchObject({ alias: "home", email: HOME_ACCOUNT.email, active: true });
    expect(result.previous).toBe("work");
    expect(result.shadowedBy).toEqual([]);
    expect(result.sessions.follow).toBe("nextRequest");
    const change = await changes.next((params) => params.reason === "use");
    expect(change.params).toMatchObject({ active: "home", previous: "work", external: false });
    const config = JSON.parse(await readFile(scene.globalConfig, "utf8")) as {
      oauthAccount: { emailAddress: string };
    };
    expect(config.oauthAccount.emailAddress).toBe(HOME_ACCOUNT.email);
    const followUp = switchFollowUp(result, true);
    expect(followUp.message).toMatch(/^Switched to 'home' \(ada@home\.example · Ada's Individual Org\)\. \S/);
    expect(followUp.actions.map((action) => action.title)).toEqual(["Open Claude"]);
  });

  it("shows a new login as unmanaged, then adds it with account/add", async () => {
    const { scene, client } = await twoAccounts();
    const views: StatusBarView[] = [];
    const controller = new StatusController(client, (view) => views.push(view));
    await controller.refresh();
    expect(views.at(-1)?.text).toBe("$(account) work");
    const changes = notifications(client);

    await scene.login(THIRD);
    await changes.next((params) => params.unmanaged?.email === THIRD.email);
    expect(views.at(-1)?.text).toBe(`$(person-add) ${THIRD.email}`);

    const added = await client.add("third");
    expect(added).toMatchObject({ alias: "third", email: THIRD.email, active: true });
    await changes.next((params) => params.reason === "add" && params.active === "third");
    expect(views.at(-1)?.text).toBe("$(account) third");
    controller.dispose();
  });

  it("refuses an unknown alias with data.kind unknownAccount", async () => {
    const { client } = await twoAccounts();
    const err = await client.use("nope").then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(errorKind(err)).toBe("unknownAccount");
    expect(describeError(err, { verb: "switch", alias: "nope" }).message).toBe(
      "No account is called 'nope'. Add it first.",
    );
  });

  it("refuses a switch to an account whose refresh token was revoked with needsLogin", async () => {
    scene = await Scene.start();
    // Short-lived access tokens make every switch refresh the target first.
    await scene.fake.control("PUT", "/settings", { accessTokenLifetimeSecs: 60 });
    const added = await scene.addAccounts({ home: HOME_ACCOUNT, work: WORK });
    await scene.fake.control("POST", `/lineages/${added.home.lineage}/revoke`);
    const client = scene.startClient();
    const err = await client.use("home").then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(errorKind(err)).toBe("needsLogin");
    expect(describeError(err, { verb: "switch", alias: "home" }).message).toBe(
      "The login of 'home' has expired for good. Run `claude /login` with that account, " +
        "then add it again as home.",
    );
    expect((await client.list()).active).toBe("work");
  });

  it("reports an unreachable or throttling token endpoint by kind, and changes nothing", async () => {
    scene = await Scene.start();
    await scene.fake.control("PUT", "/settings", { accessTokenLifetimeSecs: 60 });
    await scene.addAccounts({ home: HOME_ACCOUNT, work: WORK });
    const client = scene.startClient();
    const attempt = (): Promise<unknown> =>
      client.use("home").then(
        () => undefined,
        (error: unknown) => error,
      );

    await scene.fake.control("PUT", "/faults/token", { status: 503 });
    const unreachable = await attempt();
    expect(errorKind(unreachable)).toBe("network");
    expect(describeError(unreachable, { verb: "switch", alias: "home" }).actions).toContain("Try Again");

    await scene.fake.control("PUT", "/faults/token", { status: 429, retryAfterSecs: 3 });
    const throttled = await attempt();
    expect(errorKind(throttled)).toBe("rateLimited");
    expect(describeError(throttled, { verb: "switch", alias: "home" }).message).toContain(
      "try again in 3 s",
    );
    expect((await client.list()).active).toBe("work");
  });

  it("starts the sidecar again after it is killed", async () => {
    const { client } = await twoAccounts();
    const states: string[] = [];
    client.onDidChangeState((state) => states.push(state.kind));
    const pid = client.pid;
    expect(pid).toBeDefined();
    process.kill(pid!, "SIGKILL");
    await vi.waitFor(() => expect(states).toContain("down"), { timeout: 5000 });
    await vi.waitFor(() => expect(client.state.kind).toBe("running"), { timeout: 10_000 });
    expect(client.pid).not.toBe(pid);
    expect((await client.list()).active).toBe("work");
  });

  it("hears of a switch made by another process within a second", async () => {
    const { scene, client } = await twoAccounts();
    const views: StatusBarView[] = [];
    const controller = new StatusController(client, (view) => views.push(view));
    await controller.refresh();
    const changes = notifications(client);
    const measured: Array<{ sinceExit: number; sinceStart: number }> = [];

    for (const target of ["home", "work", "home", "work", "home"]) {
      changes.seen.length = 0;
      const started = performance.now();
      const child = spawn(switchboardBin(), ["use", target], { env: scene.env, stdio: "ignore" });
      const [code, exited] = await new Promise<[number | null, number]>((resolve) =>
        child.once("exit", (exitCode) => resolve([exitCode, performance.now()])),
      );
      expect(code).toBe(0);
      const change = await changes.next(
        (params) => params.active === target && params.external,
        NOTIFICATION_BUDGET_MS + 4000,
      );
      measured.push({ sinceExit: change.at - exited, sinceStart: change.at - started });
      expect(views.at(-1)?.text).toBe(`$(account) ${target}`);
    }

    const worst = Math.max(...measured.map((entry) => entry.sinceExit));
    console.log(
      "account/didChange after an external `switchboard use`: " +
        measured
          .map((entry) => `${entry.sinceExit.toFixed(0)} ms after exit (${entry.sinceStart.toFixed(0)} ms after start)`)
          .join("; "),
    );
    expect(worst).toBeLessThanOrEqual(NOTIFICATION_BUDGET_MS);
    controller.dispose();
  });
});

describe("against the real sidecar, under stress", () => {
  it("ends on the account picked last after quick switches, and the status bar agrees", async () => {
    const { client } = await twoAccounts();
    const views: StatusBarView[] = [];
    const controller = new StatusController(client, (view) => views.push(view));
    await controller.refresh();
    for (const round of [0, 1, 2]) {
      const targets = ["home", "work", "home", "work", "home", "work"];
      if (round % 2 === 1) {
        targets.push("home");
      }
      const last = targets.at(-1)!;
      const answers = await Promise.all(targets.map((alias) => client.use(alias)));
      expect(answers.map((answer) => answer.active.alias)).toEqual(targets);
      expect((await client.list()).active).toBe(last);
      await vi.waitFor(() => expect(views.at(-1)?.text).toBe(`$(account) ${last}`));
    }
    controller.dispose();
  });

  it("shows a vault it cannot read on the status bar, and recovers once it is repaired", async () => {
    scene = await Scene.start();
    await scene.addAccounts({ home: HOME_ACCOUNT, work: WORK });
    const catalog = path.join(scene.env.SWITCHBOARD_HOME!, "catalog.json");
    const good = await readFile(catalog, "utf8");
    await writeFile(catalog, "{not json");
    const client = scene.startClient();
    const views: StatusBarView[] = [];
    const controller = new StatusController(client, (view) => views.push(view));
    await vi.waitFor(() => expect(views.at(-1)?.text).toBe("$(warning) Switchboard"), {
      timeout: 10_000,
    });
    expect(views.at(-1)?.tooltip).toContain("catalog.json is corrupt");
    const err = await client.use("home").then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(errorKind(err)).toBe("storeUnavailable");
    await writeFile(catalog, good);
    controller.tick();
    await vi.waitFor(() => expect(views.at(-1)?.text).toBe("$(account) work"), { timeout: 5000 });
    controller.dispose();
  });
});

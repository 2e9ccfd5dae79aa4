/**
 * Activation against the recording `vscode` stand-in: what gets registered and shown, and how
 * the status bar reacts when the configured sidecar cannot start.
 */

import { readFileSync } from "node:fs";
import * as path from "node:path";

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import * as vscode from "vscode";

import { activate, deactivate, vscodeUi } from "../../src/extension";
import { alive, makeStub } from "./stub";
import { fake } from "./vscode";

interface Manifest {
  main: string;
  activationEvents: string[];
  contributes: {
    commands: Array<{ command: string }>;
    configuration: { properties: Record<string, unknown> };
  };
}

const manifest = JSON.parse(readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8")) as Manifest;
const missing = "/nonexistent/switchboard";

function context(): vscode.ExtensionContext {
  return { subscriptions: [], extensionPath: "/nonexistent/extension" } as unknown as vscode.ExtensionContext;
}

let ctx: vscode.ExtensionContext;

beforeEach(() => {
  fake.reset();
  fake.settings["switchboard.path"] = missing;
  ctx = context();
});

afterEach(async () => {
  await deactivate();
  vi.unstubAllEnvs();
  for (const subscription of ctx.subscriptions) {
    subscription.dispose();
  }
});

describe("activate", () => {
  it("registers exactly the commands package.json contributes", () => {
    activate(ctx);
    const contributed = manifest.contributes.commands.map((entry) => entry.command).sort();
    expect([...fake.commands.keys()].sort()).toEqual(contributed);
    expect(contributed).toEqual([
      "switchboard.addAccount",
      "switchboard.removeAccount",
      "switchboard.restartSidecar",
      "switchboard.showLog",
      "switchboard.showStatus",
      "switchboard.switchAccount",
    ]);
    expect(Object.keys(manifest.contributes.configuration.properties).sort()).toEqual([
      "switchboard.logLevel",
      "switchboard.path",
    ]);
    expect(manifest.main).toBe("./out/extension.js");
  });

  it("shows a named status bar item and disposes it with the extension", () => {
    activate(ctx);
    expect(fake.statusBarItems).toHaveLength(1);
    const item = fake.statusBarItems[0];
    expect(item.id).toBe("switchboard.status");
    expect(item.name).toBe("Switchboard");
    expect(item.visible).toBe(true);
    expect(ctx.subscriptions).toContain(item);
  });

  it("shows the sidecar down, and why, when it cannot start", async () => {
    activate(ctx);
    const item = fake.statusBarItems[0];
    await vi.waitFor(() => expect(item.text).toBe("$(debug-disconnect) Switchboard"), { timeout: 5000 });
    expect(item.command).toBe("switchboard.showLog");
    expect(item.backgroundColor).toEqual(new vscode.ThemeColor("statusBarItem.errorBackground"));
    expect(item.tooltip).toContain(`could not start '${missing}': not found`);
    const channel = fake.outputChannels.find((candidate) => candidate.name === "Switchboard");
    expect(channel?.lines.some((line) => line.includes(`starting ${missing} serve --framing lsp`))).toBe(true);
  });

  it("answers a command with an actionable error while the sidecar is down", async () => {
    activate(ctx);
    await vi.waitFor(() => expect(fake.statusBarItems[0].text).toContain("Switchboard"));
    await vscode.commands.executeCommand("switchboard.switchAccount");
    const shown = fake.messages.at(-1);
    expect(shown?.severity).toBe("error");
    expect(shown?.message).toMatch(/^The Switchboard sidecar is not running: /);
    expect(shown?.items).toEqual(["Show Log", "Restart Sidecar"]);
    expect(fake.outputChannels[0].lines.some((line) => line.startsWith("switch failed (sidecarDown)"))).toBe(
      true,
    );
  });

  it("opens the log", async () => {
    activate(ctx);
    await vscode.commands.executeCommand("switchboard.showLog");
    expect(fake.outputChannels[0].shown).toBe(1);
  });

  it("restarts the sidecar with the new path when the setting changes", async () => {
    activate(ctx);
    const channel = fake.outputChannels[0];
    fake.settings["switchboard.path"] = "/elsewhere/switchboard";
    for (const listener of fake.configurationListeners) {
      listener({ affectsConfiguration: (section: string) => section === "switchboard" });
    }
    await vi.waitFor(() =>
      expect(channel.lines.some((line) => line.includes("starting /elsewhere/switchboard"))).toBe(true),
    );
  });
});

describe("activate with a sidecar that runs", () => {
  /** The stand-in sidecar as switchboard.path; the editor's environment tells it its pidfile. */
  function sidecarStub(): ReturnType<typeof makeStub> {
    const stub = makeStub();
    fake.settings["switchboard.path"] = stub.command;
    vi.stubEnv("STUB_PIDFILE", stub.pidfile);
    return stub;
  }

  function changeSettings(): void {
    for (const listener of fake.configurationListeners) {
      listener({ affectsConfiguration: (section: string) => section === "switchboard" });
    }
  }

  it("feeds the sidecar's stderr to the output channel and draws its accounts", async () => {
    const stub = sidecarStub();
    activate(ctx);
    const channel = fake.outputChannels[0];
    const item = fake.statusBarItems[0];
    await vi.waitFor(() => expect(stub.pids()).toHaveLength(1), { timeout: 5000 });
    await vi.waitFor(() => expect(item.text).toBe("$(account) work"), { timeout: 5000 });
    expect(channel.lines.some((line) => /^stub started pid=\d+ /.test(line))).toBe(true);
    expect(item.command).toBe("switchboard.switchAccount");
  });

  it("applies a new log level at once by restarting the sidecar with it", async () => {
    const stub = sidecarStub();
    activate(ctx);
    const channel = fake.outputChannels[0];
    await vi.waitFor(
      () => expect(channel.lines.some((line) => line.endsWith("RUST_LOG=switchboard=info"))).toBe(true),
      { timeout: 5000 },
    );
    fake.settings["switchboard.logLevel"] = "debug";
    changeSettings();
    await vi.waitFor(
      () => expect(channel.lines.some((line) => line.endsWith("RUST_LOG=switchboard=debug"))).toBe(true),
      { timeout: 5000 },
    );
    await vi.waitFor(() => expect(stub.pids().filter(alive)).toHaveLength(1), { timeout: 5000 });
  });

  it("ends the sidecar on deactivate, even while a settings change restarts it", async () => {
    const stub = sidecarStub();
    activate(ctx);
    await vi.waitFor(() => expect(fake.statusBarItems[0].text).toBe("$(account) work"), {
      timeout: 5000,
    });
    fake.settings["switchboard.logLevel"] = "trace";
    changeSettings();
    await deactivate();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(stub.pids().length).toBeGreaterThan(0);
    expect(stub.pids().filter(alive)).toEqual([]);
  });

  it("restarts the sidecar from the palette", async () => {
    const stub = sidecarStub();
    activate(ctx);
    await vi.waitFor(() => expect(stub.pids()).toHaveLength(1), { timeout: 5000 });
    await vscode.commands.executeCommand("switchboard.restartSidecar");
    await vi.waitFor(() => expect(stub.pids()).toHaveLength(2), { timeout: 5000 });
    await vi.waitFor(() => expect(fake.statusBarItems[0].text).toBe("$(account) work"), {
      timeout: 5000,
    });
    expect(stub.pids().filter(alive)).toEqual([stub.pids()[1]]);
  });
});

describe("the VS Code UI adapter", () => {
  it("knows whether Anthropic's Claude Code extension is installed", () => {
    const ui = vscodeUi(vscode.window.createOutputChannel("Switchboard"));
    expect(ui.isClaudeExtensionInstalled()).toBe(false);
    fake.installedExtensions.add("anthropic.claude-code");
    expect(ui.isClaudeExtensionInstalled()).toBe(true);
  });

  it("routes each severity to its message function and passes the buttons on", async () => {
    const ui = vscodeUi(vscode.window.createOutputChannel("Switchboard"));
    fake.answerMessage = (shown) => shown.items[0];
    expect(await ui.showMessage("warning", "careful", { modal: true }, "Remove")).toBe("Remove");
    await ui.showMessage("info", "fine", {});
    await ui.showMessage("error", "broken", {});
    expect(fake.messages.map((shown) => shown.severity)).toEqual(["warning", "info", "error"]);
    expect(fake.messages[0].options).toEqual({ modal: true });
  });

  it("runs other extensions' commands through VS Code", async () => {
    const ui = vscodeUi(vscode.window.createOutputChannel("Switchboard"));
    await ui.executeCommand("claude-vscode.focus");
    expect(fake.executed).toEqual(["claude-vscode.focus"]);
  });
});

/**
 * The extension's entry point: wires VS Code's window, commands and settings to the plain
 * modules that hold the logic (`client`, `view`, `commands`).
 *
 * It stays thin on purpose. Anything worth testing lives in a module that loads without VS
 * Code; this file only adapts VS Code's API to the small interfaces those modules ask for.
 */

import * as fs from "node:fs";

import * as vscode from "vscode";

import { CLAUDE_EXTENSION_ID } from "./claude";
import { SwitchboardClient } from "./client";
import { Commands, type Severity, type Ui } from "./commands";
import { resolveCommand, sidecarEnv } from "./config";
import { StatusController, type StatusBarView } from "./view";

/**
 * How often the status bar is drawn again so relative expiry times stay true, and a failed
 * account list is asked for again.
 */
const RERENDER_MS = 30_000;

let client: SwitchboardClient | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel("Switchboard");
  const log = (line: string): void => output.appendLine(line);
  const sidecar = new SwitchboardClient({ ...launchSettings(context), log });
  client = sidecar;

  const item = vscode.window.createStatusBarItem(
    "switchboard.status",
    vscode.StatusBarAlignment.Left,
    0,
  );
  item.name = "Switchboard";
  const status = new StatusController(sidecar, (view) => drawStatusBar(item, view), { log });
  item.show();
  const timer = setInterval(() => status.tick(), RERENDER_MS);

  const commands = new Commands(sidecar, sidecar, vscodeUi(output), Date.now, log);
  context.subscriptions.push(
    output,
    item,
    status,
    { dispose: () => clearInterval(timer) },
    vscode.commands.registerCommand("switchboard.switchAccount", (alias?: unknown) =>
      commands.switchAccount(typeof alias === "string" ? alias : undefined),
    ),
    vscode.commands.registerCommand("switchboard.addAccount", () => commands.addAccount()),
    vscode.commands.registerCommand("switchboard.removeAccount", () => commands.removeAccount()),
    vscode.commands.registerCommand("switchboard.showStatus", () => commands.showStatus()),
    vscode.commands.registerCommand("switchboard.restartSidecar", () => commands.restartSidecar()),
    vscode.commands.registerCommand("switchboard.showLog", () => commands.showLog()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("switchboard")) {
        const { command, env } = launchSettings(context);
        void sidecar.configure(command, env);
      }
    }),
  );
  sidecar.start();
}

export async function deactivate(): Promise<void> {
  const running = client;
  client = undefined;
  await running?.stop();
}

function launchSettings(context: vscode.ExtensionContext): {
  command: string;
  env: NodeJS.ProcessEnv;
} {
  const config = vscode.workspace.getConfiguration("switchboard");
  return {
    command: resolveCommand(config.get<string>("path"), context.extensionPath, fs.existsSync),
    env: sidecarEnv(process.env, config.get<string>("logLevel")),
  };
}

function drawStatusBar(item: vscode.StatusBarItem, view: StatusBarView): void {
  item.text = view.text;
  item.tooltip = view.tooltip;
  item.command = view.command;
  item.backgroundColor =
    view.background === null
      ? undefined
      : new vscode.ThemeColor(`statusBarItem.${view.background}Background`);
}

/** VS Code's window and command functions in the shape the command logic asks for. */
export function vscodeUi(output: vscode.OutputChannel): Ui {
  return {
    showQuickPick: (items, options) =>
      Promise.resolve(vscode.window.showQuickPick(items, { ...options, matchOnDescription: true })),
    showInputBox: (options) => Promise.resolve(vscode.window.showInputBox(options)),
    showMessage: (severity, message, options, ...actions) =>
      Promise.resolve(showMessage(severity)(message, options, ...actions)),
    withProgress: (title, task) =>
      Promise.resolve(
        vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title }, task),
      ),
    executeCommand: (command) => Promise.resolve(vscode.commands.executeCommand(command)),
    isClaudeExtensionInstalled: () => vscode.extensions.getExtension(CLAUDE_EXTENSION_ID) !== undefined,
    showLog: () => output.show(true),
  };
}

function showMessage(
  severity: Severity,
): (
  message: string,
  options: vscode.MessageOptions,
  ...items: string[]
) => Thenable<string | undefined> {
  switch (severity) {
    case "info":
      return vscode.window.showInformationMessage;
    case "warning":
      return vscode.window.showWarningMessage;
    case "error":
      return vscode.window.showErrorMessage;
  }
}

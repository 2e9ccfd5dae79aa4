/**
 * What each Switchboard command does, written against two small interfaces: the account
 * operations (`AccountsApi`, the sidecar client) and the editor's UI (`Ui`, VS Code's window
 * functions in the extension, recording fakes in the tests).
 *
 * Every failure ends in a message that says what to do next, worded from the error's
 * `data.kind`; cancelling a pick or an input box ends the command quietly.
 */

import type { AccountsApi } from "./client";
import { switchFollowUp } from "./claude";
import { Action, describeError, type Operation } from "./errors";
import { accountPickItems, type AccountPickItem } from "./picks";
import {
  aliasProblem,
  type Account,
  type ListResult,
  type StatusResult,
  type UseResult,
} from "./protocol";
import { describeExpiry, describeState, identityLine, describeAgo } from "./view";

export type Severity = "info" | "warning" | "error";

export interface MessageOptions {
  modal?: boolean;
  detail?: string;
}

export interface InputOptions {
  title: string;
  prompt: string;
  placeHolder?: string;
  value?: string;
  validateInput: (value: string) => string | undefined;
}

/** The editor functions the commands use; the extension passes VS Code's own. */
export interface Ui {
  showQuickPick(
    items: AccountPickItem[],
    options: { title: string; placeHolder: string },
  ): Promise<AccountPickItem | undefined>;
  showInputBox(options: InputOptions): Promise<string | undefined>;
  showMessage(
    severity: Severity,
    message: string,
    options: MessageOptions,
    ...actions: string[]
  ): Promise<string | undefined>;
  withProgress<T>(title: string, task: () => Promise<T>): Promise<T>;
  executeCommand(command: string): Promise<unknown>;
  isClaudeExtensionInstalled(): boolean;
  showLog(): void;
}

/** The sidecar's life cycle, as the restart command needs it. */
export interface SidecarControl {
  restart(): Promise<void>;
}

export class Commands {
  constructor(
    private readonly api: AccountsApi,
    private readonly sidecar: SidecarControl,
    private readonly ui: Ui,
    private readonly now: () => number = Date.now,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  /** Switches Claude Code to `alias`, or to the account picked from a list. */
  async switchAccount(alias?: string): Promise<void> {
    let target = typeof alias === "string" ? alias : undefined;
    if (target === undefined) {
      const list = await this.listOrReport({ verb: "switch" }, () => this.switchAccount());
      if (list === undefined) {
        return;
      }
      if (list.accounts.length === 0) {
        const choice = await this.ui.showMessage(
          "info",
          "Switchboard manages no account yet. Add the login Claude Code has now.",
          {},
          Action.addAccount,
        );
        if (choice === Action.addAccount) {
          await this.addAccount();
        }
        return;
      }
      const picked = await this.ui.showQuickPick(accountPickItems(list), {
        title: "Switch Claude Code account",
        placeHolder: list.active === null ? "Pick an account" : `Now using '${list.active}'`,
      });
      if (picked === undefined) {
        return;
      }
      if (picked.account.active) {
        await this.ui.showMessage("info", `'${picked.account.alias}' is already active.`, {});
        return;
      }
      target = picked.account.alias;
    }
    const chosen = target;
    let result: UseResult;
    try {
      result = await this.ui.withProgress(`Switching to '${chosen}'…`, () =>
        this.api.use(chosen),
      );
    } catch (err) {
      await this.report(err, { verb: "switch", alias: chosen }, () => this.switchAccount(chosen));
      return;
    }
    // From here on the switch has happened: a failure to open Claude or reload must be told
    // as that, never as a failed switch.
    const followUp = switchFollowUp(result, this.ui.isClaudeExtensionInstalled());
    const choice = await this.ui.showMessage(
      followUp.severity,
      followUp.message,
      {},
      ...followUp.actions.map((action) => action.title),
    );
    const action = followUp.actions.find((candidate) => candidate.title === choice);
    if (action !== undefined) {
      try {
        await this.ui.executeCommand(action.command);
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        this.log(`${action.command} failed after switching to '${chosen}': ${why}`);
        await this.ui.showMessage(
          "warning",
          `Switched to '${result.active.alias}', but ${action.title} failed: ${why}`,
          {},
        );
      }
    }
  }

  /** Adopts the login Claude Code has now under an alias the person types. */
  async addAccount(suggested?: string): Promise<void> {
    const list = await this.listOrReport({ verb: "add" }, () => this.addAccount(suggested));
    if (list === undefined) {
      return;
    }
    const alias = await this.ui.showInputBox({
      title: "Add Claude Code's current login to Switchboard",
      prompt: addPrompt(list),
      placeHolder: "an alias, for example work or home",
      value: typeof suggested === "string" ? suggested : undefined,
      validateInput: (value) => aliasProblem(value.trim()),
    });
    if (alias === undefined) {
      return;
    }
    const chosen = alias.trim();
    try {
      const account = await this.ui.withProgress(`Adding '${chosen}'…`, () =>
        this.api.add(chosen),
      );
      const identity = identityLine(account);
      await this.ui.showMessage(
        "info",
        `Added '${account.alias}'${identity === "" ? "" : ` (${identity})`}.`,
        {},
      );
    } catch (err) {
      await this.report(err, { verb: "add", alias: chosen }, () => this.addAccount(chosen));
    }
  }

  /** Forgets a picked account after the person confirms. */
  async removeAccount(): Promise<void> {
    const list = await this.listOrReport({ verb: "remove" }, () => this.removeAccount());
    if (list === undefined) {
      return;
    }
    if (list.accounts.length === 0) {
      await this.ui.showMessage("info", "Switchboard manages no account.", {});
      return;
    }
    const picked = await this.ui.showQuickPick(accountPickItems(list), {
      title: "Remove an account from Switchboard",
      placeHolder: "Pick the account to forget",
    });
    if (picked === undefined) {
      return;
    }
    const account = picked.account;
    const confirmed = await this.ui.showMessage(
      "warning",
      `Remove '${account.alias}' from Switchboard?`,
      { modal: true, detail: removeDetail(account) },
      "Remove",
    );
    if (confirmed !== "Remove") {
      return;
    }
    try {
      const result = await this.api.remove(account.alias);
      await this.ui.showMessage("info", `Removed '${result.removed}'.`, {});
    } catch (err) {
      await this.report(err, { verb: "remove", alias: account.alias }, () => this.removeAccount());
    }
  }

  /** Validates the active account with Anthropic and shows everything known about it. */
  async showStatus(): Promise<void> {
    try {
      const status = await this.ui.withProgress("Checking the active account…", () =>
        this.api.status({ validate: true }),
      );
      const view = statusMessage(status, this.now());
      await this.ui.showMessage(view.severity, view.message, { modal: true, detail: view.detail });
    } catch (err) {
      await this.report(err, { verb: "status" }, () => this.showStatus());
    }
  }

  async restartSidecar(): Promise<void> {
    await this.sidecar.restart();
  }

  showLog(): void {
    this.ui.showLog();
  }

  private async listOrReport(
    op: Operation,
    retry: () => Promise<void>,
  ): Promise<ListResult | undefined> {
    try {
      return await this.api.list();
    } catch (err) {
      await this.report(err, op, retry);
      return undefined;
    }
  }

  /** Shows what went wrong and carries out the button the person presses. */
  private async report(err: unknown, op: Operation, retry: () => Promise<void>): Promise<void> {
    const report = describeError(err, op);
    this.log(`${op.verb}${op.alias === undefined ? "" : ` '${op.alias}'`} failed (${report.kind}): ${
      err instanceof Error ? err.message : String(err)
    }`);
    const choice = await this.ui.showMessage(report.severity, report.message, {}, ...report.actions);
    switch (choice) {
      case Action.retry:
        await retry();
        break;
      case Action.showLog:
        this.ui.showLog();
        break;
      case Action.restart:
        await this.restartSidecar();
        break;
      case Action.addAccount:
        await this.addAccount(report.kind === "needsLogin" ? op.alias : undefined);
        break;
      default:
        break;
    }
  }
}

function addPrompt(list: ListResult): string {
  if (list.unmanaged !== null) {
    const identity = identityLine(list.unmanaged);
    return `Alias for the login of ${identity === "" ? "an unidentified account" : identity}`;
  }
  if (list.active !== null) {
    return (
      `Claude Code's login is managed as '${list.active}'. To add another account, run ` +
      "`claude /login` with it first (no /logout). Alias to add under:"
    );
  }
  return "Alias for the login Claude Code has now";
}

function removeDetail(account: Account): string {
  const lines = [
    "Switchboard forgets this account and deletes its snapshot. Using it again needs " +
      "`claude /login` with it and adding it again.",
  ];
  if (account.active) {
    lines.push("Claude Code stays logged in with it; the login becomes unmanaged.");
  }
  return lines.join("\n");
}

export interface StatusMessage {
  severity: Severity;
  message: string;
  detail: string;
}

/** The status command's message: a headline and a detail block. */
export function statusMessage(status: StatusResult, now: number): StatusMessage {
  const lines: string[] = [];
  let message: string;
  let severity: Severity = "info";
  const account = status.account;
  if (account !== null) {
    message = `Claude Code uses '${account.alias}': ${describeState(account.state)}`;
    const identity = identityLine(account);
    if (identity !== "") {
      lines.push(identity);
    }
    if (account.subscriptionType !== null) {
      lines.push(`Subscription: ${account.subscriptionType}`);
    }
    const expiry = describeExpiry(account.expiresAt, now);
    if (expiry !== null) {
      lines.push(`Access token ${expiry}`);
    }
    lines.push(`Last validated: ${describeAgo(account.validatedAt, now)}`);
    lines.push(`Last synced: ${describeAgo(account.syncedAt, now)}`);
    if (account.fingerprint !== null) {
      lines.push(`Refresh token fingerprint: ${account.fingerprint}`);
    }
    if (account.state === "needsLogin") {
      severity = "warning";
      lines.push(
        `Run \`claude /login\` with this account, then add it again as ${account.alias}.`,
      );
    } else if (account.state === "expired") {
      severity = "warning";
    }
  } else if (status.unmanaged !== null) {
    const identity = identityLine(status.unmanaged);
    message = `Claude Code's login is not managed by Switchboard`;
    lines.push(identity === "" ? "The account could not be identified." : identity);
    lines.push("Add it to keep it.");
  } else {
    message = "Claude Code has no login";
  }
  if (status.store.kind === "file") {
    lines.push(`Live store: ${status.store.path}`);
  } else {
    lines.push(`Live store: Keychain item ${status.store.service} (${status.store.account})`);
  }
  lines.push(`Claude config folder: ${status.configDir}`);
  if (status.shadowedBy.length > 0) {
    severity = "warning";
    lines.push(
      `Claude ignores the stored login because of ${status.shadowedBy.join(", ")}; ` +
        "switching has no effect on sessions started with it.",
    );
  }
  return { severity, message, detail: lines.join("\n") };
}

/**
 * The status bar's view model: what the item says, its tooltip and background, computed from
 * the sidecar's state and the last account view, and kept in step with the sidecar.
 *
 * It mirrors the server and never guesses: the account view comes only from `account/list` and
 * `account/didChange`, and while the sidecar is down the item says so instead of showing the
 * last known account as if it were current.
 */

import type { Disposable, Event } from "vscode-jsonrpc/node";

import type { SidecarState } from "./client";
import type { Account, DidChangeParams, ListResult, UnmanagedLogin } from "./protocol";

export const SWITCH_COMMAND = "switchboard.switchAccount";
export const SHOW_LOG_COMMAND = "switchboard.showLog";

/** What the status bar item shows; `background` names a theme colour family. */
export interface StatusBarView {
  text: string;
  tooltip: string;
  background: "warning" | "error" | null;
  command: string;
}

const ICON: Record<string, string> = {
  ok: "$(account)",
  expiring: "$(clock)",
  expired: "$(warning)",
  needsLogin: "$(error)",
  unknown: "$(question)",
};

/** States that need the user's eye; the protocol asks clients to show these as warnings. */
const WARNING_STATES = new Set(["needsLogin", "expired"]);

/** A short, human phrase for an account state; unknown states are shown as they come. */
export function describeState(state: string): string {
  switch (state) {
    case "ok":
      return "signed in";
    case "expiring":
      return "token expiring, refreshed on next use";
    case "expired":
      return "token expired, refreshed on next use";
    case "needsLogin":
      return "needs a new login";
    case "unknown":
      return "state unknown";
    default:
      return state;
  }
}

/** "in 2 h 5 min" or "3 min ago", relative to `now`; `null` when the time is not known. */
export function describeExpiry(expiresAt: number | null, now: number): string | null {
  if (expiresAt === null) {
    return null;
  }
  const delta = expiresAt - now;
  const span = formatSpan(Math.abs(delta));
  return delta >= 0 ? `expires in ${span}` : `expired ${span} ago`;
}

/** "5 min ago" for a past time, "never" when there is none. */
export function describeAgo(at: number | null, now: number): string {
  if (at === null) {
    return "never";
  }
  return `${formatSpan(Math.max(0, now - at))} ago`;
}

function formatSpan(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 1) {
    return "less than a minute";
  }
  if (minutes < 60) {
    return `${minutes} min`;
  }
  const hours = Math.floor(minutes / 60);
  if (hours < 48) {
    const rest = minutes % 60;
    return rest === 0 ? `${hours} h` : `${hours} h ${rest} min`;
  }
  return `${Math.floor(hours / 24)} days`;
}

/** "email · organization", leaving out what is not known. */
export function identityLine(who: { email: string | null; organizationName: string | null }): string {
  return [who.email, who.organizationName].filter((part) => part !== null && part !== "").join(" · ");
}

/** The status bar for `sidecar` and the last account view `accounts` (null: none yet). */
export function statusBarView(
  sidecar: SidecarState,
  accounts: ListResult | null,
  now: number,
  listFailure: string | null = null,
): StatusBarView {
  switch (sidecar.kind) {
    case "down":
      return {
        text: "$(debug-disconnect) Switchboard",
        tooltip: [
          `Switchboard's sidecar is down: ${sidecar.reason}.`,
          sidecar.retryInMs === null
            ? "It will not be started again on its own."
            : `Starting it again in ${Math.ceil(sidecar.retryInMs / 1000)} s.`,
          "Click to open the log.",
        ].join("\n"),
        background: "error",
        command: SHOW_LOG_COMMAND,
      };
    case "stopped":
      return {
        text: "$(circle-slash) Switchboard",
        tooltip: "Switchboard's sidecar is stopped. Click to open the log.",
        background: null,
        command: SHOW_LOG_COMMAND,
      };
    case "starting":
      if (accounts === null) {
        return {
          text: "$(sync~spin) Switchboard",
          tooltip: "Starting Switchboard's sidecar…",
          background: null,
          command: SHOW_LOG_COMMAND,
        };
      }
      break;
    case "running":
      break;
  }
  if (listFailure !== null) {
    // A sidecar that runs but cannot read the vault or Claude's store (a file that does not
    // parse, say) answers every request with that error; showing the last accounts, or a
    // spinner, would hide it. The switch command lists again and offers the log.
    return {
      text: "$(warning) Switchboard",
      tooltip: [
        `Switchboard cannot read the accounts: ${listFailure}`,
        "Click to try again; the log has the details.",
      ].join("\n"),
      background: "warning",
      command: SWITCH_COMMAND,
    };
  }
  if (accounts === null) {
    return {
      text: "$(sync~spin) Switchboard",
      tooltip: "Reading Switchboard's accounts…",
      background: null,
      command: SWITCH_COMMAND,
    };
  }
  const active = accounts.accounts.find((account) => account.alias === accounts.active);
  if (active !== undefined) {
    return accountView(active, now);
  }
  if (accounts.unmanaged !== null) {
    return unmanagedView(accounts.unmanaged, accounts.accounts.length);
  }
  return {
    text: "$(account) no login",
    tooltip: [
      "Claude Code has no login.",
      accounts.accounts.length > 0
        ? "Click to install one of Switchboard's accounts."
        : "Run `claude /login`, then \"Switchboard: Add Account\".",
    ].join("\n"),
    background: null,
    command: SWITCH_COMMAND,
  };
}

function accountView(account: Account, now: number): StatusBarView {
  const lines = [`Claude Code uses '${account.alias}'`];
  const identity = identityLine(account);
  if (identity !== "") {
    lines.push(identity);
  }
  if (account.subscriptionType !== null) {
    lines.push(`Subscription: ${account.subscriptionType}`);
  }
  const expiry = describeExpiry(account.expiresAt, now);
  lines.push(`Token: ${describeState(account.state)}${expiry === null ? "" : `, ${expiry}`}`);
  if (account.state === "needsLogin") {
    lines.push(
      `Log in again: run \`claude /login\` with this account, then add it again as '${account.alias}'.`,
    );
  }
  lines.push("Click to switch account.");
  return {
    text: `${ICON[account.state] ?? ICON["unknown"]} ${account.alias}`,
    tooltip: lines.join("\n"),
    background: WARNING_STATES.has(account.state) ? "warning" : null,
    command: SWITCH_COMMAND,
  };
}

function unmanagedView(login: UnmanagedLogin, managedCount: number): StatusBarView {
  const identity = identityLine(login);
  const who = identity === "" ? "an account Switchboard could not identify" : identity;
  const lines = [
    `Claude Code is logged in as ${who}, which Switchboard does not manage.`,
    "Run \"Switchboard: Add Account\" to keep this login.",
  ];
  if (managedCount > 0) {
    lines.push("Click to switch to a managed account.");
  }
  return {
    text: `$(person-add) ${login.email ?? "unmanaged login"}`,
    tooltip: lines.join("\n"),
    background: WARNING_STATES.has(login.state) ? "warning" : null,
    command: SWITCH_COMMAND,
  };
}

/** What the status controller needs from the client; `SwitchboardClient` provides it. */
export interface StatusSource {
  readonly state: SidecarState;
  readonly onDidChangeState: Event<SidecarState>;
  readonly onDidChangeAccounts: Event<DidChangeParams>;
  list(): Promise<ListResult>;
}

export interface StatusControllerOptions {
  now?: () => number;
  log?: (line: string) => void;
}

/**
 * Keeps the last account view and renders the status bar whenever it or the sidecar changes.
 * A fresh sidecar is asked for `account/list`; after that, notifications carry every change.
 */
export class StatusController implements Disposable {
  private latest: ListResult | null = null;
  /** Why the last `account/list` failed, until a list or a notification succeeds. */
  private listFailure: string | null = null;
  /** Counts notifications so an older `account/list` answer never overwrites a newer one. */
  private generation = 0;
  private readonly subscriptions: Disposable[];
  private readonly now: () => number;
  private readonly log: (line: string) => void;

  constructor(
    private readonly source: StatusSource,
    private readonly render: (view: StatusBarView) => void,
    options: StatusControllerOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.log = options.log ?? (() => undefined);
    this.subscriptions = [
      source.onDidChangeState((state) => {
        if (state.kind === "running") {
          void this.refresh();
        }
        this.update();
      }),
      source.onDidChangeAccounts((params) => {
        this.generation += 1;
        this.latest = toListResult(params);
        this.listFailure = null;
        this.update();
      }),
    ];
    this.update();
  }

  /** The last account view the sidecar gave, or null before the first one. */
  get accounts(): ListResult | null {
    return this.latest;
  }

  /** Asks the sidecar for the whole view and renders it. */
  async refresh(): Promise<void> {
    const generation = this.generation;
    try {
      const result = await this.source.list();
      if (generation === this.generation) {
        this.latest = result;
        this.listFailure = null;
        this.update();
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log(`account/list failed: ${message}`);
      if (generation === this.generation && this.source.state.kind === "running") {
        this.listFailure = message;
        this.update();
      }
    }
  }

  /** Renders again, for example to bring the relative expiry time up to date. */
  update(): void {
    this.render(statusBarView(this.source.state, this.latest, this.now(), this.listFailure));
  }

  /**
   * The periodic beat: renders again, and asks for the list again while the last one failed,
   * since a repaired file may bring no notification.
   */
  tick(): void {
    if (this.listFailure !== null && this.source.state.kind === "running") {
      void this.refresh();
    } else {
      this.update();
    }
  }

  dispose(): void {
    for (const subscription of this.subscriptions) {
      subscription.dispose();
    }
  }
}

function toListResult(params: DidChangeParams): ListResult {
  return {
    active: params.active,
    previous: params.previous,
    accounts: params.accounts,
    unmanaged: params.unmanaged,
  };
}

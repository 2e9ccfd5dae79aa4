/**
 * Turns what a request threw into a message a person can act on, branching on the sidecar's
 * `error.data.kind` and never on the wording of its message.
 *
 * Each message says what to do next; where a button helps (try again, open the log) it is
 * offered as an action the command logic carries out.
 */

import { ResponseError } from "vscode-jsonrpc/node";

import { SidecarUnavailable } from "./client";
import type { ErrorData } from "./protocol";

/** Buttons an error message may offer. */
export const Action = {
  retry: "Try Again",
  showLog: "Show Log",
  restart: "Restart Sidecar",
  addAccount: "Add Account",
} as const;
export type Action = (typeof Action)[keyof typeof Action];

export interface ErrorReport {
  severity: "error" | "warning";
  message: string;
  actions: Action[];
  /** The sidecar's `data.kind`, `sidecarDown`, or `internal` for anything else. */
  kind: string;
}

/** What the failed operation was, for wording the message. */
export interface Operation {
  verb: "switch" | "add" | "remove" | "status" | "list";
  alias?: string;
}

/** The `data.kind` of a sidecar error, `sidecarDown` when there was no sidecar, else null. */
export function errorKind(err: unknown): string | null {
  if (err instanceof SidecarUnavailable) {
    return "sidecarDown";
  }
  if (err instanceof ResponseError) {
    const data = err.data as Partial<ErrorData> | undefined;
    return typeof data?.kind === "string" ? data.kind : null;
  }
  return null;
}

export function describeError(err: unknown, op: Operation): ErrorReport {
  const kind = errorKind(err);
  const data = err instanceof ResponseError ? ((err.data ?? {}) as Partial<ErrorData>) : {};
  const alias = data.alias ?? op.alias ?? "that account";
  const serverMessage = err instanceof Error ? err.message : String(err);
  const report = (
    severity: ErrorReport["severity"],
    message: string,
    actions: Action[] = [],
  ): ErrorReport => ({ severity, message, actions, kind: kind ?? "internal" });

  switch (kind) {
    case "sidecarDown":
      return report("error", `${capitalise(serverMessage)}.`, [Action.showLog, Action.restart]);
    case "needsLogin":
      return report(
        "warning",
        `The login of '${alias}' has expired for good. Run \`claude /login\` with that account, ` +
          `then add it again as ${alias}.`,
        [Action.addAccount],
      );
    case "unknownAccount":
      return report("error", `No account is called '${alias}'. Add it first.`, [Action.addAccount]);
    case "busy":
      return report(
        "warning",
        `Another switch or refresh is in progress${retryHint(data.retryAfterMs)}; nothing changed.`,
        [Action.retry],
      );
    case "network":
      return report(
        "error",
        "Could not reach Anthropic's login service; nothing changed. Check the network and try again.",
        [Action.retry, Action.showLog],
      );
    case "rateLimited":
      return report(
        "warning",
        `Anthropic asked Switchboard to slow down${retryHint(data.retryAfterMs)}; nothing changed.`,
        [Action.retry],
      );
    case "noLogin":
      return report(
        "warning",
        "Claude Code has no usable login to add. Run `claude /login` with the account you want " +
          "(without `/logout` first: it revokes the current login), then add it.",
      );
    case "aliasTaken":
      return report("warning", `Another account is already called '${alias}'. Pick another alias.`);
    case "alreadyManaged":
      return report(
        "warning",
        `This login is already managed as '${alias}'. To add another account, run ` +
          "`claude /login` with it first.",
      );
    case "shadowed":
      return report(
        "warning",
        `${(data.shadowedBy ?? []).join(", ") || "An environment override"} makes Claude Code ` +
          "ignore its stored login, so this has no effect. Start VS Code without it.",
      );
    case "identityMismatch":
    case "storeUnavailable":
      return report("error", `${capitalise(serverMessage)}.`, [Action.showLog]);
    default:
      return report("error", `Switchboard could not ${DOING[op.verb]}: ${serverMessage}`, [
        Action.showLog,
      ]);
  }
}

/** Each operation as the object of "could not …". */
const DOING: Record<Operation["verb"], string> = {
  switch: "switch",
  add: "add the account",
  remove: "remove the account",
  status: "check the status",
  list: "list the accounts",
};

function retryHint(ms: number | undefined): string {
  return ms === undefined ? "" : `; try again in ${Math.max(1, Math.ceil(ms / 1000))} s`;
}

function capitalise(text: string): string {
  return text.length === 0 ? text : text[0].toUpperCase() + text.slice(1);
}

/**
 * Cooperation with Anthropic's Claude Code extension after a switch: tell the person when the
 * sessions it runs pick up the new login, and offer to open Claude or reload the window.
 *
 * The rule it keeps is honesty. The wording comes from the sidecar's `sessions.message`, which
 * knows how this machine's Claude follows a switch, and a switch that an environment override
 * makes ineffective is reported as a warning, never as done. Nothing here can tell whether a
 * Claude conversation is in the middle of a reply: the Claude extension offers no such API.
 */

import type { UseResult } from "./protocol";
import { identityLine } from "./view";

export const CLAUDE_EXTENSION_ID = "anthropic.claude-code";
export const CLAUDE_FOCUS_COMMAND = "claude-vscode.focus";
export const RELOAD_WINDOW_COMMAND = "workbench.action.reloadWindow";

export interface FollowUpAction {
  title: string;
  command: string;
}

export interface SwitchFollowUp {
  severity: "info" | "warning";
  message: string;
  actions: FollowUpAction[];
}

export const OPEN_CLAUDE: FollowUpAction = { title: "Open Claude", command: CLAUDE_FOCUS_COMMAND };
export const RELOAD_WINDOW: FollowUpAction = {
  title: "Reload Window",
  command: RELOAD_WINDOW_COMMAND,
};

/** The message shown after `account/use` answered `result`. */
export function switchFollowUp(result: UseResult, claudeInstalled: boolean): SwitchFollowUp {
  const alias = result.active.alias;
  const identity = identityLine(result.active);
  const who = identity === "" ? `'${alias}'` : `'${alias}' (${identity})`;
  const sessions = sentence(result.sessions.message);
  const restart = result.sessions.follow === "restart";
  const actions: FollowUpAction[] = [];
  if (claudeInstalled) {
    actions.push(OPEN_CLAUDE);
    if (restart) {
      actions.push(RELOAD_WINDOW);
    }
  }
  if (result.shadowedBy.length > 0) {
    return {
      severity: "warning",
      message:
        `Claude Code's stored login is now ${who}, but ${result.shadowedBy.join(", ")} makes ` +
        `Claude ignore it. ${sessions}`,
      actions,
    };
  }
  return {
    severity: restart ? "warning" : "info",
    message: `Switched to ${who}. ${sessions}`,
    actions,
  };
}

/** A sidecar phrase as a sentence: capital first letter, closing period. */
function sentence(text: string): string {
  const trimmed = text.trim();
  if (trimmed === "") {
    return "";
  }
  const capitalised = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capitalised) ? capitalised : `${capitalised}.`;
}

/**
 * The account pick list shared by the switch and remove commands: one item per managed
 * account, in the sidecar's order (by alias), the active one marked.
 *
 * Items are plain objects shaped like `vscode.QuickPickItem`, so tests read them without VS Code.
 */

import type { Account, ListResult } from "./protocol";
import { describeState, identityLine } from "./view";

export interface AccountPickItem {
  label: string;
  description: string;
  detail: string;
  /** The account the item stands for; VS Code ignores fields it does not know. */
  account: Account;
}

/** "$(check) active · signed in · max" and the like. */
export function accountDetail(account: Account): string {
  const parts: string[] = [];
  if (account.active) {
    parts.push("$(check) active");
  }
  parts.push(describeState(account.state));
  if (account.subscriptionType !== null) {
    parts.push(account.subscriptionType);
  }
  return parts.join(" · ");
}

export function accountPickItems(list: ListResult): AccountPickItem[] {
  return list.accounts.map((account) => ({
    label: account.alias,
    description: identityLine(account),
    detail: accountDetail(account),
    account,
  }));
}

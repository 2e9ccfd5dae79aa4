/**
 * The sidecar's public contract as TypeScript types: method names, params, results, the
 * `account/didChange` notification and the error kinds, as `docs/protocol.md` defines them.
 *
 * The protocol only ever grows, so every type here describes what this extension reads and
 * tolerates more: unknown fields are ignored, and unknown states or reasons are passed through
 * as plain strings rather than rejected.
 */

/**
 * A string the protocol may extend: the listed values plus any later one. Writing it this way
 * keeps the known values visible to the editor while still accepting new ones.
 */
export type Extensible<Known extends string> = Known | (string & Record<never, never>);

/** A token state the sidecar reports; a later sidecar may send states not listed here. */
export type AccountState = "ok" | "expiring" | "expired" | "needsLogin" | "unknown";

/** A managed account, as every result and notification carries it. Never holds a token. */
export interface Account {
  alias: string;
  accountUuid: string;
  email: string | null;
  organizationUuid: string;
  organizationName: string | null;
  subscriptionType: string | null;
  active: boolean;
  state: Extensible<AccountState>;
  expiresAt: number | null;
  validatedAt: number | null;
  syncedAt: number | null;
  fingerprint: string | null;
}

/** The login installed in Claude Code when it belongs to no managed account. */
export interface UnmanagedLogin {
  accountUuid: string | null;
  email: string | null;
  organizationUuid: string | null;
  organizationName: string | null;
  state: Extensible<AccountState>;
}

/** How running Claude Code sessions pick up a switch. */
export interface Sessions {
  follow: Extensible<"nextRequest" | "within30Seconds" | "restart">;
  message: string;
}

export interface ListResult {
  active: string | null;
  previous: string | null;
  accounts: Account[];
  unmanaged: UnmanagedLogin | null;
}

export type LiveStore =
  | { kind: "file"; path: string }
  | { kind: "keychain"; service: string; account: string };

export interface StatusParams {
  alias?: string;
  validate?: boolean;
}

export interface StatusResult {
  account: Account | null;
  store: LiveStore;
  configDir: string;
  globalConfig: string;
  shadowedBy: string[];
  unmanaged: UnmanagedLogin | null;
}

export interface UseResult {
  active: Account;
  previous: string | null;
  sessions: Sessions;
  shadowedBy: string[];
}

export interface RemoveResult {
  removed: string;
}

/** Params of `account/didChange`: the whole view after the change, whoever caused it. */
export interface DidChangeParams extends ListResult {
  reason: Extensible<"use" | "add" | "remove" | "refresh" | "sync" | "external" | "state">;
  external: boolean;
}

export interface InitializeResult {
  protocolVersion: number;
  serverInfo?: { name: string; version: string };
  capabilities?: Record<string, unknown>;
}

export const Method = {
  initialize: "initialize",
  initialized: "initialized",
  shutdown: "shutdown",
  exit: "exit",
  list: "account/list",
  status: "account/status",
  use: "account/use",
  add: "account/add",
  remove: "account/remove",
  didChange: "account/didChange",
} as const;

/** The `data.kind` values the sidecar puts on an operation's error. */
export type ErrorKind =
  | "unknownAccount"
  | "needsLogin"
  | "noLogin"
  | "identityMismatch"
  | "busy"
  | "network"
  | "rateLimited"
  | "storeUnavailable"
  | "shadowed"
  | "aliasTaken"
  | "alreadyManaged";

/** The `data` of an operation's error; fields beyond `kind` depend on the kind. */
export interface ErrorData {
  kind: Extensible<ErrorKind>;
  alias?: string;
  retryAfterMs?: number;
  store?: unknown;
  shadowedBy?: string[];
}

/** What an alias may look like; the sidecar enforces the same rule. */
export const ALIAS_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** Says why `alias` is not a valid alias, or `undefined` when it is one. */
export function aliasProblem(alias: string): string | undefined {
  if (alias.length === 0) {
    return "an alias needs at least one character";
  }
  if (alias === "-") {
    return "'-' means the previous account and cannot be an alias";
  }
  if (!ALIAS_PATTERN.test(alias)) {
    return "use up to 64 letters, digits, '.', '_' or '-'";
  }
  return undefined;
}

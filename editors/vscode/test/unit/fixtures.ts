/**
 * Protocol values for unit tests, shaped like the examples in docs/protocol.md. Times are
 * relative to a fixed `NOW` so expiry wording is stable.
 */

import { ResponseError } from "vscode-jsonrpc/node";

import type { Account, ListResult, UnmanagedLogin, UseResult } from "../../src/protocol";

export const NOW = 1_796_340_000_000;
export const MINUTE = 60_000;

export function account(overrides: Partial<Account> = {}): Account {
  return {
    alias: "work",
    accountUuid: "8a3c5f0e-1b7d-4c1e-9f3a-2d6b7e8c9a01",
    email: "ada@example.com",
    organizationUuid: "4f1d2e3c-5b6a-4798-8a9b-0c1d2e3f4a5b",
    organizationName: "Example Corp",
    subscriptionType: "max",
    active: false,
    state: "ok",
    expiresAt: NOW + 125 * MINUTE,
    validatedAt: NOW - 5 * MINUTE,
    syncedAt: NOW - 30 * MINUTE,
    fingerprint: "3fa9c2d1",
    ...overrides,
  };
}

export const home = (overrides: Partial<Account> = {}): Account =>
  account({
    alias: "home",
    accountUuid: "11111111-2222-4333-8444-555555555555",
    email: "ada@home.example",
    organizationUuid: "66666666-7777-4888-9999-000000000000",
    organizationName: "Ada's Individual Org",
    subscriptionType: "pro",
    fingerprint: "a1b2c3d4",
    ...overrides,
  });

/** `work` active and `home` not, unless the caller says otherwise. */
export function list(overrides: Partial<ListResult> = {}): ListResult {
  return {
    active: "work",
    previous: null,
    accounts: [home(), account({ active: true })],
    unmanaged: null,
    ...overrides,
  };
}

export function unmanaged(overrides: Partial<UnmanagedLogin> = {}): UnmanagedLogin {
  return {
    accountUuid: "99999999-8888-4777-8666-555555555555",
    email: "new@example.com",
    organizationUuid: "44444444-3333-4222-8111-000000000000",
    organizationName: "New Org",
    state: "ok",
    ...overrides,
  };
}

export function useResult(overrides: Partial<UseResult> = {}): UseResult {
  return {
    active: home({ active: true }),
    previous: "work",
    sessions: {
      follow: "nextRequest",
      message: "running Claude Code sessions switch on their next request",
    },
    shadowedBy: [],
    ...overrides,
  };
}

const CODES: Record<string, number> = {
  unknownAccount: -32001,
  needsLogin: -32002,
  noLogin: -32003,
  identityMismatch: -32004,
  busy: -32005,
  network: -32006,
  rateLimited: -32007,
  storeUnavailable: -32008,
  shadowed: -32009,
  aliasTaken: -32010,
  alreadyManaged: -32011,
};

/** An application error as `vscode-jsonrpc` hands it to the caller. */
export function sidecarError(
  kind: string,
  message: string,
  data: Record<string, unknown> = {},
): ResponseError<unknown> {
  return new ResponseError(CODES[kind] ?? -32000, message, { kind, ...data });
}

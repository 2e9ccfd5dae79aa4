/**
 * A stand-in sidecar for unit tests that need a real child process on real pipes: a few dozen
 * lines of Node that speak the LSP framing by hand, so the tests can watch process life
 * (who started, who is still alive, what environment it got) and request ordering without
 * the Rust binary. What the real sidecar answers is the end-to-end suite's business.
 *
 * It writes `stub started pid=… RUST_LOG=…` to stderr when it starts and appends its pid
 * to STUB_PIDFILE when that is set. `account/use` answers after STUB_USE_DELAY_MS and reports on
 * stderr when a second `account/use` arrives while one is still being answered.
 */

import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

const SCRIPT = String.raw`
const pidfile = process.env.STUB_PIDFILE;
if (pidfile) require("fs").appendFileSync(pidfile, process.pid + "\n");
process.stderr.write("stub started pid=" + process.pid + " RUST_LOG=" + process.env.RUST_LOG + "\n");
const delay = Number(process.env.STUB_USE_DELAY_MS || 0);
let active = "work";
let using = 0;
let buffer = Buffer.alloc(0);
function send(message) {
  const body = Buffer.from(JSON.stringify({ jsonrpc: "2.0", ...message }), "utf8");
  process.stdout.write("Content-Length: " + body.length + "\r\n\r\n");
  process.stdout.write(body);
}
function account(alias) {
  return { alias, accountUuid: alias + "-uuid", email: alias + "@example.com",
    organizationUuid: alias + "-org", organizationName: null, subscriptionType: null,
    active: alias === active, state: "ok", expiresAt: null, validatedAt: null, syncedAt: null,
    fingerprint: null };
}
function view() {
  return { active, previous: null, accounts: [account("home"), account("work")], unmanaged: null };
}
function handle(message) {
  const { id, method, params } = message;
  if (method === "initialize") {
    send({ id, result: { protocolVersion: 1, serverInfo: { name: "stub", version: "0.0.0" } } });
  } else if (method === "shutdown") {
    send({ id, result: null });
  } else if (method === "exit") {
    process.exit(0);
  } else if (method === "account/list") {
    send({ id, result: view() });
  } else if (method === "account/use") {
    using += 1;
    if (using > 1) process.stderr.write("overlapping account/use " + params.alias + "\n");
    setTimeout(() => {
      using -= 1;
      active = params.alias;
      send({ method: "account/didChange", params: { reason: "use", external: false, ...view() } });
      send({ id, result: { active: account(active), previous: null,
        sessions: { follow: "nextRequest", message: "sessions follow" }, shadowedBy: [] } });
    }, delay);
  } else if (id !== undefined) {
    send({ id, error: { code: -32601, message: "unknown method " + method } });
  }
}
process.stdin.on("data", (chunk) => {
  buffer = Buffer.concat([buffer, chunk]);
  for (;;) {
    const end = buffer.indexOf("\r\n\r\n");
    if (end < 0) return;
    const length = Number(/Content-Length: (\d+)/i.exec(buffer.subarray(0, end).toString())[1]);
    if (buffer.length < end + 4 + length) return;
    const body = buffer.subarray(end + 4, end + 4 + length).toString("utf8");
    buffer = buffer.subarray(end + 4 + length);
    handle(JSON.parse(body));
  }
});
process.stdin.on("end", () => process.exit(0));
`;

export interface Stub {
  /** An executable that runs the stub, whatever arguments it is given. */
  command: string;
  /** The file each started stub appends its pid to (pass it as STUB_PIDFILE). */
  pidfile: string;
  /** The pids of every stub started so far. */
  pids(): number[];
}

/** Writes the stub and a launcher for it into a fresh temporary folder. */
export function makeStub(): Stub {
  const dir = mkdtempSync(path.join(tmpdir(), "switchboard-stub-"));
  const script = path.join(dir, "stub.cjs");
  writeFileSync(script, SCRIPT);
  const command = path.join(dir, "switchboard");
  writeFileSync(command, `#!/bin/sh\nexec "${process.execPath}" "${script}" "$@"\n`);
  chmodSync(command, 0o755);
  const pidfile = path.join(dir, "pids");
  writeFileSync(pidfile, "");
  return {
    command,
    pidfile,
    pids: () =>
      readFileSync(pidfile, "utf8")
        .split("\n")
        .filter((line) => line !== "")
        .map(Number),
  };
}

/** Whether a process with this pid is still alive (and not a zombie we are about to reap). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The connection to the Switchboard sidecar: starts `switchboard serve --framing lsp`, speaks
 * JSON-RPC to it through `vscode-jsonrpc` over the child's stdio, forwards its stderr to a log,
 * and starts it again with growing delays when it dies.
 *
 * This module never imports `vscode`, so the end-to-end suite drives it in plain Node against
 * the real binary. It keeps one rule: a request made while the sidecar is down fails at once
 * with `SidecarUnavailable` instead of waiting, so no command hangs on a dead process.
 */

import { spawn, type ChildProcess } from "node:child_process";
import {
  ConnectionError,
  createMessageConnection,
  Emitter,
  ErrorCodes,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  type Disposable,
  type Event,
  type MessageConnection,
} from "vscode-jsonrpc/node";

import {
  Method,
  type Account,
  type DidChangeParams,
  type InitializeResult,
  type ListResult,
  type RemoveResult,
  type StatusParams,
  type StatusResult,
  type UseResult,
} from "./protocol";

/** Where the sidecar is in its life, as the status bar shows it. */
export type SidecarState =
  | { kind: "starting" }
  | { kind: "running"; version: string | null }
  | { kind: "down"; reason: string; retryInMs: number | null }
  | { kind: "stopped" };

/** Delays between restarts: doubling from `initialMs` up to `maxMs`. */
export interface Backoff {
  initialMs: number;
  maxMs: number;
  /** A sidecar that stayed up this long counts as healthy and resets the delay. */
  healthyAfterMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 30_000, healthyAfterMs: 30_000 };

export interface SidecarOptions {
  /** The `switchboard` executable. */
  command: string;
  /** Arguments; `serve --framing lsp` unless a test needs something else. */
  args?: string[];
  /** The whole environment of the child. */
  env?: NodeJS.ProcessEnv;
  /** Receives the sidecar's stderr, line by line, and this client's own notes. */
  log?: (line: string) => void;
  backoff?: Backoff;
  /** Sent as `clientInfo` in `initialize`. */
  clientName?: string;
}

/** Thrown by a request when no sidecar is there to answer it. */
export class SidecarUnavailable extends Error {
  constructor(reason: string) {
    super(`the Switchboard sidecar is not running: ${reason}`);
    this.name = "SidecarUnavailable";
  }
}

/** The account operations, as the command logic needs them; `SwitchboardClient` is one. */
export interface AccountsApi {
  list(): Promise<ListResult>;
  status(params?: StatusParams): Promise<StatusResult>;
  use(alias: string): Promise<UseResult>;
  add(alias: string): Promise<Account>;
  remove(alias: string): Promise<RemoveResult>;
}

export const SERVE_ARGS = ["serve", "--framing", "lsp"];

/** How long `stop` waits for a polite exit before it kills the sidecar. */
const STOP_GRACE_MS = 2_000;

export class SwitchboardClient implements AccountsApi, Disposable {
  private readonly options: Required<Omit<SidecarOptions, "env">> & { env: NodeJS.ProcessEnv };
  private readonly stateEmitter = new Emitter<SidecarState>();
  private readonly changeEmitter = new Emitter<DidChangeParams>();
  private currentState: SidecarState = { kind: "stopped" };
  private child: ChildProcess | undefined;
  private connection: MessageConnection | undefined;
  /** Settles with the connection once a starting sidecar's process exists (or failed to). */
  private connecting: Promise<MessageConnection | undefined> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private wanted = false;
  /**
   * Stops and restarts run one after another: two of them interleaved could each start a
   * sidecar, or start one after a later stop had already finished.
   */
  private lifecycle: Promise<void> = Promise.resolve();
  /** Bumped by every stop and restart: a restart whose turn comes late sees it was overtaken. */
  private intent = 0;
  /** The tail of the chain the account changes (use, add, remove) are sent through. */
  private changes: Promise<unknown> = Promise.resolve();

  /** Fires on every change of `state`. */
  readonly onDidChangeState: Event<SidecarState> = this.stateEmitter.event;
  /** Fires for every `account/didChange` the sidecar sends. */
  readonly onDidChangeAccounts: Event<DidChangeParams> = this.changeEmitter.event;

  constructor(options: SidecarOptions) {
    this.options = {
      command: options.command,
      args: options.args ?? SERVE_ARGS,
      env: options.env ?? process.env,
      log: options.log ?? (() => undefined),
      backoff: options.backoff ?? DEFAULT_BACKOFF,
      clientName: options.clientName ?? "switchboard-vscode",
    };
  }

  get state(): SidecarState {
    return this.currentState;
  }

  /** The sidecar's process id while one is running. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the sidecar and keeps it running until `stop` or `dispose`. */
  start(): void {
    this.wanted = true;
    if (this.child === undefined && this.restartTimer === undefined) {
      this.launch();
    }
  }

  /**
   * Ends the sidecar politely (`shutdown`, `exit`, end of input), killing it if it lingers.
   * Once it resolves no sidecar runs, even when a restart was still under way.
   */
  stop(): Promise<void> {
    this.intent += 1;
    this.wanted = false;
    this.clearRestartTimer();
    return this.serially(() => this.halt());
  }

  /**
   * Starts a fresh sidecar now, forgetting earlier failures, unless a stop or restart asked
   * for after this one overtakes it.
   */
  restart(): Promise<void> {
    const intent = ++this.intent;
    return this.serially(async () => {
      await this.halt();
      if (intent === this.intent) {
        this.failures = 0;
        this.start();
      }
    });
  }

  /** Changes how the sidecar is started; a running one is restarted to pick it up. */
  async configure(command: string, env: NodeJS.ProcessEnv): Promise<void> {
    this.options.command = command;
    this.options.env = env;
    if (this.wanted) {
      await this.restart();
    }
  }

  private serially(step: () => Promise<void>): Promise<void> {
    const done = this.lifecycle.then(step);
    this.lifecycle = done.catch(() => undefined);
    return done;
  }

  private async halt(): Promise<void> {
    this.clearRestartTimer();
    const child = this.child;
    const connection = this.connection;
    // Forgetting the process first keeps a late `spawn` from attaching to a sidecar on its way out.
    this.child = undefined;
    this.connection = undefined;
    this.connecting = undefined;
    if (child !== undefined) {
      const exited = waitForExit(child, STOP_GRACE_MS);
      if (connection !== undefined) {
        try {
          await withTimeout(connection.sendRequest(Method.shutdown), STOP_GRACE_MS / 2);
          await connection.sendNotification(Method.exit);
        } catch {
          // A sidecar that cannot take part in a polite exit is ended below all the same.
        }
      }
      child.stdin?.end();
      if (!(await exited)) {
        child.kill("SIGKILL");
        await waitForExit(child, STOP_GRACE_MS);
      }
    }
    connection?.dispose();
    this.setState({ kind: "stopped" });
  }

  dispose(): void {
    void this.stop().finally(() => {
      this.stateEmitter.dispose();
      this.changeEmitter.dispose();
    });
  }

  list(): Promise<ListResult> {
    return this.request(Method.list, {});
  }

  status(params: StatusParams = {}): Promise<StatusResult> {
    return this.request(Method.status, params);
  }

  use(alias: string): Promise<UseResult> {
    return this.inOrder(() => this.request(Method.use, { alias }));
  }

  add(alias: string): Promise<Account> {
    return this.inOrder(() => this.request(Method.add, { alias }));
  }

  remove(alias: string): Promise<RemoveResult> {
    return this.inOrder(() => this.request(Method.remove, { alias }));
  }

  /**
   * Sends an account change once every earlier one has been answered. The sidecar runs
   * requests concurrently and takes its vault lock in whatever order they get there, so two
   * quick switches sent together could be applied in either order; one at a time, the account
   * picked last is the one Claude Code ends up with. Reads (list, status) need no such order.
   */
  private inOrder<R>(send: () => Promise<R>): Promise<R> {
    const answer = this.changes.then(send);
    this.changes = answer.catch(() => undefined);
    return answer;
  }

  private async request<R>(method: string, params: object): Promise<R> {
    const connection = this.connection ?? (await this.connecting);
    if (connection === undefined) {
      throw new SidecarUnavailable(this.downReason());
    }
    try {
      return await connection.sendRequest<R>(method, params);
    } catch (err) {
      if (isConnectionLoss(err)) {
        throw new SidecarUnavailable("it exited before answering");
      }
      throw err;
    }
  }

  private downReason(): string {
    const state = this.currentState;
    return state.kind === "down" ? state.reason : state.kind;
  }

  private launch(): void {
    this.restartTimer = undefined;
    const { command, args, env, log } = this.options;
    log(`starting ${command} ${args.join(" ")}`);
    this.setState({ kind: "starting" });
    const startedAt = Date.now();
    const child = spawn(command, args, { env, stdio: ["pipe", "pipe", "pipe"] });
    this.child = child;

    let ended = false;
    const onEnd = (reason: string): void => {
      if (ended) {
        return;
      }
      ended = true;
      this.onSidecarEnded(child, reason, Date.now() - startedAt);
    };
    child.on("error", (err) => onEnd(spawnFailure(command, err)));
    child.on("exit", (code, signal) =>
      onEnd(signal !== null ? `killed by ${signal}` : `exited with code ${code ?? "unknown"}`),
    );
    forwardLines(child.stderr, log);
    // Nothing is written before the process exists: a write into the pipe of a process that
    // failed to start is rejected inside vscode-jsonrpc where no caller can catch it.
    this.connecting = new Promise((resolve) => {
      child.once("spawn", () => resolve(this.child === child ? this.attach(child) : undefined));
      child.once("error", () => resolve(undefined));
    });
  }

  private attach(child: ChildProcess): MessageConnection | undefined {
    const log = this.options.log;
    if (child.stdout === null || child.stdin === null) {
      return undefined;
    }
    const connection = createMessageConnection(
      new StreamMessageReader(child.stdout),
      new StreamMessageWriter(child.stdin),
    );
    connection.onNotification(Method.didChange, (params: DidChangeParams) => {
      this.changeEmitter.fire(params);
    });
    // A broken pipe surfaces here as well as through `exit`; the exit path does the restart.
    connection.onError(([error]) => log(`connection error: ${error.message}`));
    connection.listen();
    this.connection = connection;

    connection
      .sendRequest<InitializeResult>(Method.initialize, {
        processId: process.pid,
        clientInfo: { name: this.options.clientName },
      })
      .then(
        (result) => {
          if (this.child !== child) {
            return;
          }
          const version = result?.serverInfo?.version ?? null;
          log(`sidecar ready (protocol ${result?.protocolVersion ?? "?"}, version ${version ?? "?"})`);
          void connection.sendNotification(Method.initialized, {}).catch(() => undefined);
          this.setState({ kind: "running", version });
        },
        (err: unknown) => {
          if (this.child === child && !isConnectionLoss(err)) {
            // `initialize` is optional in the protocol; a refusal still leaves a usable sidecar.
            log(`initialize failed: ${errorText(err)}`);
            this.setState({ kind: "running", version: null });
          }
        },
      );
    return connection;
  }

  private onSidecarEnded(child: ChildProcess, reason: string, livedMs: number): void {
    if (this.child !== child) {
      return;
    }
    this.detach();
    if (!this.wanted) {
      return;
    }
    const { backoff, log } = this.options;
    if (livedMs >= backoff.healthyAfterMs) {
      this.failures = 0;
    }
    const delay = Math.min(backoff.initialMs * 2 ** this.failures, backoff.maxMs);
    this.failures += 1;
    log(`sidecar ${reason}; starting it again in ${delay} ms`);
    this.setState({ kind: "down", reason, retryInMs: delay });
    this.restartTimer = setTimeout(() => this.launch(), delay);
  }

  private detach(): void {
    this.connection?.dispose();
    this.connection = undefined;
    this.connecting = undefined;
    this.child = undefined;
  }

  private clearRestartTimer(): void {
    if (this.restartTimer !== undefined) {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
    }
  }

  private setState(state: SidecarState): void {
    this.currentState = state;
    this.stateEmitter.fire(state);
  }
}

/** Whether `err` means the connection went away rather than the sidecar answering. */
function isConnectionLoss(err: unknown): boolean {
  if (err instanceof ConnectionError) {
    return true;
  }
  return err instanceof ResponseError && err.code === ErrorCodes.PendingResponseRejected;
}

function spawnFailure(command: string, err: Error & { code?: string }): string {
  if (err.code === "ENOENT") {
    return `could not start '${command}': not found (set switchboard.path)`;
  }
  if (err.code === "EACCES") {
    return `could not start '${command}': not executable`;
  }
  return `could not start '${command}': ${err.message}`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Calls `log` once per line of `stream`, keeping a partial line until its end arrives. */
function forwardLines(stream: NodeJS.ReadableStream | null, log: (line: string) => void): void {
  if (stream === null) {
    return;
  }
  let pending = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    pending += chunk;
    const lines = pending.split(/\r?\n/);
    pending = lines.pop() ?? "";
    for (const line of lines) {
      log(line);
    }
  });
  stream.on("end", () => {
    if (pending.length > 0) {
      log(pending);
      pending = "";
    }
  });
}

/** Resolves true once `child` has exited or failed to start, or false after `ms`. */
function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve(true);
  }
  return new Promise((resolve) => {
    const done = (exited: boolean): void => {
      clearTimeout(timer);
      child.off("exit", onExit);
      child.off("error", onExit);
      resolve(exited);
    };
    const onExit = (): void => done(true);
    const timer = setTimeout(() => done(false), ms);
    // A process that never started reports `error` and no `exit`.
    child.once("exit", onExit);
    child.once("error", onExit);
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timed out")), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

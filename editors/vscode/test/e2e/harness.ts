/**
 * The end-to-end scene: a real `fake-anthropic` on 127.0.0.1, a scratch HOME and
 * SWITCHBOARD_HOME, logins made the way `claude /login` leaves them, the real `switchboard`
 * CLI to set things up, and the extension's own client module talking to the real sidecar.
 *
 * Nothing here imitates the sidecar: every answer a test checks comes from the binary named
 * by SWITCHBOARD_BIN (default `<repo>/target/debug/switchboard`).
 */

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { createInterface } from "node:readline";

import { SwitchboardClient } from "../../src/client";

const repo = path.resolve(__dirname, "..", "..", "..", "..");

function binary(variable: string, name: string): string {
  const file = process.env[variable] ?? path.join(repo, "target", "debug", name);
  if (!existsSync(file)) {
    throw new Error(
      `${file} is missing: build it with 'cargo build -p switchboard -p switchboard-tests' ` +
        `or set ${variable}`,
    );
  }
  return file;
}

export const switchboardBin = (): string => binary("SWITCHBOARD_BIN", "switchboard");
export const fakeAnthropicBin = (): string => binary("FAKE_ANTHROPIC_BIN", "fake-anthropic");

/** A running `fake-anthropic`, reached through its control API. */
export class FakeAnthropic {
  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
    readonly log: string[],
  ) {}

  static async start(): Promise<FakeAnthropic> {
    const child = spawn(fakeAnthropicBin(), ["--listen", "127.0.0.1:0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const log: string[] = [];
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => log.push(chunk));
    const lines = createInterface({ input: child.stdout });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("fake-anthropic did not start")), 10_000);
      child.once("exit", (code) => reject(new Error(`fake-anthropic exited with ${code}`)));
      lines.once("line", (line) => {
        clearTimeout(timer);
        const match = /^listening on (http:\/\/\S+)$/.exec(line.trim());
        if (match === null) {
          reject(new Error(`unexpected first line from fake-anthropic: ${line}`));
        } else {
          resolve(match[1]);
        }
      });
    });
    return new FakeAnthropic(url, child, log);
  }

  async control<T>(method: string, route: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.url}/_control${route}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`${method} /_control${route}: ${response.status} ${text}`);
    }
    return JSON.parse(text) as T;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.kill("SIGTERM");
      await exited;
    }
  }
}

interface AccountIds {
  accountUuid: string;
  organizationUuid: string;
}

interface MintedLogin {
  lineage: string;
  accessToken: string;
  refreshToken: string;
  expiresAt: number;
  scopes: string[];
  subscriptionType: string | null;
  rateLimitTier: string | null;
}

export interface Identity {
  email: string;
  organizationName: string;
}

export interface LoggedIn extends AccountIds, Identity {
  lineage: string;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** One test's world: its own HOME, vault and environment, sharing a fake service. */
export class Scene {
  readonly clients: SwitchboardClient[] = [];
  private ownsFake = false;

  private constructor(
    readonly fake: FakeAnthropic,
    readonly root: string,
    readonly home: string,
    readonly env: NodeJS.ProcessEnv,
  ) {}

  /** A scene with its own fake service, so settings and faults never leak between tests. */
  static async start(): Promise<Scene> {
    return Scene.create(await FakeAnthropic.start(), true);
  }

  static async create(fake: FakeAnthropic, ownsFake = false): Promise<Scene> {
    const root = await mkdtemp(path.join(tmpdir(), "switchboard-vscode-e2e-"));
    const home = path.join(root, "home");
    await mkdir(home, { recursive: true, mode: 0o700 });
    // A clean environment: nothing from the developer's own Claude setup may leak in, and no
    // variable that would shadow the stored login.
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: home,
      SWITCHBOARD_HOME: path.join(root, "vault"),
      SWITCHBOARD_TOKEN_URL: `${fake.url}/v1/oauth/token`,
      SWITCHBOARD_API_BASE: fake.url,
      RUST_LOG: "switchboard=debug",
    };
    const scene = new Scene(fake, root, home, env);
    scene.ownsFake = ownsFake;
    return scene;
  }

  get claudeDir(): string {
    return path.join(this.home, ".claude");
  }

  get credentialsFile(): string {
    return path.join(this.claudeDir, ".credentials.json");
  }

  get globalConfig(): string {
    return path.join(this.home, ".claude.json");
  }

  /**
   * Leaves behind what `claude /login` with `who` would: a fresh lineage from the fake service
   * in the live store and the matching `oauthAccount`.
   */
  async login(who: Identity): Promise<LoggedIn> {
    const ids = await this.fake.control<AccountIds>("POST", "/accounts", who);
    const login = await this.fake.control<MintedLogin>("POST", "/logins", ids);
    await mkdir(this.claudeDir, { recursive: true, mode: 0o700 });
    await chmod(this.claudeDir, 0o700);
    const credentials = {
      claudeAiOauth: {
        accessToken: login.accessToken,
        refreshToken: login.refreshToken,
        expiresAt: login.expiresAt,
        scopes: login.scopes,
        subscriptionType: login.subscriptionType,
        rateLimitTier: login.rateLimitTier,
      },
    };
    await writeFile(this.credentialsFile, JSON.stringify(credentials), { mode: 0o600 });
    await chmod(this.credentialsFile, 0o600);
    const config = {
      oauthAccount: {
        accountUuid: ids.accountUuid,
        emailAddress: who.email,
        organizationUuid: ids.organizationUuid,
        organizationName: who.organizationName,
      },
    };
    await writeFile(this.globalConfig, JSON.stringify(config), { mode: 0o600 });
    return { ...ids, ...who, lineage: login.lineage };
  }

  /** Runs the real `switchboard` CLI in this scene. */
  cli(...args: string[]): Promise<CliResult> {
    return new Promise((resolve) => {
      execFile(switchboardBin(), args, { env: this.env }, (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Runs the CLI and fails the test with its stderr when it does not succeed. */
  async cliOk(...args: string[]): Promise<string> {
    const result = await this.cli(...args);
    if (result.code !== 0) {
      throw new Error(`switchboard ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
    }
    return result.stdout;
  }

  /** Logs in as each identity and adds it under its alias, the documented way. */
  async addAccounts(accounts: Record<string, Identity>): Promise<Record<string, LoggedIn>> {
    const added: Record<string, LoggedIn> = {};
    for (const [alias, who] of Object.entries(accounts)) {
      added[alias] = await this.login(who);
      await this.cliOk("add", alias);
    }
    return added;
  }

  /** The extension's client, started against the real sidecar in this scene. */
  startClient(log: string[] = []): SwitchboardClient {
    const client = new SwitchboardClient({
      command: switchboardBin(),
      env: this.env,
      log: (line) => log.push(line),
    });
    this.clients.push(client);
    client.start();
    return client;
  }

  async dispose(): Promise<void> {
    await Promise.all(this.clients.map((client) => client.stop()));
    if (this.ownsFake) {
      await this.fake.stop();
    }
    await rm(this.root, { recursive: true, force: true });
  }
}

export const WORK: Identity = { email: "ada@example.com", organizationName: "Example Corp" };
export const HOME_ACCOUNT: Identity = {
  email: "ada@home.example",
  organizationName: "Ada's Individual Org",
};
export const THIRD: Identity = { email: "new@example.com", organizationName: "New Org" };

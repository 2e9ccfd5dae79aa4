import { beforeEach, describe, expect, it } from "vitest";

import { SidecarUnavailable, type AccountsApi } from "../../src/client";
import { Commands, statusMessage, type InputOptions, type Severity, type Ui } from "../../src/commands";
import type { AccountPickItem } from "../../src/picks";
import type { Account, ListResult, RemoveResult, StatusResult, UseResult } from "../../src/protocol";
import { account, home, list, MINUTE, NOW, sidecarError, unmanaged, useResult } from "./fixtures";

interface Shown {
  severity: Severity;
  message: string;
  modal: boolean;
  detail: string | undefined;
  actions: string[];
}

/** An account API whose answers each test sets, recording every call. */
class FakeApi implements AccountsApi {
  calls: string[] = [];
  listAnswer: () => Promise<ListResult> = () => Promise.resolve(list());
  useAnswer: (alias: string) => Promise<UseResult> = () => Promise.resolve(useResult());
  addAnswer: (alias: string) => Promise<Account> = (alias) =>
    Promise.resolve(home({ alias, active: true }));
  removeAnswer: (alias: string) => Promise<RemoveResult> = (alias) =>
    Promise.resolve({ removed: alias });
  statusAnswer: () => Promise<StatusResult> = () => Promise.resolve(status());

  list(): Promise<ListResult> {
    this.calls.push("list");
    return this.listAnswer();
  }
  status(params?: object): Promise<StatusResult> {
    this.calls.push(`status ${JSON.stringify(params)}`);
    return this.statusAnswer();
  }
  use(alias: string): Promise<UseResult> {
    this.calls.push(`use ${alias}`);
    return this.useAnswer(alias);
  }
  add(alias: string): Promise<Account> {
    this.calls.push(`add ${alias}`);
    return this.addAnswer(alias);
  }
  remove(alias: string): Promise<RemoveResult> {
    this.calls.push(`remove ${alias}`);
    return this.removeAnswer(alias);
  }
}

/** A UI that records what it shows and answers from scripts. */
class FakeUi implements Ui {
  shown: Shown[] = [];
  picks: AccountPickItem[][] = [];
  inputs: InputOptions[] = [];
  executed: string[] = [];
  progress: string[] = [];
  logShown = 0;
  claudeInstalled = false;
  pickAnswer: (items: AccountPickItem[]) => AccountPickItem | undefined = () => undefined;
  inputAnswer: (options: InputOptions) => string | undefined = () => undefined;
  messageAnswers: Array<string | undefined> = [];

  showQuickPick(items: AccountPickItem[]): Promise<AccountPickItem | undefined> {
    this.picks.push(items);
    return Promise.resolve(this.pickAnswer(items));
  }
  showInputBox(options: InputOptions): Promise<string | undefined> {
    this.inputs.push(options);
    return Promise.resolve(this.inputAnswer(options));
  }
  showMessage(
    severity: Severity,
    message: string,
    options: { modal?: boolean; detail?: string },
    ...actions: string[]
  ): Promise<string | undefined> {
    this.shown.push({
      severity,
      message,
      modal: options.modal ?? false,
      detail: options.detail,
      actions,
    });
    return Promise.resolve(this.messageAnswers.shift());
  }
  withProgress<T>(title: string, task: () => Promise<T>): Promise<T> {
    this.progress.push(title);
    return task();
  }
  executeCommand(command: string): Promise<unknown> {
    this.executed.push(command);
    return Promise.resolve(undefined);
  }
  isClaudeExtensionInstalled(): boolean {
    return this.claudeInstalled;
  }
  showLog(): void {
    this.logShown += 1;
  }
}

function status(overrides: Partial<StatusResult> = {}): StatusResult {
  return {
    account: account({ active: true }),
    store: { kind: "file", path: "/home/ada/.claude/.credentials.json" },
    configDir: "/home/ada/.claude",
    globalConfig: "/home/ada/.claude.json",
    shadowedBy: [],
    unmanaged: null,
    ...overrides,
  };
}

const pickAlias = (alias: string) => (items: AccountPickItem[]) =>
  items.find((item) => item.label === alias);

let api: FakeApi;
let ui: FakeUi;
let restarts: number;
let commands: Commands;

beforeEach(() => {
  api = new FakeApi();
  ui = new FakeUi();
  restarts = 0;
  commands = new Commands(
    api,
    {
      restart: () => {
        restarts += 1;
        return Promise.resolve();
      },
    },
    ui,
    () => NOW,
  );
});

describe("switchAccount", () => {
  it("offers every account, marks the active one, and switches to the pick", async () => {
    ui.pickAnswer = pickAlias("home");
    await commands.switchAccount();
    expect(ui.picks[0].map((item) => item.label)).toEqual(["home", "work"]);
    expect(ui.picks[0][1].detail).toContain("$(check) active");
    expect(ui.picks[0][0].detail).not.toContain("active");
    expect(api.calls).toEqual(["list", "use home"]);
    expect(ui.shown).toHaveLength(1);
    expect(ui.shown[0].severity).toBe("info");
    expect(ui.shown[0].message).toBe(
      "Switched to 'home' (ada@home.example · Ada's Individual Org). " +
        "Running Claude Code sessions switch on their next request.",
    );
    expect(ui.shown[0].actions).toEqual([]);
  });

  it("switches straight to an alias given as the command's argument", async () => {
    await commands.switchAccount("home");
    expect(api.calls).toEqual(["use home"]);
    expect(ui.picks).toHaveLength(0);
  });

  it("does nothing when the pick is dismissed", async () => {
    await commands.switchAccount();
    expect(api.calls).toEqual(["list"]);
    expect(ui.shown).toHaveLength(0);
  });

  it("does not switch to the account that is already active", async () => {
    ui.pickAnswer = pickAlias("work");
    await commands.switchAccount();
    expect(api.calls).toEqual(["list"]);
    expect(ui.shown[0].message).toBe("'work' is already active.");
  });

  it("offers to add an account when there is none", async () => {
    api.listAnswer = () => Promise.resolve(list({ active: null, accounts: [], unmanaged: unmanaged() }));
    ui.messageAnswers = ["Add Account"];
    ui.inputAnswer = () => "new";
    await commands.switchAccount();
    expect(ui.shown[0].actions).toEqual(["Add Account"]);
    expect(api.calls).toEqual(["list", "list", "add new"]);
  });

  it("explains a needsLogin refusal and offers to add the account again under the same alias", async () => {
    ui.pickAnswer = pickAlias("home");
    api.useAnswer = () =>
      Promise.reject(
        sidecarError(
          "needsLogin",
          "the login of 'home' has expired for good: run `claude /login` with that account, then `switchboard add home`",
          { alias: "home" },
        ),
      );
    ui.messageAnswers = ["Add Account"];
    ui.inputAnswer = (options) => options.value;
    await commands.switchAccount();
    expect(ui.shown[0].severity).toBe("warning");
    expect(ui.shown[0].message).toBe(
      "The login of 'home' has expired for good. Run `claude /login` with that account, " +
        "then add it again as home.",
    );
    expect(ui.inputs[0].value).toBe("home");
    expect(api.calls).toEqual(["list", "use home", "list", "add home"]);
  });

  it("explains an unknown alias", async () => {
    api.useAnswer = () =>
      Promise.reject(sidecarError("unknownAccount", "no account is called 'nope'", { alias: "nope" }));
    await commands.switchAccount("nope");
    expect(ui.shown[0].severity).toBe("error");
    expect(ui.shown[0].message).toBe("No account is called 'nope'. Add it first.");
  });

  it("offers to try again when busy, and does so", async () => {
    let attempts = 0;
    api.useAnswer = () => {
      attempts += 1;
      return attempts === 1
        ? Promise.reject(sidecarError("busy", "another switch holds the locks", { retryAfterMs: 1500 }))
        : Promise.resolve(useResult());
    };
    ui.messageAnswers = ["Try Again"];
    await commands.switchAccount("home");
    expect(ui.shown[0].message).toBe(
      "Another switch or refresh is in progress; try again in 2 s; nothing changed.",
    );
    expect(ui.shown[0].actions).toContain("Try Again");
    expect(api.calls).toEqual(["use home", "use home"]);
    expect(ui.shown[1].message).toMatch(/^Switched to 'home'/);
  });

  it("says nothing changed when the network is down, and offers the log", async () => {
    api.useAnswer = () =>
      Promise.reject(sidecarError("network", "the token endpoint could not be reached"));
    ui.messageAnswers = ["Show Log"];
    await commands.switchAccount("home");
    expect(ui.shown[0].severity).toBe("error");
    expect(ui.shown[0].message).toContain("nothing changed");
    expect(ui.shown[0].actions).toEqual(["Try Again", "Show Log"]);
    expect(ui.logShown).toBe(1);
  });

  it("says the sidecar is down and offers to restart it", async () => {
    api.listAnswer = () => Promise.reject(new SidecarUnavailable("exited with code 1"));
    ui.messageAnswers = ["Restart Sidecar"];
    await commands.switchAccount();
    expect(ui.shown[0].message).toBe("The Switchboard sidecar is not running: exited with code 1.");
    expect(restarts).toBe(1);
  });

  it("words an error kind it does not know from the sidecar's message", async () => {
    api.useAnswer = () => Promise.reject(sidecarError("somethingNew", "the vault is on fire"));
    await commands.switchAccount("home");
    expect(ui.shown[0].message).toBe("Switchboard could not switch: the vault is on fire");
  });
});

describe("switchAccount with the Claude Code extension", () => {
  it("offers to open Claude after a switch its sessions follow on their own", async () => {
    ui.claudeInstalled = true;
    ui.messageAnswers = ["Open Claude"];
    await commands.switchAccount("home");
    expect(ui.shown[0].actions).toEqual(["Open Claude"]);
    expect(ui.executed).toEqual(["claude-vscode.focus"]);
  });

  it("warns when a variable shadows the login and offers a reload", async () => {
    ui.claudeInstalled = true;
    api.useAnswer = () =>
      Promise.resolve(
        useResult({
          shadowedBy: ["CLAUDE_CODE_OAUTH_TOKEN"],
          sessions: {
            follow: "restart",
            message:
              "running Claude Code sessions keep their own credentials until restarted without CLAUDE_CODE_OAUTH_TOKEN",
          },
        }),
      );
    ui.messageAnswers = ["Reload Window"];
    await commands.switchAccount("home");
    expect(ui.shown[0].severity).toBe("warning");
    expect(ui.shown[0].message).toBe(
      "Claude Code's stored login is now 'home' (ada@home.example · Ada's Individual Org), but " +
        "CLAUDE_CODE_OAUTH_TOKEN makes Claude ignore it. Running Claude Code sessions keep their " +
        "own credentials until restarted without CLAUDE_CODE_OAUTH_TOKEN.",
    );
    expect(ui.shown[0].actions).toEqual(["Open Claude", "Reload Window"]);
    expect(ui.executed).toEqual(["workbench.action.reloadWindow"]);
  });
});

describe("switchAccount when the follow-up fails", () => {
  it("never reports a switch that succeeded as failed when Claude cannot be opened", async () => {
    ui.claudeInstalled = true;
    ui.messageAnswers = ["Open Claude"];
    ui.executeCommand = (command: string) => {
      ui.executed.push(command);
      return Promise.reject(new Error("command 'claude-vscode.focus' not found"));
    };
    await commands.switchAccount("home");
    expect(api.calls).toEqual(["use home"]);
    expect(ui.shown.map((shown) => shown.message)).not.toContainEqual(
      expect.stringMatching(/could not switch/),
    );
    expect(ui.shown[1].severity).toBe("warning");
    expect(ui.shown[1].message).toBe(
      "Switched to 'home', but Open Claude failed: command 'claude-vscode.focus' not found",
    );
  });
});

describe("every command while the sidecar is down", () => {
  const down = (): Promise<never> => Promise.reject(new SidecarUnavailable("exited with code 1"));
  const cases: Array<[string, () => Promise<void>]> = [
    ["switch from the pick list", () => commands.switchAccount()],
    ["switch to a named account", () => commands.switchAccount("home")],
    ["add", () => commands.addAccount()],
    ["remove", () => commands.removeAccount()],
    ["status", () => commands.showStatus()],
  ];
  for (const [name, run] of cases) {
    it(`${name}: says so, offers the log and a restart, and restarts on request`, async () => {
      api.listAnswer = down;
      api.useAnswer = down;
      api.statusAnswer = down;
      ui.messageAnswers = ["Restart Sidecar"];
      await run();
      expect(ui.shown).toHaveLength(1);
      expect(ui.shown[0]).toMatchObject({
        severity: "error",
        message: "The Switchboard sidecar is not running: exited with code 1.",
        actions: ["Show Log", "Restart Sidecar"],
      });
      expect(restarts).toBe(1);
    });
  }

  it("add and remove: report a sidecar that died after the list", async () => {
    ui.inputAnswer = () => "third";
    api.addAnswer = down;
    await commands.addAccount();
    ui.pickAnswer = pickAlias("home");
    ui.messageAnswers = ["Remove"];
    api.removeAnswer = down;
    await commands.removeAccount();
    const errors = ui.shown.filter((shown) => shown.severity === "error");
    expect(errors.map((shown) => shown.message)).toEqual([
      "The Switchboard sidecar is not running: exited with code 1.",
      "The Switchboard sidecar is not running: exited with code 1.",
    ]);
  });
});

describe("errors nobody planned for", () => {
  it("are shown with the operation and the log, never thrown at VS Code", async () => {
    const broken = (): Promise<never> => Promise.reject(new Error("socket hang up"));
    api.statusAnswer = broken;
    await commands.showStatus();
    api.listAnswer = broken;
    await commands.removeAccount();
    await commands.addAccount();
    expect(ui.shown.map((shown) => [shown.message, shown.actions])).toEqual([
      ["Switchboard could not check the status: socket hang up", ["Show Log"]],
      ["Switchboard could not remove the account: socket hang up", ["Show Log"]],
      ["Switchboard could not add the account: socket hang up", ["Show Log"]],
    ]);
  });
});

describe("addAccount", () => {
  it("names the unmanaged login it will add and adds it under the typed alias", async () => {
    api.listAnswer = () => Promise.resolve(list({ active: null, unmanaged: unmanaged() }));
    ui.inputAnswer = () => " new ";
    api.addAnswer = (alias) =>
      Promise.resolve(account({ alias, email: "new@example.com", organizationName: "New Org" }));
    await commands.addAccount();
    expect(ui.inputs[0].prompt).toContain("new@example.com · New Org");
    expect(api.calls).toEqual(["list", "add new"]);
    expect(ui.shown[0].message).toBe("Added 'new' (new@example.com · New Org).");
  });

  it("checks the alias as the person types", async () => {
    await commands.addAccount();
    const validate = ui.inputs[0].validateInput;
    expect(validate("work")).toBeUndefined();
    expect(validate("-")).toMatch(/previous account/);
    expect(validate("has space")).toMatch(/letters, digits/);
    expect(validate("")).toMatch(/at least one/);
    expect(validate("x".repeat(65))).toMatch(/up to 64/);
  });

  it("reminds how to add a second account when the current login is managed", async () => {
    await commands.addAccount();
    expect(ui.inputs[0].prompt).toContain("managed as 'work'");
    expect(ui.inputs[0].prompt).toContain("claude /login");
  });

  it("does nothing when the input box is dismissed", async () => {
    await commands.addAccount();
    expect(api.calls).toEqual(["list"]);
  });

  it("explains noLogin, aliasTaken and alreadyManaged", async () => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ["noLogin", {}, "Claude Code has no usable login to add"],
      ["aliasTaken", { alias: "work" }, "Another account is already called 'work'"],
      ["alreadyManaged", { alias: "work" }, "This login is already managed as 'work'"],
    ];
    for (const [kind, data, expected] of cases) {
      ui.shown = [];
      ui.inputAnswer = () => "home";
      api.addAnswer = () => Promise.reject(sidecarError(kind, "refused", data));
      await commands.addAccount();
      expect(ui.shown[0].message).toContain(expected);
    }
  });
});

describe("removeAccount", () => {
  it("removes the picked account after confirmation", async () => {
    ui.pickAnswer = pickAlias("home");
    ui.messageAnswers = ["Remove"];
    await commands.removeAccount();
    expect(ui.shown[0].modal).toBe(true);
    expect(ui.shown[0].message).toBe("Remove 'home' from Switchboard?");
    expect(ui.shown[0].detail).not.toContain("stays logged in");
    expect(api.calls).toEqual(["list", "remove home"]);
    expect(ui.shown[1].message).toBe("Removed 'home'.");
  });

  it("says the login stays when removing the active account", async () => {
    ui.pickAnswer = pickAlias("work");
    await commands.removeAccount();
    expect(ui.shown[0].detail).toContain("Claude Code stays logged in");
  });

  it("keeps the account when the confirmation is dismissed", async () => {
    ui.pickAnswer = pickAlias("home");
    await commands.removeAccount();
    expect(api.calls).toEqual(["list"]);
  });

  it("explains an account that vanished meanwhile", async () => {
    ui.pickAnswer = pickAlias("home");
    ui.messageAnswers = ["Remove"];
    api.removeAnswer = () =>
      Promise.reject(sidecarError("unknownAccount", "no account is called 'home'", { alias: "home" }));
    await commands.removeAccount();
    expect(ui.shown[1].message).toBe("No account is called 'home'. Add it first.");
  });
});

describe("showStatus", () => {
  it("validates the active account and shows its details", async () => {
    await commands.showStatus();
    expect(api.calls).toEqual(['status {"validate":true}']);
    const shown = ui.shown[0];
    expect(shown.modal).toBe(true);
    expect(shown.severity).toBe("info");
    expect(shown.message).toBe("Claude Code uses 'work': signed in");
    expect(shown.detail).toContain("ada@example.com · Example Corp");
    expect(shown.detail).toContain("Access token expires in 2 h 5 min");
    expect(shown.detail).toContain("Last validated: 5 min ago");
    expect(shown.detail).toContain("Refresh token fingerprint: 3fa9c2d1");
    expect(shown.detail).toContain("Live store: /home/ada/.claude/.credentials.json");
  });

  it("warns about needsLogin and shadowing", () => {
    const view = statusMessage(
      status({
        account: account({ active: true, state: "needsLogin", expiresAt: NOW - MINUTE }),
        shadowedBy: ["ANTHROPIC_API_KEY"],
        store: { kind: "keychain", service: "Claude Code-credentials", account: "ada" },
      }),
      NOW,
    );
    expect(view.severity).toBe("warning");
    expect(view.detail).toContain("then add it again as work");
    expect(view.detail).toContain("because of ANTHROPIC_API_KEY");
    expect(view.detail).toContain("Keychain item Claude Code-credentials (ada)");
  });

  it("describes an unmanaged login and the absence of any", () => {
    expect(statusMessage(status({ account: null, unmanaged: unmanaged() }), NOW).message).toBe(
      "Claude Code's login is not managed by Switchboard",
    );
    expect(statusMessage(status({ account: null }), NOW).message).toBe("Claude Code has no login");
  });

  it("reports a validation that could not reach the network", async () => {
    api.statusAnswer = () => Promise.reject(sidecarError("network", "profile endpoint unreachable"));
    await commands.showStatus();
    expect(ui.shown[0].message).toContain("Could not reach Anthropic's login service");
  });
});

describe("restartSidecar and showLog", () => {
  it("restart the sidecar and open the log", async () => {
    await commands.restartSidecar();
    commands.showLog();
    expect(restarts).toBe(1);
    expect(ui.logShown).toBe(1);
  });
});

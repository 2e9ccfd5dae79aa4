/**
 * A recording stand-in for the `vscode` module, aliased in by the unit test config. It holds
 * just the API the extension touches and lets a test see what was registered and shown, and
 * script what the person answers.
 */

export class ThemeColor {
  constructor(readonly id: string) {}
}

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}

export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}

export interface FakeStatusBarItem {
  id: string;
  alignment: StatusBarAlignment;
  priority: number;
  name: string | undefined;
  text: string;
  tooltip: string | undefined;
  command: string | undefined;
  backgroundColor: ThemeColor | undefined;
  visible: boolean;
  disposed: boolean;
  show(): void;
  hide(): void;
  dispose(): void;
}

export interface FakeOutputChannel {
  name: string;
  lines: string[];
  shown: number;
  appendLine(line: string): void;
  show(preserveFocus?: boolean): void;
  dispose(): void;
}

export interface ShownMessage {
  severity: "info" | "warning" | "error";
  message: string;
  options: unknown;
  items: string[];
}

type Handler = (...args: unknown[]) => unknown;

/** Everything the fake recorded, and the answers a test scripts. */
export const fake = {
  statusBarItems: [] as FakeStatusBarItem[],
  outputChannels: [] as FakeOutputChannel[],
  commands: new Map<string, Handler>(),
  executed: [] as string[],
  messages: [] as ShownMessage[],
  settings: {} as Record<string, unknown>,
  installedExtensions: new Set<string>(),
  answerMessage: (_message: ShownMessage): string | undefined => undefined,
  configurationListeners: [] as Handler[],
  reset(): void {
    this.statusBarItems = [];
    this.outputChannels = [];
    this.commands = new Map();
    this.executed = [];
    this.messages = [];
    this.settings = {};
    this.installedExtensions = new Set();
    this.answerMessage = () => undefined;
    this.configurationListeners = [];
  },
};

function disposable(onDispose: () => void = () => undefined): { dispose(): void } {
  return { dispose: onDispose };
}

function message(severity: ShownMessage["severity"]) {
  return (text: string, ...rest: unknown[]): Promise<string | undefined> => {
    const options = typeof rest[0] === "object" && rest[0] !== null ? rest.shift() : {};
    const shown = { severity, message: text, options, items: rest as string[] };
    fake.messages.push(shown);
    return Promise.resolve(fake.answerMessage(shown));
  };
}

export const window = {
  createOutputChannel(name: string): FakeOutputChannel {
    const channel: FakeOutputChannel = {
      name,
      lines: [],
      shown: 0,
      appendLine(line) {
        this.lines.push(line);
      },
      show() {
        this.shown += 1;
      },
      dispose() {},
    };
    fake.outputChannels.push(channel);
    return channel;
  },
  createStatusBarItem(id: string, alignment: StatusBarAlignment, priority: number) {
    const item: FakeStatusBarItem = {
      id,
      alignment,
      priority,
      name: undefined,
      text: "",
      tooltip: undefined,
      command: undefined,
      backgroundColor: undefined,
      visible: false,
      disposed: false,
      show() {
        this.visible = true;
      },
      hide() {
        this.visible = false;
      },
      dispose() {
        this.disposed = true;
      },
    };
    fake.statusBarItems.push(item);
    return item;
  },
  showInformationMessage: message("info"),
  showWarningMessage: message("warning"),
  showErrorMessage: message("error"),
  showQuickPick: (): Promise<undefined> => Promise.resolve(undefined),
  showInputBox: (): Promise<undefined> => Promise.resolve(undefined),
  withProgress<T>(_options: unknown, task: () => Promise<T>): Promise<T> {
    return task();
  },
};

export const commands = {
  registerCommand(id: string, handler: Handler) {
    if (fake.commands.has(id)) {
      throw new Error(`command '${id}' already exists`);
    }
    fake.commands.set(id, handler);
    return disposable(() => fake.commands.delete(id));
  },
  executeCommand(id: string, ...args: unknown[]): Promise<unknown> {
    fake.executed.push(id);
    const handler = fake.commands.get(id);
    return Promise.resolve(handler?.(...args));
  },
};

export const workspace = {
  getConfiguration(section: string) {
    return {
      get<T>(key: string, fallback?: T): T | undefined {
        const value = fake.settings[`${section}.${key}`];
        return value === undefined ? fallback : (value as T);
      },
    };
  },
  onDidChangeConfiguration(listener: Handler) {
    fake.configurationListeners.push(listener);
    return disposable();
  },
};

export const extensions = {
  getExtension(id: string): { id: string } | undefined {
    return fake.installedExtensions.has(id) ? { id } : undefined;
  },
};

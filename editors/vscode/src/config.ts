/**
 * Turns the extension's settings into how the sidecar is started: which executable, and with
 * which environment.
 *
 * The rule it keeps: an explicit `switchboard.path` always wins; otherwise a binary shipped
 * inside the extension is preferred to whatever `switchboard` happens to be on PATH, so a
 * packaged extension talks to the sidecar it was built and tested with.
 */

import * as path from "node:path";

/** The values `switchboard.logLevel` offers; each becomes a `RUST_LOG` filter. */
export const LOG_LEVELS = ["off", "error", "warn", "info", "debug", "trace"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where a binary bundled with the extension lives, relative to the extension's folder. */
export function bundledBinary(extensionPath: string, platform: NodeJS.Platform): string {
  const name = platform === "win32" ? "switchboard.exe" : "switchboard";
  return path.join(extensionPath, "bin", name);
}

/**
 * The executable to start: `setting` when it is not blank, else the bundled binary when
 * `exists` says it is there, else plain `switchboard` for the OS to find on PATH.
 */
export function resolveCommand(
  setting: string | undefined,
  extensionPath: string,
  exists: (file: string) => boolean,
  platform: NodeJS.Platform = process.platform,
): string {
  const configured = setting?.trim();
  if (configured !== undefined && configured.length > 0) {
    return configured;
  }
  const bundled = bundledBinary(extensionPath, platform);
  return exists(bundled) ? bundled : "switchboard";
}

/** The `RUST_LOG` filter for a `switchboard.logLevel` value; unknown values mean `info`. */
export function rustLogFilter(level: string | undefined): string {
  const known = (LOG_LEVELS as readonly string[]).includes(level ?? "") ? level : "info";
  return `switchboard=${known}`;
}

/** The sidecar's environment: the editor's own, with `RUST_LOG` set from the setting. */
export function sidecarEnv(base: NodeJS.ProcessEnv, level: string | undefined): NodeJS.ProcessEnv {
  return { ...base, RUST_LOG: rustLogFilter(level) };
}

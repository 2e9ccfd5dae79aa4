import * as path from "node:path";

import { describe, expect, it } from "vitest";

import { resolveCommand, rustLogFilter, sidecarEnv } from "../../src/config";

const ext = "/ext/switchboard-0.1.0";

describe("resolveCommand", () => {
  it("prefers the switchboard.path setting", () => {
    expect(resolveCommand(" /opt/sb/switchboard ", ext, () => true, "linux")).toBe("/opt/sb/switchboard");
  });

  it("falls back to the bundled binary when it is there", () => {
    const seen: string[] = [];
    const exists = (file: string): boolean => {
      seen.push(file);
      return true;
    };
    expect(resolveCommand("", ext, exists, "linux")).toBe(path.join(ext, "bin", "switchboard"));
    expect(resolveCommand(undefined, ext, exists, "win32")).toBe(path.join(ext, "bin", "switchboard.exe"));
    expect(seen).toHaveLength(2);
  });

  it("falls back to PATH when nothing is bundled", () => {
    expect(resolveCommand("   ", ext, () => false, "linux")).toBe("switchboard");
  });
});

describe("sidecar environment", () => {
  it("sets RUST_LOG from the log level and keeps the rest", () => {
    expect(rustLogFilter("debug")).toBe("switchboard=debug");
    expect(rustLogFilter("loud")).toBe("switchboard=info");
    expect(rustLogFilter(undefined)).toBe("switchboard=info");
    const env = sidecarEnv({ HOME: "/home/ada", RUST_LOG: "trace" }, "warn");
    expect(env).toEqual({ HOME: "/home/ada", RUST_LOG: "switchboard=warn" });
  });
});

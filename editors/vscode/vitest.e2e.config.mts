// End-to-end tests: the extension's client module against the real `switchboard` binary and
// the real `fake-anthropic` service. No `vscode` module is involved.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "e2e",
    include: ["test/e2e/**/*.test.ts"],
    environment: "node",
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The suites start real processes; one file at a time keeps a 2-core machine responsive.
    fileParallelism: false,
  },
});

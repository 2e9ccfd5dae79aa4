// Unit tests: plain modules and the extension's activation, with `vscode` replaced by a
// recording stand-in so nothing here needs an editor.
import { fileURLToPath } from "node:url";

import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    alias: {
      vscode: fileURLToPath(new URL("./test/unit/vscode.ts", import.meta.url)),
    },
  },
  test: {
    name: "unit",
    include: ["test/unit/**/*.test.ts"],
    environment: "node",
    restoreMocks: true,
  },
});

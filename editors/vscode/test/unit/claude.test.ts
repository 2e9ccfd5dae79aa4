import { describe, expect, it } from "vitest";

import { switchFollowUp } from "../../src/claude";
import { useResult } from "./fixtures";

describe("switchFollowUp", () => {
  it("passes on the sidecar's word on when sessions follow, with no buttons without Claude", () => {
    const followUp = switchFollowUp(
      useResult({
        sessions: { follow: "within30Seconds", message: "running Claude Code sessions switch within 30 seconds" },
      }),
      false,
    );
    expect(followUp.severity).toBe("info");
    expect(followUp.message).toMatch(/Running Claude Code sessions switch within 30 seconds\.$/);
    expect(followUp.actions).toEqual([]);
  });

  it("offers Open Claude when the Claude extension is installed", () => {
    const followUp = switchFollowUp(useResult(), true);
    expect(followUp.actions.map((action) => action.command)).toEqual(["claude-vscode.focus"]);
  });

  it("warns and offers a reload when sessions follow only after a restart", () => {
    const followUp = switchFollowUp(
      useResult({ sessions: { follow: "restart", message: "restart running sessions to switch." } }),
      true,
    );
    expect(followUp.severity).toBe("warning");
    expect(followUp.message).toMatch(/^Switched to 'home'.*Restart running sessions to switch\.$/);
    expect(followUp.actions.map((action) => action.title)).toEqual(["Open Claude", "Reload Window"]);
  });

  it("never claims the switch took effect when the login is shadowed", () => {
    const followUp = switchFollowUp(
      useResult({
        shadowedBy: ["ANTHROPIC_AUTH_TOKEN", "apiKeyHelper"],
        sessions: { follow: "restart", message: "sessions keep their own credentials" },
      }),
      false,
    );
    expect(followUp.severity).toBe("warning");
    expect(followUp.message).not.toMatch(/^Switched/);
    expect(followUp.message).toContain("ANTHROPIC_AUTH_TOKEN, apiKeyHelper makes Claude ignore it");
  });
});

import { describe, expect, it } from "vitest";

import { accountPickItems } from "../../src/picks";
import { account, home, list } from "./fixtures";

describe("accountPickItems", () => {
  it("labels by alias, describes by email and organization, details state and subscription", () => {
    const items = accountPickItems(
      list({
        accounts: [
          home({ state: "expired" }),
          account({ active: true }),
          account({ alias: "bare", email: null, organizationName: null, subscriptionType: null, state: "needsLogin" }),
        ],
      }),
    );
    expect(items.map(({ label, description, detail }) => ({ label, description, detail }))).toEqual([
      {
        label: "home",
        description: "ada@home.example · Ada's Individual Org",
        detail: "token expired, refreshed on next use · pro",
      },
      { label: "work", description: "ada@example.com · Example Corp", detail: "$(check) active · signed in · max" },
      { label: "bare", description: "", detail: "needs a new login" },
    ]);
    expect(items[1].account.alias).toBe("work");
  });
});

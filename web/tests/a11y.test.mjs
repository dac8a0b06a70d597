// Accessibility: axe-core (from node_modules) run in the page on the sign-in page, a direct chat
// (with reactions, a reply, an edit, a deleted message and a mention; then with a message's
// actions, the emoji picker, the reply bar, the mention list and the inline editor open) with its
// profile panel open, a group with its members panel and the leave dialog, and the friends page;
// in the light and dark themes, on a desktop and a phone. Any "serious" or
// "critical" violation fails; "moderate" and "minor" ones are listed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { apiAs, base, browser, messages, setup, TIMEOUT } from "./harness.mjs";

const noConsoleErrors = setup();
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
const FAILING = new Set(["critical", "serious"]);

async function register(name) {
  const r = await fetch(`${base}/api/v1/auth/register`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: name, password: `password-${name}`, display_name: name }),
  });
  assert.ok(r.ok, `register ${name}: ${r.status}`);
}

let team;

/** Ann's world: a friend (bob) she chats with, a request from cid waiting, one she sent to dee. */
async function world() {
  for (const name of ["ann", "bob", "cid", "dee"]) await register(name);
  const [ann, bob, cid] = [await apiAs("ann"), await apiAs("bob"), await apiAs("cid")];
  const request = await bob("POST", "/friends/requests", { username: "ann" });
  await ann("POST", `/friends/requests/${request.id}/accept`);
  await cid("POST", "/friends/requests", { username: "ann" });
  await ann("POST", "/friends/requests", { username: "dee" });
  const me = await ann("GET", "/users/me");
  const chat = await bob("POST", "/chats", { kind: "direct", member_ids: [me.id] });
  const lines = ["hi ann!", "see **this**: https://example.com", "`code` and _more_", "a longer line of text to wrap on a phone, and then some"];
  const sent = [];
  for (const [i, content] of lines.entries()) sent.push(await (i % 2 ? ann : bob)("POST", `/chats/${chat.id}/messages`, { content }));
  // Changes: a reaction each, a reply, an edit, a deleted message, a mention.
  const at = (m) => `/chats/${chat.id}/messages/${m.id}`;
  await ann("PUT", `${at(sent[0])}/reactions/${encodeURIComponent("👍")}`);
  await bob("PUT", `${at(sent[0])}/reactions/${encodeURIComponent("🎉")}`);
  await bob("POST", `/chats/${chat.id}/messages`, { content: "on it, @ann", reply_to: sent[1].id });
  await ann("PATCH", at(sent[1]), { content: "see **this**: https://example.com (fixed)" });
  const oops = await bob("POST", `/chats/${chat.id}/messages`, { content: "oops" });
  await bob("DELETE", at(oops));
  team = await bob("POST", "/chats", { kind: "group", name: "team", member_ids: [me.id] });
  // A mention badge in the chat list (until the first visit to the group reads it).
  await bob("POST", `/chats/${team.id}/messages`, { content: "welcome, @ann" });
  return chat;
}

/** axe's violations on the page, as "impact rule: targets" lines. */
async function audit(page) {
  if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.map((n) => n.target.join(" ")) }));
  });
  return violations;
}

const report = [];
const found = [];

async function check(label, page) {
  // Transitions and the first paint settle before colours are measured.
  await page.waitForTimeout(100);
  const violations = await audit(page);
  const count = (impacts) => violations.filter((v) => impacts.includes(v.impact)).reduce((n, v) => n + v.targets.length, 0);
  report.push(`${label}: serious+critical ${count(["serious", "critical"])}, moderate ${count(["moderate"])}, minor ${count(["minor"])}`);
  for (const v of violations) {
    const line = `${label}: ${v.impact} ${v.id}: ${v.targets.join(" | ")}`;
    if (FAILING.has(v.impact)) found.push(line);
    else report.push(`  ${line}`);
  }
}

test("no serious or critical axe violations on the main screens, light and dark, desktop and phone", async () => {
  const chat = await world();
  for (const colorScheme of ["light", "dark"]) {
    for (const [size, viewport] of Object.entries(VIEWPORTS)) {
      // The server's CSP allows no inline script: axe goes in past it.
      const context = await browser.newContext({ viewport, colorScheme, bypassCSP: true });
      const page = await context.newPage();
      page.setDefaultTimeout(TIMEOUT);
      const at = `${colorScheme} ${size}`;
      await page.goto(base);
      await page.getByRole("button", { name: "Sign in" }).waitFor();
      await check(`sign-in (${at})`, page);
      await page.getByLabel("Username").fill("ann");
      await page.getByLabel("Password").fill("password-ann");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByTestId("me").waitFor({ state: "attached" });
      await page.goto(`${base}/chats/${chat.id}`);
      await messages(page, "a longer line").waitFor();
      await check(`chat (${at})`, page);
      // A message's actions and the emoji picker; the reply bar and the mention list; the editor.
      const mine = messages(page, "(fixed)").first();
      await mine.hover();
      await mine.getByRole("button", { name: "React" }).click();
      await page.getByTestId("emoji-picker").waitFor();
      await check(`chat + emoji picker (${at})`, page);
      await page.keyboard.press("Escape");
      await page.getByTestId("emoji-picker").waitFor({ state: "detached" });
      await mine.getByRole("button", { name: "Reply" }).click();
      await page.getByTestId("reply-bar").waitFor();
      await page.getByLabel("Message", { exact: true }).pressSequentially("@");
      await page.getByRole("listbox", { name: "People to mention" }).waitFor();
      await check(`chat + reply + mention list (${at})`, page);
      await page.keyboard.press("Escape");
      await page.keyboard.press("Escape");
      await page.getByTestId("reply-bar").waitFor({ state: "detached" });
      await mine.hover();
      await mine.getByRole("button", { name: "Edit" }).click();
      await page.getByLabel("Edit message").waitFor();
      await check(`chat + editor (${at})`, page);
      await page.keyboard.press("Escape");
      await page.getByLabel("Edit message").waitFor({ state: "detached" });
      // A direct chat: its panel is bob's profile.
      await page.getByRole("button", { name: "Profile" }).click();
      await page.getByRole("complementary", { name: "Profile" }).getByText("@bob").waitFor();
      await check(`chat + profile (${at})`, page);
      // A group: its members panel, and the question before leaving it.
      await page.goto(`${base}/chats/${team.id}`);
      await page.getByRole("button", { name: "Members" }).click();
      await page.getByRole("complementary", { name: "Members" }).getByText("@bob").waitFor();
      await check(`group + members (${at})`, page);
      await page.getByRole("button", { name: "Leave chat" }).click();
      await page.getByRole("alertdialog", { name: "Leave this chat?" }).waitFor();
      await check(`leave dialog (${at})`, page);
      await page.goto(`${base}/friends`);
      await page.getByTestId("friends").getByText("bob").waitFor();
      await page.getByText("Incoming requests").waitFor();
      await check(`friends (${at})`, page);
      await context.close();
    }
  }
  console.log(report.join("\n"));
  assert.equal(found.length, 0, `axe found serious or critical violations:\n${found.join("\n")}`);
});

noConsoleErrors();

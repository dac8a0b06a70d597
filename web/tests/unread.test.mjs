// Browser tests: the "New messages" line and "Jump to latest" in a chat, the unread count in the
// tab's title, and the time of a grouped message on hover.
import { test } from "node:test";
import assert from "node:assert/strict";
import { apiAs, base, messages, person, setup } from "./harness.mjs";

const noConsoleErrors = setup();

/** `other` (made here, through the API) befriends `name` and opens a direct chat with them;
 *  returns the chat and `other`'s API client. */
async function chatWith(name, other) {
  await fetch(`${base}/api/v1/auth/register`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: other, password: `password-${other}` }),
  });
  const [asMe, asOther] = [await apiAs(name), await apiAs(other)];
  const request = await asOther("POST", "/friends/requests", { username: name });
  await asMe("POST", `/friends/requests/${request.id}/accept`);
  const me = await asMe("GET", "/users/me");
  const chat = await asOther("POST", "/chats", { kind: "direct", member_ids: [me.id] });
  const say = (content) => asOther("POST", `/chats/${chat.id}/messages`, { content });
  return { chat, say };
}

const title = (page) => page.evaluate(() => document.title);
const waitTitle = (page, want) => page.waitForFunction((t) => document.title === t, want);

/** What the row after the "New messages" line says. */
const afterLine = (page) => page.getByTestId("new-messages").evaluate((li) => li.nextElementSibling?.textContent ?? "");

test("a chat opened with unread messages shows a 'New messages' line above the first; the tab title counts the others' unread", async () => {
  const { page, context } = await person("nia");
  const { chat, say } = await chatWith("nia", "oto");
  await say("old one");
  await page.goto(`${base}/chats/${chat.id}`);
  await messages(page, "old one").waitFor();
  // Everything was unread when it opened: the line is above the only message.
  assert.match(await afterLine(page), /old one/);
  assert.equal(await title(page), "Harmony", "the open chat does not count");
  await page.getByRole("button", { name: "Friends" }).click();
  await page.getByRole("heading", { name: "Friends", exact: true }).waitFor();
  await say("new 1");
  await say("new 2");
  await say("new 3");
  await waitTitle(page, "(3) Harmony");
  await page.getByTestId("chat-list").getByRole("link").filter({ hasText: "oto" }).click();
  await messages(page, "new 3").waitFor();
  assert.match(await afterLine(page), /new 1/);
  assert.equal(await page.getByTestId("new-messages").count(), 1);
  assert.equal(await page.getByTestId("new-messages").innerText(), "New messages");
  await waitTitle(page, "Harmony");
  // A message in the open chat is read as it comes: the title stays, the line stays put.
  await say("new 4");
  await messages(page, "new 4").waitFor();
  await page.waitForTimeout(300);
  assert.equal(await title(page), "Harmony");
  assert.match(await afterLine(page), /new 1/);
  // Another chat's message counts.
  const { say: sayPia } = await chatWith("nia", "pia");
  await sayPia("psst");
  await waitTitle(page, "(1) Harmony");
  // All read: no line next time.
  await page.getByTestId("chat-list").getByRole("link").filter({ hasText: "pia" }).click();
  await waitTitle(page, "Harmony");
  await page.getByTestId("chat-list").getByRole("link").filter({ hasText: "oto" }).click();
  await messages(page, "new 4").waitFor();
  await page.waitForTimeout(200);
  assert.equal(await page.getByTestId("new-messages").count(), 0);
  await context.close();
});

/** Whether the newest message is in view of the history's scroller. */
const atBottom = (page) => page.getByTestId("messages").evaluate((el) => {
  const list = el.firstElementChild;
  return list.getBoundingClientRect().bottom - el.getBoundingClientRect().bottom < 2;
});

test("scrolled up, 'Jump to latest' shows; new messages do not move the view; the pill takes it to the bottom", async () => {
  const { page, context } = await person("quin");
  const { chat, say } = await chatWith("quin", "rex");
  for (let i = 1; i <= 40; i++) await say(`line ${i}`);
  await page.goto(`${base}/chats/${chat.id}`);
  await messages(page, "line 40").waitFor();
  await page.getByRole("button", { name: "Friends" }).click();
  await page.getByRole("heading", { name: "Friends", exact: true }).waitFor();
  // More unread than fit: the chat opens at the line, with the pill to go on to the newest.
  for (let i = 41; i <= 80; i++) await say(`line ${i}`);
  await waitTitle(page, "(40) Harmony");
  await page.getByTestId("chat-list").getByRole("link").filter({ hasText: "rex" }).click();
  await messages(page, "line 80").waitFor({ state: "attached" });
  await page.getByTestId("new-messages").waitFor();
  assert.match(await afterLine(page), /line 41/);
  const pill = page.getByRole("button", { name: "Jump to latest" });
  await pill.waitFor();
  assert.equal(await atBottom(page), false);
  await pill.click();
  await pill.waitFor({ state: "detached" });
  assert.equal(await atBottom(page), true);
  // Scrolled up by hand: the pill; a message arriving leaves the view where it is.
  await page.getByTestId("messages").evaluate((el) => { el.scrollTop -= 600; });
  await pill.waitFor();
  const before = await messages(page, "line 60").boundingBox();
  await say("line 81");
  await messages(page, "line 81").waitFor({ state: "attached" });
  await page.waitForTimeout(200);
  assert.deepEqual(await messages(page, "line 60").boundingBox(), before, "the view did not move");
  assert.equal(await pill.isVisible(), true);
  await pill.click();
  await pill.waitFor({ state: "detached" });
  await messages(page, "line 81").waitFor();
  assert.equal(await atBottom(page), true);
  // Back at the bottom by hand, the pill goes too.
  await page.getByTestId("messages").evaluate((el) => { el.scrollTop -= 600; });
  await pill.waitFor();
  await page.getByTestId("messages").evaluate((el) => { el.scrollTop = 0; });
  await pill.waitFor({ state: "detached" });
  await context.close();
});

test("a message grouped under its author's header shows its time on hover", async () => {
  const { page, context } = await person("sol");
  const { chat, say } = await chatWith("sol", "tam");
  await say("first");
  await say("second");
  await page.goto(`${base}/chats/${chat.id}`);
  const second = messages(page, "second");
  await second.waitFor();
  const time = second.getByTestId("grouped-time");
  assert.equal(await time.isVisible(), false, "hidden until hovered");
  assert.ok(await time.getAttribute("title"), "a full date and time as a tooltip");
  await second.hover();
  await time.waitFor({ state: "visible" });
  assert.match(await time.innerText(), /\d{1,2}.\d{2}/);
  // The first, with the header, has its time there.
  assert.equal(await messages(page, "first").getByTestId("grouped-time").count(), 0);
  await context.close();
});

noConsoleErrors();

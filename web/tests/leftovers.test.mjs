// Browser tests for what issue 20 left: a grouped message's time shows on keyboard focus as on
// hover; a message not sent yet survives a reload and goes out once, with its client_msg_id,
// when the connection is back (and sign-out forgets it); after a confirmed removal the focus
// lands somewhere sensible, never on <body>.
import { test } from "node:test";
import assert from "node:assert/strict";
import { apiAs, base, browser, messages, person, setup, SHOTS, TIMEOUT } from "./harness.mjs";

const noConsoleErrors = setup();

async function group(page, name) {
  await page.getByRole("button", { name: "New group" }).click();
  await page.getByLabel("Group name").fill(name);
  await page.getByRole("button", { name: "Create" }).click();
  await page.getByTestId("chat-title").getByText(name, { exact: true }).waitFor();
  return new URL(page.url()).pathname.split("/").pop();
}

const composerOf = (page) => page.getByLabel("Message", { exact: true });

async function say(page, text) {
  await composerOf(page).fill(text);
  await composerOf(page).press("Enter");
  await messages(page, text).waitFor();
}

/** Waits until the focus is off <body>, and describes where it is. */
async function focusSettled(page) {
  await page.waitForFunction(() => document.activeElement && document.activeElement !== document.body, null, { timeout: 5000 });
  // A moment more: a focus that lands only to be lost again with a re-render is a failure too.
  await page.waitForTimeout(400);
  return page.evaluate(() => {
    const el = document.activeElement;
    return {
      body: !el || el === document.body,
      tag: el?.tagName.toLowerCase(),
      text: el?.textContent ?? "",
      inPanel: !!el?.closest('aside[aria-label="Members"]'),
      inChatList: !!el?.closest('[data-testid="chat-list"]'),
      href: el?.getAttribute("href") ?? null,
      messageId: el?.getAttribute("data-message-id") ?? null,
      tombstone: !!el?.querySelector('[data-testid="tombstone"]'),
    };
  });
}

/** The usernames (the @handles) of the members panel's rows, in order. */
const handles = (panel) => panel.getByRole("listitem").evaluateAll((rows) => rows.map((row) =>
  [...row.querySelectorAll("span")].map((s) => s.textContent).find((t) => t.startsWith("@"))?.slice(1)));

async function register(name) {
  const r = await fetch(`${base}/api/v1/auth/register`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: name, password: `password-${name}`, display_name: name }),
  });
  assert.ok(r.ok, `register ${name}: ${r.status}`);
}

async function befriend(asA, bName, asB) {
  const request = await asA("POST", "/friends/requests", { username: bName });
  await asB("POST", `/friends/requests/${request.id}/accept`);
}

test("a grouped message shows its time while it or its actions have the keyboard focus", async () => {
  const vic = await person("vic");
  const page = vic.page;
  await group(page, "times");
  await say(page, "first of two");
  await say(page, "second of two");
  const second = messages(page, "second of two");
  const time = second.getByTestId("grouped-time");
  // The mouse far away: nothing is hovered.
  await page.mouse.move(600, 5);
  assert.equal(await time.isVisible(), false, "hidden while the message has neither hover nor focus");

  // By keyboard: the skip link to the messages, then Tab to the newest message's actions.
  await page.getByRole("link", { name: "Skip to messages" }).focus();
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.activeElement?.id === "messages");
  await page.keyboard.press("Tab");
  assert.ok(await second.evaluate((li) => li.contains(document.activeElement) && document.activeElement !== li),
    "the second message's actions have the focus");
  await time.waitFor({ state: "visible", timeout: 2000 });
  assert.match(await time.innerText(), /\d/);
  await page.screenshot({ path: `${SHOTS}grouped-time-focus.png` });

  // The message itself focused (as after an edit, or a jump to a reply's original).
  await composerOf(page).focus();
  await time.waitFor({ state: "hidden", timeout: 2000 });
  await second.focus();
  await time.waitFor({ state: "visible", timeout: 2000 });
  // And hover still shows it.
  await composerOf(page).focus();
  await time.waitFor({ state: "hidden", timeout: 2000 });
  await second.hover();
  await time.waitFor({ state: "visible", timeout: 2000 });
  await vic.context.close();
});

test("messages not sent yet survive a reload and go out once, with their client_msg_id, when the connection is back", async () => {
  const wes = await person("wes");
  const page = wes.page;
  const chatId = await group(page, "later");
  // Every send, as the server would have seen it; and the way to the server, as the test wants.
  const posts = [];
  let sends = "pass";
  await page.route(/\/api\/v1\/chats\/[^/]+\/messages$/, async (route) => {
    if (route.request().method() !== "POST") return route.continue();
    posts.push(JSON.parse(route.request().postData()));
    if (sends === "busy") {
      return route.fulfill({ status: 503, contentType: "application/problem+json",
        body: JSON.stringify({ type: "about:blank", title: "Service unavailable", status: 503, code: "unavailable" }) });
    }
    if (sends === "down") return route.abort("internetdisconnected");
    return route.continue();
  });

  // One the server could not take now (retryable), then one written with no connection.
  sends = "busy";
  await composerOf(page).fill("the server was busy");
  await composerOf(page).press("Enter");
  const busy = page.getByTestId("pending-message").filter({ hasText: "the server was busy" });
  await busy.getByText("Failed").waitFor();
  await wes.context.setOffline(true);
  sends = "down";
  await composerOf(page).fill("written on the train");
  await composerOf(page).press("Enter");
  const train = page.getByTestId("pending-message").filter({ hasText: "written on the train" });
  await train.getByText("Not sent yet").waitFor();

  // Kept per user and chat, with the client_msg_id.
  const me = await (await apiAs("wes"))("GET", "/users/me");
  const stored = () => page.evaluate(() => Object.entries(localStorage).filter(([k]) => k.startsWith("harmony.pending.")));
  const kept = await stored();
  assert.equal(kept.length, 2, JSON.stringify(kept));
  const ids = {};
  for (const [key, value] of kept) {
    assert.ok(key.startsWith(`harmony.pending.${me.id}.${chatId}.`), key);
    const p = JSON.parse(value);
    assert.equal(key, `harmony.pending.${me.id}.${chatId}.${p.clientMsgId}`);
    ids[p.content] = p.clientMsgId;
  }
  assert.deepEqual(Object.keys(ids).sort(), ["the server was busy", "written on the train"]);

  // The network is back, but sends still fail; a reload while they wait.
  await wes.context.setOffline(false);
  await page.waitForTimeout(500);
  await page.reload();
  await page.getByTestId("chat-title").getByText("later").waitFor();
  await busy.getByText("Not sent yet").waitFor();
  await train.getByText("Not sent yet").waitFor();
  // Mine, under my name.
  await busy.getByText("@wes").waitFor();
  await page.screenshot({ path: `${SHOTS}unsent-after-reload.png` });

  // The connection is back: out they go, by themselves, in order, each once.
  sends = "pass";
  await wes.context.setOffline(true);
  await page.getByTestId("offline-banner").waitFor();
  await wes.context.setOffline(false);
  await messages(page, "written on the train").waitFor();
  await messages(page, "the server was busy").waitFor();
  await page.getByTestId("pending-message").first().waitFor({ state: "detached" });
  await page.waitForTimeout(500);
  for (const content of Object.keys(ids)) {
    const tries = posts.filter((p) => p.content === content);
    assert.ok(tries.length >= 2, `${content}: ${tries.length} tries`);
    assert.deepEqual([...new Set(tries.map((p) => p.client_msg_id))], [ids[content]], `${content}: one client_msg_id`);
    assert.equal(await messages(page, content).count(), 1);
  }
  const history = await (await apiAs("wes"))("GET", `/chats/${chatId}/messages`);
  const held = history.messages.map((m) => m.content).filter((c) => c in ids);
  assert.deepEqual(held, ["the server was busy", "written on the train"], "the server holds each once, in order");
  assert.deepEqual(await stored(), [], "nothing left stored once sent");
  await page.reload();
  await messages(page, "written on the train").waitFor();
  assert.equal(await page.getByTestId("pending-message").count(), 0);
  await wes.context.close();
});

test("sign-out forgets a message not sent yet: nothing stored, nothing sent", async () => {
  const xan = await person("xan");
  const page = xan.page;
  const chatId = await group(page, "secrets");
  await page.route(/\/api\/v1\/chats\/[^/]+\/messages$/, (route) =>
    route.request().method() === "POST" ? route.abort("internetdisconnected") : route.continue());
  await composerOf(page).fill("not for the next person");
  await composerOf(page).press("Enter");
  await page.getByTestId("pending-message").getByText("Not sent yet").waitFor();
  const stored = () => page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("harmony.pending.")));
  assert.equal((await stored()).length, 1);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  assert.deepEqual(await stored(), []);
  await page.unroute(/\/api\/v1\/chats\/[^/]+\/messages$/);
  await page.reload();
  await page.getByLabel("Username").fill("xan");
  await page.getByLabel("Password").fill("password-xan");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("chat-list").getByRole("link").filter({ hasText: "secrets" }).click();
  await page.getByTestId("chat-title").getByText("secrets").waitFor();
  await page.waitForTimeout(1000);
  assert.equal(await page.getByTestId("pending-message").count(), 0);
  const history = await (await apiAs("xan"))("GET", `/chats/${chatId}/messages`);
  assert.deepEqual(history.messages.filter((m) => m.content === "not for the next person"), [], "never sent");
  await xan.context.close();
});

test("after a confirmed removal the focus lands on the next member, the message, or the chat list", async () => {
  const yara = await person("yara");
  const page = yara.page;
  const asYara = await apiAs("yara");
  const ids = {};
  for (const name of ["bea", "cal", "dax", "eve"]) {
    await register(name);
    const as = await apiAs(name);
    await befriend(asYara, name, as);
    ids[name] = (await as("GET", "/users/me")).id;
  }
  const chat = await asYara("POST", "/chats", { kind: "group", name: "crew", member_ids: [ids.bea, ids.cal, ids.dax] });
  // Eve joins later: the last of the list.
  await asYara("POST", `/chats/${chat.id}/members`, { user_id: ids.eve });
  await page.goto(`${base}/chats/${chat.id}`);
  await page.getByTestId("chat-title").getByText("crew").waitFor();

  // Remove a member by keyboard: the focus goes to the member who was next.
  await page.getByRole("button", { name: "Members", exact: true }).click();
  const panel = page.getByRole("complementary", { name: "Members" });
  await panel.getByText("@eve").waitFor();
  const names = await handles(panel);
  const victim = names.find((n) => n !== "yara" && names.indexOf(n) < names.length - 1);
  const next = names[names.indexOf(victim) + 1];
  await panel.getByRole("button", { name: `Remove ${victim}` }).focus();
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("alertdialog", { name: `Remove ${victim}?` });
  await dialog.waitFor();
  await page.keyboard.press("Tab");
  await page.keyboard.press("Enter");
  await panel.getByText(`@${victim}`).waitFor({ state: "detached" });
  let at = await focusSettled(page);
  assert.ok(at.inPanel && at.text.includes(`@${next}`), `after removing ${victim} (next: ${next}): ${JSON.stringify(at)}`);
  await page.screenshot({ path: `${SHOTS}focus-after-remove.png` });

  // The last member removed: the one before takes the focus.
  const left = await handles(panel);
  const last = left.at(-1);
  assert.equal(last, "eve");
  await panel.getByRole("button", { name: `Remove ${last}` }).focus();
  await page.keyboard.press("Enter");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Enter");
  await panel.getByText(`@${last}`).waitFor({ state: "detached" });
  at = await focusSettled(page);
  assert.ok(at.inPanel && at.text.includes(`@${left.at(-2)}`), `after removing ${last}: ${JSON.stringify(at)}`);
  await page.getByRole("button", { name: "Close members" }).click();

  // A message deleted: the focus stays on its row, the tombstone.
  await say(page, "a line to take back");
  const row = messages(page, "a line to take back");
  await row.hover();
  await row.getByRole("button", { name: "Delete" }).focus();
  await page.keyboard.press("Enter");
  await page.getByRole("alertdialog", { name: "Delete this message?" }).waitFor();
  await page.keyboard.press("Tab");
  await page.keyboard.press("Enter");
  await page.getByTestId("tombstone").waitFor();
  at = await focusSettled(page);
  assert.ok(at.messageId && at.tombstone, `after deleting a message: ${JSON.stringify(at)}`);

  // Leaving a group (cal or bea, whoever is still in it, in a browser of their own): the focus
  // goes to the chat list, on a chat still there.
  const stays = left.find((n) => n !== "yara" && n !== last);
  const member = await browser.newContext();
  const mPage = await member.newPage();
  mPage.setDefaultTimeout(TIMEOUT);
  await mPage.goto(base);
  await mPage.getByLabel("Username").fill(stays);
  await mPage.getByLabel("Password").fill(`password-${stays}`);
  await mPage.getByRole("button", { name: "Sign in" }).click();
  await mPage.getByTestId("me").waitFor();
  await group(mPage, "elsewhere");
  await mPage.getByTestId("chat-list").getByRole("link").filter({ hasText: "crew" }).click();
  await mPage.getByTestId("chat-title").getByText("crew").waitFor();
  await mPage.getByRole("button", { name: "Members", exact: true }).click();
  await mPage.getByRole("button", { name: "Leave chat" }).focus();
  await mPage.keyboard.press("Enter");
  await mPage.getByRole("alertdialog", { name: "Leave this chat?" }).waitFor();
  await mPage.keyboard.press("Tab");
  await mPage.keyboard.press("Enter");
  await mPage.getByTestId("chat-list").getByRole("link").filter({ hasText: "crew" }).waitFor({ state: "detached" });
  at = await focusSettled(mPage);
  assert.ok(at.inChatList && at.text.includes("elsewhere"), `after leaving: ${JSON.stringify(at)}`);
  await member.close();

  // Deleting the only chat: the focus goes to the (empty) chat list.
  await page.getByRole("button", { name: "Members", exact: true }).click();
  await page.getByRole("button", { name: "Delete chat" }).focus();
  await page.keyboard.press("Enter");
  await page.getByRole("alertdialog", { name: "Delete this chat?" }).waitFor();
  await page.keyboard.press("Tab");
  await page.keyboard.press("Enter");
  await page.getByTestId("chat-list").getByRole("link").filter({ hasText: "crew" }).waitFor({ state: "detached" });
  at = await focusSettled(page);
  assert.ok(at.inChatList, `after deleting the chat: ${JSON.stringify(at)}`);
  await yara.context.close();
});

noConsoleErrors();

test("a member added or removed and a rename show as timeline lines, live and after a reload", async () => {
  const zed = await person("zed");
  const page = zed.page;
  const asZed = await apiAs("zed");
  await register("uma");
  const asUma = await apiAs("uma");
  await befriend(asZed, "uma", asUma);
  const uma = (await asUma("GET", "/users/me")).id;
  const chatId = await group(page, "lines");
  const lines = page.getByTestId("timeline-line");
  // Live: each arrives as the server writes it, a line and not a message of uma's.
  await asZed("POST", `/chats/${chatId}/members`, { user_id: uma });
  await lines.filter({ hasText: "uma joined" }).waitFor();
  assert.equal(await messages(page, "uma joined").count(), 0, "a line, not a message");
  await asZed("DELETE", `/chats/${chatId}/members/${uma}`);
  await lines.filter({ hasText: "uma left" }).waitFor();
  await asZed("PATCH", `/chats/${chatId}`, { name: "renamed lines" });
  await lines.filter({ hasText: "The group is now called “renamed lines”" }).waitFor();
  // From history after a reload, in order.
  await page.reload();
  await page.getByTestId("chat-title").getByText("renamed lines").waitFor();
  await lines.nth(2).waitFor();
  const said = await lines.allInnerTexts();
  assert.deepEqual(said.map((t) => t.split(" · ")[0]), ["uma joined", "uma left", "The group is now called “renamed lines”"]);
  await page.screenshot({ path: `${SHOTS}timeline-lines.png` });
  await zed.context.close();
});

// Browser tests: the real harmony binary (with the UI built in), driven by Playwright in
// Debian's Chromium (see harness.mjs). Screenshots go to tests/screenshots/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { base, befriend, browser, messages, person, setup, SHOTS } from "./harness.mjs";

const noConsoleErrors = setup();

test("sign-up shows field errors", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const authCalls = [];
  page.on("request", (r) => { if (r.url().includes("/api/v1/auth/")) authCalls.push(r.url()); });
  await page.goto(base);
  // An empty sign-in is answered by the form itself, not by a round trip.
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Enter your username.").waitFor();
  await page.getByText("Enter your password.").waitFor();
  await page.getByRole("button", { name: "New here? Create an account" }).click();
  // The rules are shown before anyone fails them.
  await page.getByText("At least 8 characters").waitFor();
  await page.getByLabel("Username").fill("x");
  await page.getByLabel("Password").fill("short");
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByText("Use 3 to 32 of a–z, 0–9, _ . and -.").waitFor();
  await page.getByText("Use at least 8 characters.").waitFor();
  assert.deepEqual(authCalls.filter((u) => !u.endsWith("/refresh")), [], "nothing went to the server");
  await page.screenshot({ path: `${SHOTS}signup-errors.png` });
  await context.close();
});

test("who can be added is who is not there yet, and a removed member is told why", async () => {
  const hal = await person("hal");
  const ivy = await person("ivy");
  await befriend(hal, "hal", ivy, "ivy");
  // A friend is not offered as a friend again.
  await hal.page.getByRole("button", { name: "Friends" }).click();
  await hal.page.getByLabel("Find people").fill("ivy");
  const found = hal.page.getByRole("listitem").filter({ hasText: "@ivy" }).filter({ hasText: "Friend" });
  await found.getByText("Friend", { exact: true }).waitFor();
  assert.equal(await hal.page.getByRole("button", { name: "Add friend" }).count(), 0);
  await hal.page.getByRole("button", { name: "New group" }).click();
  await hal.page.getByLabel("Group name").fill("team");
  await hal.page.getByRole("checkbox").check();
  await hal.page.getByRole("button", { name: "Create" }).click();
  await hal.page.getByTestId("chat-title").getByText("team").waitFor();
  await hal.page.getByRole("button", { name: "Members" }).click();
  await hal.page.getByRole("button", { name: "Remove ivy" }).waitFor();
  // Neither hal himself nor ivy (already in) is offered; hank and ike, who are not in, are.
  for (const name of ["hank", "ike"]) {
    await fetch(`${base}/api/v1/auth/register`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: name, password: `password-${name}` }),
    });
  }
  const panel = hal.page.getByRole("complementary").filter({ hasText: "Add someone" });
  for (const [prefix, offered, absent] of [["h", "@hank", "@hal"], ["i", "@ike", "@ivy"]]) {
    await hal.page.getByLabel("Add someone").fill(prefix);
    await panel.getByRole("listitem").filter({ hasText: offered }).getByRole("button", { name: "Add" }).waitFor();
    const candidates = panel.getByRole("listitem").filter({ has: hal.page.getByRole("button", { name: "Add", exact: true }) });
    assert.equal(await candidates.filter({ hasText: absent }).count(), 0, `${absent} offered`);
  }
  await ivy.page.getByTestId("chat-list").getByText("team").click();
  await ivy.page.getByTestId("chat-title").getByText("team").waitFor();
  await hal.page.getByRole("button", { name: "Remove ivy" }).click();
  await hal.page.getByRole("alertdialog", { name: "Remove ivy?" }).getByRole("button", { name: "Remove", exact: true }).click();
  await ivy.page.getByText("You are no longer in this chat").waitFor();
  await hal.context.close();
  await ivy.context.close();
});

test("a message over the limit is counted, kept and not sent", async () => {
  const gus = await person("gus");
  await gus.page.getByRole("button", { name: "New group" }).click();
  await gus.page.getByLabel("Group name").fill("long");
  await gus.page.getByRole("button", { name: "Create" }).click();
  await gus.page.getByTestId("chat-title").getByText("long").waitFor();
  const composer = gus.page.getByLabel("Message", { exact: true });
  await composer.fill("y".repeat(4500));
  await gus.page.getByTestId("composer-count").getByText("4500 / 4000").waitFor();
  assert.equal(await gus.page.getByRole("button", { name: "Send" }).isDisabled(), true);
  await composer.press("Enter");
  assert.equal((await composer.inputValue()).length, 4500, "the text is kept to be shortened");
  assert.equal(await gus.page.getByTestId("pending-message").count(), 0, "nothing was sent");
  await composer.fill("y".repeat(3990));
  await gus.page.getByTestId("composer-count").getByText("3990 / 4000").waitFor();
  await composer.press("Enter");
  await messages(gus.page, "y".repeat(3990)).waitFor();
  // Renaming to nothing, or to what the server refuses, says why instead of doing nothing.
  await gus.page.getByRole("button", { name: "Members" }).click();
  await gus.page.getByLabel("Chat name").fill("   ");
  await gus.page.getByRole("button", { name: "Rename" }).click();
  await gus.page.getByText("A group needs a name.").waitFor();
  await gus.page.getByLabel("Chat name").fill("evil\u202egnp.exe");
  await gus.page.getByRole("button", { name: "Rename" }).click();
  await gus.page.getByText("must not contain characters that reorder or hide text").waitFor();
  await gus.context.close();
});

test("two people befriend each other and chat live both ways", async () => {
  const ann = await person("ann");
  const bob = await person("bob");
  await befriend(ann, "ann", bob, "bob");
  await bob.page.getByRole("button", { name: "Message" }).click();
  await bob.page.getByTestId("chat-title").getByText("ann").waitFor();
  await bob.page.getByLabel("Message", { exact: true }).fill("hi ann, it's bob");
  await bob.page.keyboard.press("Enter");
  // Ann sees the new chat and the message without reloading.
  await ann.page.getByTestId("chat-list").getByText("hi ann, it's bob").click();
  await messages(ann.page, "hi ann, it's bob").waitFor();
  await ann.page.getByLabel("Message", { exact: true }).fill("hello bob!");
  await ann.page.getByRole("button", { name: "Send" }).click();
  await messages(bob.page, "hello bob!").waitFor();
  assert.equal(await messages(bob.page, "hello bob!").count(), 1);
  // Bob starts a reply: Ann sees him typing.
  await bob.page.getByLabel("Message", { exact: true }).fill("let me think");
  await ann.page.getByTestId("typing").getByText("bob is typing…").waitFor();
  await ann.page.screenshot({ path: `${SHOTS}chat.png` });
  const phone = await bob.context.newPage();
  await phone.setViewportSize({ width: 390, height: 760 });
  await phone.goto(bob.page.url());
  await messages(phone, "hello bob!").waitFor();
  await phone.screenshot({ path: `${SHOTS}chat-phone.png` });
  await ann.context.close();
  await bob.context.close();
});

test("a friend's presence: online while there, idle when the tab is hidden, offline when it closes", async () => {
  const jay = await person("jay");
  const kim = await person("kim");
  await befriend(jay, "jay", kim, "kim");
  await kim.page.getByRole("button", { name: "Message" }).click();
  await kim.page.getByTestId("chat-title").getByText("jay").waitFor();
  await jay.page.getByTestId("chat-list").getByText("kim").click();
  await jay.page.getByTestId("chat-title").getByText("kim").waitFor();
  await kim.page.getByLabel("Message", { exact: true }).fill("one moment");
  await jay.page.getByTestId("typing").getByText("kim is typing…").waitFor();
  // Kim's dot, in the chat list and in the members panel.
  const row = jay.page.getByTestId("chat-list").getByRole("listitem").filter({ hasText: "kim" });
  await row.locator('[data-presence="online"]').waitFor();
  // A direct chat has a profile of the other person, not a member list.
  await jay.page.getByRole("button", { name: "Profile" }).click();
  const member = jay.page.getByRole("complementary", { name: "Profile" }).filter({ hasText: "@kim" });
  await member.getByRole("img", { name: "online" }).waitFor();
  await jay.page.screenshot({ path: `${SHOTS}presence.png` });
  // Kim's tab goes to the background, then comes back.
  const setHidden = (hidden) => kim.page.evaluate((h) => {
    if (h) Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    else delete document.visibilityState;
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
  await setHidden(true);
  await member.locator('[data-presence="idle"]').waitFor();
  await setHidden(false);
  await member.locator('[data-presence="online"]').waitFor();
  // Kim closes the tab: after the grace, she is offline, and the friends page says since when.
  await kim.context.close();
  await member.locator('[data-presence="offline"]').waitFor();
  await row.locator('[data-presence="offline"]').waitFor();
  await jay.page.getByRole("button", { name: "Friends" }).click();
  const friend = jay.page.getByTestId("friends").getByRole("listitem").filter({ hasText: "kim" });
  await friend.locator('[data-presence="offline"]').waitFor();
  await friend.getByText("last seen just now").waitFor();
  await jay.page.screenshot({ path: `${SHOTS}presence-friends.png` });
  await jay.context.close();
});

test("offline and back: the missed messages appear once", async () => {
  const cat = await person("cat");
  const dan = await person("dan");
  await befriend(cat, "cat", dan, "dan");
  await dan.page.getByRole("button", { name: "Message" }).click();
  await dan.page.getByLabel("Message", { exact: true }).fill("first");
  await dan.page.keyboard.press("Enter");
  await cat.page.getByTestId("chat-list").getByText("first").click();
  await messages(cat.page, "first").waitFor();

  await cat.context.setOffline(true);
  await cat.page.getByTestId("offline-banner").waitFor();
  await cat.page.screenshot({ path: `${SHOTS}offline.png` });
  for (const text of ["while you were away 1", "while you were away 2"]) {
    await dan.page.getByLabel("Message", { exact: true }).fill(text);
    await dan.page.keyboard.press("Enter");
    await messages(dan.page, text).waitFor();
  }
  await cat.context.setOffline(false);
  await cat.page.getByTestId("offline-banner").waitFor({ state: "detached" });
  for (const text of ["while you were away 1", "while you were away 2"]) {
    await messages(cat.page, text).waitFor();
    assert.equal(await messages(cat.page, text).count(), 1, `"${text}" shown once`);
  }
  assert.equal(await messages(cat.page, "first").count(), 1);
  await cat.context.close();
  await dan.context.close();
});

test("an optimistic send rolls back when refused, and a retry sends it once", async () => {
  const eve = await person("eve");
  await eve.page.getByRole("button", { name: "New group" }).click();
  await eve.page.getByLabel("Group name").fill("plans");
  await eve.page.getByRole("button", { name: "Create" }).click();
  await eve.page.getByTestId("chat-title").getByText("plans").waitFor();
  const refuse = (route) =>
    route.request().method() === "POST"
      ? route.fulfill({ status: 503, contentType: "application/problem+json",
        body: JSON.stringify({ type: "urn:harmony:problem:unavailable", title: "Temporarily unavailable; retry later", status: 503, code: "unavailable" }) })
      : route.continue();
  await eve.page.route("**/api/v1/chats/*/messages", refuse);
  await eve.page.getByLabel("Message", { exact: true }).fill("will this work?");
  await eve.page.keyboard.press("Enter");
  await eve.page.getByTestId("pending-message").getByText("Failed").waitFor();
  await eve.page.screenshot({ path: `${SHOTS}failed-send.png` });
  await eve.page.unroute("**/api/v1/chats/*/messages", refuse);
  await eve.page.getByRole("button", { name: "Retry" }).click();
  await messages(eve.page, "will this work?").waitFor();
  await eve.page.getByTestId("pending-message").waitFor({ state: "detached" });
  assert.equal(await messages(eve.page, "will this work?").count(), 1);
  await eve.context.close();
});

test("a deep link opens a long chat, and scrolling up pages through all of it", async () => {
  const fay = await person("fay");
  // Fill a chat through the API, as another client of the same account would.
  const login = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "fay", password: "password-fay" }),
  }).then((r) => r.json());
  const auth = { "content-type": "application/json", authorization: `Bearer ${login.access_token}` };
  const chat = await fetch(`${base}/api/v1/chats`, { method: "POST", headers: auth, body: JSON.stringify({ kind: "group", name: "archive" }) }).then((r) => r.json());
  for (let i = 0; i < 130; i++) {
    const r = await fetch(`${base}/api/v1/chats/${chat.id}/messages`, { method: "POST", headers: auth, body: JSON.stringify({ content: `note ${i}` }) });
    assert.equal(r.status, 201);
  }
  await fay.page.goto(`${base}/chats/${chat.id}`);
  await messages(fay.page, "note 129").waitFor();
  const list = fay.page.getByTestId("messages");
  for (let i = 0; i < 20 && !(await fay.page.getByText("This is the beginning of the chat.").isVisible()); i++) {
    await list.evaluate((el) => { el.scrollTop = -el.scrollHeight; });
    await fay.page.waitForTimeout(150);
  }
  await fay.page.getByText("This is the beginning of the chat.").waitFor();
  assert.equal(await fay.page.getByTestId("message").count(), 130);
  const seqs = await fay.page.getByTestId("message").evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual(seqs, Array.from({ length: 130 }, (_, i) => i + 1), "every message once, in order");
  await fay.context.close();
});

noConsoleErrors();

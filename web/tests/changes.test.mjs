// Browser tests for issue 16 (docs/decisions/0004-message-changes.md): two people in a group;
// an edit, a delete, reactions and a reply are seen live by the other, and an @mention
// autocompletes in the composer and raises a mention badge for the one mentioned. Changes are
// entries of the chat's order: they move its position like messages, and never count as unread.
import { test } from "node:test";
import assert from "node:assert/strict";
import { apiAs, base, messages, person, setup, SHOTS, TIMEOUT } from "./harness.mjs";

const noConsoleErrors = setup();

/** `a` and `b` signed up in browsers, friends, in a group `a` owns, both with it open; their
 *  API clients and the chat. */
async function group(aName, bName) {
  const a = await person(aName);
  const b = await person(bName);
  const [asA, asB] = [await apiAs(aName), await apiAs(bName)];
  const request = await asA("POST", "/friends/requests", { username: bName });
  await asB("POST", `/friends/requests/${request.id}/accept`);
  const bUser = await asB("GET", "/users/me");
  const chat = await asA("POST", "/chats", { kind: "group", name: `${aName} and ${bName}`, member_ids: [bUser.id] });
  for (const p of [a, b]) {
    await p.page.goto(`${base}/chats/${chat.id}`);
    await p.page.getByTestId("chat-title").getByText(chat.name).waitFor();
  }
  return { a, b, asA, asB, chat };
}

const composerOf = (page) => page.getByLabel("Message", { exact: true });

async function say(page, text) {
  await composerOf(page).fill(text);
  await composerOf(page).press("Enter");
  await messages(page, text).waitFor();
}

/** A message's row and its actions (shown on hover); the first with the text, as a reply's quote
 *  repeats its original's. */
async function actions(page, text) {
  const row = messages(page, text).first();
  await row.hover();
  return row.getByRole("toolbar");
}

const close = async (...people) => { for (const p of people) await p.context.close(); };

test("an edit is seen live by the other, marked (edited); Escape cancels one", async () => {
  const { a, b } = await group("eda", "eli");
  await say(a.page, "see you at 5");
  await messages(b.page, "see you at 5").waitFor();

  await (await actions(a.page, "see you at 5")).getByRole("button", { name: "Edit" }).click();
  const editor = a.page.getByLabel("Edit message");
  assert.ok(await editor.evaluate((el) => el === document.activeElement), "the editor has the focus");
  assert.equal(await editor.inputValue(), "see you at 5");
  await editor.fill("see you at 6");
  await a.page.screenshot({ path: `${SHOTS}edit-inline.png` });
  await editor.press("Enter");
  await editor.waitFor({ state: "detached" });
  for (const page of [a.page, b.page]) {
    const row = messages(page, "see you at 6");
    await row.getByTestId("edited").waitFor();
    assert.equal(await row.getByTestId("edited").innerText(), "(edited)");
    assert.match(await row.getByTestId("edited").getAttribute("title"), /^Edited /);
    assert.equal(await messages(page, "see you at 5").count(), 0);
  }
  await b.page.screenshot({ path: `${SHOTS}edited-live.png` });

  // Escape leaves it as it was.
  await (await actions(a.page, "see you at 6")).getByRole("button", { name: "Edit" }).click();
  await editor.fill("never mind");
  await editor.press("Escape");
  await editor.waitFor({ state: "detached" });
  await messages(a.page, "see you at 6").waitFor();
  assert.equal(await messages(a.page, "never mind").count(), 0);
  // Only one's own messages can be edited.
  await say(b.page, "eli's line");
  const theirs = await actions(a.page, "eli's line");
  assert.equal(await theirs.getByRole("button", { name: "Edit" }).count(), 0);
  // Kept by the server: a reload shows the edit.
  await b.page.reload();
  await messages(b.page, "see you at 6").getByTestId("edited").waitFor();
  await close(a, b);
});

test("a delete asks first, then leaves a tombstone for both; an owner may delete others' messages", async () => {
  const { a, b } = await group("dan", "dot");
  await say(b.page, "typo in here");
  await say(b.page, "a second thought");
  await messages(a.page, "a second thought").waitFor();

  await (await actions(b.page, "typo in here")).getByRole("button", { name: "Delete" }).click();
  const dialog = b.page.getByRole("alertdialog", { name: "Delete this message?" });
  await dialog.waitFor();
  await b.page.screenshot({ path: `${SHOTS}delete-confirm.png` });
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "detached" });
  await messages(b.page, "typo in here").waitFor();

  await (await actions(b.page, "typo in here")).getByRole("button", { name: "Delete" }).click();
  await dialog.getByRole("button", { name: "Delete" }).click();
  for (const page of [a.page, b.page]) {
    await page.getByTestId("tombstone").first().waitFor();
    assert.equal(await page.getByTestId("tombstone").count(), 1);
    assert.equal(await messages(page, "typo in here").count(), 0);
  }
  await a.page.screenshot({ path: `${SHOTS}deleted-live.png` });

  // A member deletes only their own; the owner (dan made the group) anyone's.
  await say(a.page, "dan's own");
  assert.equal(await (await actions(b.page, "dan's own")).getByRole("button", { name: "Delete" }).count(), 0);
  await (await actions(a.page, "a second thought")).getByRole("button", { name: "Delete" }).click();
  await a.page.getByRole("alertdialog", { name: "Delete this message?" }).getByRole("button", { name: "Delete" }).click();
  await messages(b.page, "a second thought").waitFor({ state: "detached" });
  assert.equal(await b.page.getByTestId("tombstone").count(), 2);
  // The server keeps tombstones: a reload shows them, without the text.
  await b.page.reload();
  await messages(b.page, "dan's own").waitFor();
  assert.equal(await b.page.getByTestId("tombstone").count(), 2);
  assert.equal(await messages(b.page, "typo in here").count(), 0);
  await close(a, b);
});

test("a reaction toggles, the other sees the count live, and a refused one is taken back", async () => {
  const { a, b } = await group("rae", "rob");
  await say(a.page, "pizza tonight?");
  await messages(b.page, "pizza tonight?").waitFor();

  await (await actions(b.page, "pizza tonight?")).getByRole("button", { name: "React" }).click();
  const picker = b.page.getByTestId("emoji-picker");
  await picker.waitFor();
  assert.ok(await picker.getByRole("button").first().evaluate((el) => el === document.activeElement), "the picker has the focus");
  await b.page.screenshot({ path: `${SHOTS}emoji-picker.png` });
  await picker.getByRole("button", { name: "React with 👍" }).click();
  await picker.waitFor({ state: "detached" });
  const chip = (page) => messages(page, "pizza tonight?").getByTestId("reaction").filter({ hasText: "👍" });
  await chip(b.page).getByText("👍 1").waitFor();
  assert.equal(await chip(b.page).getAttribute("aria-pressed"), "true");
  await chip(a.page).getByText("👍 1").waitFor();
  assert.equal(await chip(a.page).getAttribute("aria-pressed"), "false");

  // The other adds theirs by clicking the chip; clicking one's own takes it back.
  await chip(a.page).click();
  await chip(a.page).getByText("👍 2").waitFor();
  await chip(b.page).getByText("👍 2").waitFor();
  assert.equal(await chip(a.page).getAttribute("aria-pressed"), "true");
  await a.page.screenshot({ path: `${SHOTS}reactions.png` });
  await chip(b.page).click();
  await chip(b.page).getByText("👍 1").waitFor();
  await chip(a.page).getByText("👍 1").waitFor();
  assert.equal(await chip(b.page).getAttribute("aria-pressed"), "false");
  await chip(a.page).click();
  await chip(a.page).waitFor({ state: "detached" });
  await chip(b.page).waitFor({ state: "detached" });

  // Refused by the server: shown at once, then taken back, with why.
  await b.page.route(/\/reactions\//, (route) => route.fulfill({
    status: 500, contentType: "application/problem+json",
    body: JSON.stringify({ type: "urn:harmony:problem:internal", title: "Internal error", status: 500, code: "internal" }),
  }));
  await (await actions(b.page, "pizza tonight?")).getByRole("button", { name: "React" }).click();
  await b.page.getByTestId("emoji-picker").getByRole("button", { name: "React with 🎉" }).click();
  const party = messages(b.page, "pizza tonight?").getByTestId("reaction").filter({ hasText: "🎉" });
  await messages(b.page, "pizza tonight?").getByRole("alert").getByText(/Could not react/).waitFor();
  await party.waitFor({ state: "detached" });
  await b.page.unroute(/\/reactions\//);
  await close(a, b);
});

test("a reply quotes the original; the quote follows its edit and delete, and clicking it jumps to it", async () => {
  const { a, b, asA, chat } = await group("ria", "roy");
  await say(a.page, "where shall we meet?");
  // Enough after it that the original is out of view.
  for (let i = 1; i <= 30; i++) await asA("POST", `/chats/${chat.id}/messages`, { content: `filler ${i}` });
  await messages(b.page, "filler 30").waitFor();
  await messages(b.page, "where shall we meet?").scrollIntoViewIfNeeded();
  // (Before the reply: afterwards its quote repeats the text.)

  await (await actions(b.page, "where shall we meet?")).getByRole("button", { name: "Reply" }).click();
  const bar = b.page.getByTestId("reply-bar");
  await bar.getByText("Replying to ria").waitFor();
  assert.match(await bar.innerText(), /where shall we meet\?/);
  assert.ok(await composerOf(b.page).evaluate((el) => el === document.activeElement), "the composer has the focus");
  // Escape takes the reply back.
  await composerOf(b.page).press("Escape");
  await bar.waitFor({ state: "detached" });
  await (await actions(b.page, "where shall we meet?")).getByRole("button", { name: "Reply" }).click();
  await bar.waitFor();
  await b.page.screenshot({ path: `${SHOTS}reply-bar.png` });
  await composerOf(b.page).fill("at the station");
  await composerOf(b.page).press("Enter");
  await bar.waitFor({ state: "detached" });

  for (const page of [a.page, b.page]) {
    const quote = messages(page, "at the station").getByTestId("reply-quote");
    await quote.waitFor();
    assert.match(await quote.innerText(), /ria/);
    assert.match(await quote.innerText(), /where shall we meet\?/);
  }
  // Clicked, the quote brings the original into view, highlighted.
  const original = messages(a.page, "where shall we meet?").first();
  const inView = () => original.evaluate((el) => {
    const box = el.getBoundingClientRect();
    const list = document.getElementById("messages").getBoundingClientRect();
    return box.top >= list.top && box.bottom <= list.bottom;
  });
  assert.equal(await inView(), false, "the original starts out of view");
  await messages(a.page, "at the station").getByTestId("reply-quote").click();
  await a.page.waitForFunction(() => document.querySelector('[data-highlighted="true"]')?.textContent?.includes("where shall we meet?"));
  assert.equal(await inView(), true, "the original is in view");
  await a.page.screenshot({ path: `${SHOTS}reply-jump.png` });

  // The quote reads as the original does now.
  await (await actions(a.page, "where shall we meet?")).getByRole("button", { name: "Edit" }).click();
  await a.page.getByLabel("Edit message").fill("where and when shall we meet?");
  await a.page.getByLabel("Edit message").press("Enter");
  await messages(b.page, "at the station").getByTestId("reply-quote").getByText("where and when shall we meet?").waitFor();
  await (await actions(a.page, "where and when shall we meet?")).getByRole("button", { name: "Delete" }).click();
  await a.page.getByRole("alertdialog").getByRole("button", { name: "Delete" }).click();
  for (const page of [a.page, b.page]) {
    await messages(page, "at the station").getByTestId("reply-quote").getByText("deleted message").waitFor();
  }
  await b.page.screenshot({ path: `${SHOTS}reply-deleted.png` });
  await close(a, b);
});

test("@ offers the chat's members, inserts the name, and the one mentioned gets a mention badge", async () => {
  const { a, b, asA, chat } = await group("mia", "max");
  // Max is elsewhere: the group is not open for him.
  await b.page.getByRole("button", { name: "Friends" }).click();
  await b.page.getByRole("heading", { name: "Friends", exact: true }).waitFor();

  const composer = composerOf(a.page);
  await composer.pressSequentially("lunch? @");
  const options = a.page.getByRole("listbox", { name: "People to mention" });
  await options.waitFor();
  assert.deepEqual(await options.getByRole("option").allInnerTexts().then((t) => t.map((s) => s.replace(/\s+/g, " ").trim())), ["M max @max", "E Everyone in this chat @everyone"]);
  // Escape closes it; the text stays.
  await composer.press("Escape");
  await options.waitFor({ state: "detached" });
  assert.equal(await composer.inputValue(), "lunch? @");
  await composer.press("Backspace");
  await composer.pressSequentially("@m");
  await options.waitFor();
  assert.equal(await composer.getAttribute("aria-activedescendant"), "mention-option-0");
  await a.page.screenshot({ path: `${SHOTS}mention-picker.png` });
  await composer.press("ArrowDown");
  await composer.press("ArrowUp");
  await composer.press("Enter");
  await options.waitFor({ state: "detached" });
  assert.equal(await composer.inputValue(), "lunch? @max ");
  await composer.pressSequentially("at noon");
  await composer.press("Enter");
  await messages(a.page, "lunch? @max at noon").waitFor();

  // The chat list shows max a mention, live.
  const row = b.page.getByTestId("chat-list").getByRole("listitem").filter({ hasText: chat.name });
  await row.getByTestId("mention-badge").getByText("@1").waitFor();
  assert.equal(await row.getByTestId("mention-badge").getAttribute("aria-label"), "1 mention");
  // A change is not a message: an edit or a reaction raises neither count.
  await (await actions(a.page, "lunch? @max at noon")).getByRole("button", { name: "React" }).click();
  await a.page.getByTestId("emoji-picker").getByRole("button", { name: "React with 🔥" }).click();
  await messages(a.page, "lunch? @max at noon").getByTestId("reaction").waitFor();
  await b.page.waitForTimeout(500);
  assert.equal(await row.getByLabel("1 unread").count(), 1);
  await row.getByTestId("mention-badge").getByText("@1").waitFor();
  await b.page.screenshot({ path: `${SHOTS}mention-badge.png` });

  // Opened, the mention is highlighted, and once read the badge goes.
  await row.getByRole("link").click();
  const mentioned = messages(b.page, "lunch? @max at noon");
  await mentioned.getByTestId("mention").getByText("@max").waitFor();
  assert.equal(await mentioned.getAttribute("data-mentioned"), "true");
  assert.equal(await messages(a.page, "lunch? @max at noon").getByTestId("mention").count(), 0, "only the one mentioned sees it marked");
  await b.page.getByRole("button", { name: "Friends" }).click();
  await b.page.getByRole("heading", { name: "Friends", exact: true }).waitFor();
  await b.page.waitForTimeout(300);
  assert.equal(await row.getByTestId("mention-badge").count(), 0, "read");
  // The server counts them too: a mention while away is there after a reload.
  await asA("POST", `/chats/${chat.id}/messages`, { content: "@max are you coming?" });
  await row.getByTestId("mention-badge").getByText("@1").waitFor();
  await b.page.reload();
  await row.getByTestId("mention-badge").getByText("@1").waitFor();
  await close(a, b);
});

test("changes made while offline arrive on reconnect, in order, without an unread count", async () => {
  const { a, b, asA, chat } = await group("oda", "ole");
  await say(a.page, "version one");
  await messages(b.page, "version one").waitFor();
  const [message] = (await asA("GET", `/chats/${chat.id}/messages?limit=1`)).messages;
  await b.context.setOffline(true);
  await b.page.getByTestId("offline-banner").waitFor();
  await asA("PATCH", `/chats/${chat.id}/messages/${message.id}`, { content: "version two" });
  await asA("PUT", `/chats/${chat.id}/messages/${message.id}/reactions/${encodeURIComponent("👀")}`);
  await asA("PATCH", `/chats/${chat.id}/messages/${message.id}`, { content: "version three" });
  await b.context.setOffline(false);
  const row = messages(b.page, "version three");
  await row.getByTestId("edited").waitFor();
  await row.getByTestId("reaction").getByText("👀 1").waitFor();
  assert.equal(await messages(b.page, "version two").count(), 0);
  // Live again: the next change and message come in order, with no gap to resume.
  await asA("DELETE", `/chats/${chat.id}/messages/${message.id}`);
  await b.page.getByTestId("tombstone").waitFor();
  await say(a.page, "after all that");
  await messages(b.page, "after all that").waitFor();
  assert.equal(await b.page.getByTestId("message").count(), 2);
  await close(a, b);
});

test("the keyboard reaches every message's actions through one tab stop", async () => {
  const { a, b } = await group("kai", "kim");
  await say(a.page, "first line");
  await say(a.page, "second line");
  await messages(b.page, "second line").waitFor();
  const page = b.page;
  const active = () => page.evaluate(() => {
    const el = document.activeElement;
    return `${el?.closest('[data-testid="message"]')?.querySelector('[id^="text-"]')?.textContent ?? ""} / ${el?.textContent}`;
  });
  // Back from the composer: the newest message's actions, shown while they have the focus.
  await composerOf(page).focus();
  await page.keyboard.press("Shift+Tab");
  assert.match(await active(), /second line \/ React$/);
  const toolbar = messages(page, "second line").getByRole("toolbar");
  assert.equal(await toolbar.evaluate((el) => getComputedStyle(el.parentElement).opacity), "1");
  await page.keyboard.press("ArrowRight");
  assert.match(await active(), /second line \/ Reply$/);
  await page.keyboard.press("ArrowUp");
  assert.match(await active(), /first line \/ Reply$/);
  // Only one stop: back again is the history itself.
  await page.keyboard.press("Shift+Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "messages");
  await page.keyboard.press("Tab");
  assert.match(await active(), /first line \/ Reply$/, "the stop is where the focus last was");
  await page.keyboard.press("Enter");
  await page.getByTestId("reply-bar").getByText("Replying to kai").waitFor();
  await page.keyboard.press("Escape");
  // The emoji picker by keyboard: Enter opens it, the arrows move, Enter picks, focus comes back.
  await page.keyboard.press("Shift+Tab");
  await page.keyboard.press("ArrowLeft");
  assert.match(await active(), /first line \/ React$/);
  await page.keyboard.press("Enter");
  await page.getByTestId("emoji-picker").waitFor();
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("Enter");
  await page.getByTestId("emoji-picker").waitFor({ state: "detached" });
  await messages(a.page, "first line").getByTestId("reaction").getByText("👎 1").waitFor();
  assert.match(await active(), /first line \/ React$/);
  // Escape closes the picker and nothing else.
  await page.keyboard.press("Enter");
  await page.getByTestId("emoji-picker").waitFor();
  await page.keyboard.press("Escape");
  await page.getByTestId("emoji-picker").waitFor({ state: "detached" });
  assert.match(await active(), /first line \/ React$/);
  await close(a, b);
});

test("a change frame moves the chat's position like a message: resumed from, and a gap after one is asked for", async () => {
  const { a, b, asA, chat } = await group("gus", "gia");
  // Gia's connection, watched: what her page asks, and frames the network may lose.
  const asked = [];
  let lose = false;
  let lost = 0;
  let socket;
  await b.page.routeWebSocket(/\/api\/v1\/ws$/, (ws) => {
    const server = ws.connectToServer();
    socket = { ws, server };
    ws.onMessage((m) => {
      asked.push(JSON.parse(String(m)));
      server.send(m);
    });
    server.onMessage((m) => {
      if (lose && JSON.parse(String(m)).type === "message_changed") lost += 1;
      else ws.send(m);
    });
  });
  await b.page.reload();
  await b.page.getByTestId("chat-title").getByText(chat.name).waitFor();
  await b.page.getByTestId("offline-banner").waitFor({ state: "detached" });
  const resumes = () => asked.filter((f) => f.type === "resume");
  const post = (content) => asA("POST", `/chats/${chat.id}/messages`, { content });
  const edit = (m, content) => asA("PATCH", `/chats/${chat.id}/messages/${m.id}`, { content });
  const until = async (check) => {
    for (const end = Date.now() + TIMEOUT; !check(); await b.page.waitForTimeout(20)) assert.ok(Date.now() < end, "timed out");
  };

  const one = await post("one"); // seq 1
  await messages(b.page, "one").waitFor();
  // Changes and messages in order: each follows the last, nothing to ask for.
  await edit(one, "one, again"); // 2
  await messages(b.page, "one, again").getByTestId("edited").waitFor();
  await asA("PUT", `/chats/${chat.id}/messages/${one.id}/reactions/${encodeURIComponent("👀")}`); // 3
  await messages(b.page, "one, again").getByTestId("reaction").waitFor();
  const two = await post("two"); // 4
  await messages(b.page, "two").waitFor();
  await edit(two, "two, again"); // 5
  await messages(b.page, "two, again").getByTestId("edited").waitFor();
  await b.page.waitForTimeout(300);
  assert.deepEqual(resumes(), [], "no resume while nothing is missing");

  // The connection drops with an edit on its way: the new one resumes from the last change held.
  lose = true;
  await edit(two, "two, third time"); // 6
  await until(() => lost === 1);
  lose = false;
  socket.ws.close({ code: 4000, reason: "test" });
  socket.server.close();
  await messages(b.page, "two, third time").waitFor();
  assert.deepEqual(resumes(), [{ type: "resume", chats: { [chat.id]: 5 } }]);

  // A change lost on a live connection: the next message shows the gap, and the page asks from
  // the last entry it holds. (This server sends a session nothing twice: what a proxy drops
  // after the server sent it stays lost, so only the request is checked here.)
  await b.page.getByTestId("offline-banner").waitFor({ state: "detached" });
  lose = true;
  await asA("PUT", `/chats/${chat.id}/messages/${two.id}/reactions/${encodeURIComponent("🎉")}`); // 7
  await until(() => lost === 2);
  lose = false;
  await post("three"); // 8
  await messages(b.page, "three").waitFor();
  await until(() => resumes().length === 2);
  assert.deepEqual(resumes()[1], { type: "resume", chats: { [chat.id]: 6 } });
  await b.page.waitForTimeout(300);
  assert.equal(resumes().length, 2, "asked once");
  assert.equal(await b.page.getByTestId("message").count(), 3, "no change shows as a message");
  await close(a, b);
});

noConsoleErrors();

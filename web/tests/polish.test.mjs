// Browser tests for issue 20's polish: links and a little Markdown in messages (never HTML), a
// composer that grows and keeps a draft per chat, and the keyboard (focus, Escape, the quick
// switcher, the skip link).
import { test } from "node:test";
import assert from "node:assert/strict";
import { base, browser, messages, person, setup, SHOTS, TIMEOUT } from "./harness.mjs";

const noConsoleErrors = setup();

async function group(page, name) {
  await page.getByRole("button", { name: "New group" }).click();
  await page.getByLabel("Group name").fill(name);
  await page.getByRole("button", { name: "Create" }).click();
  await page.getByTestId("chat-title").getByText(name, { exact: true }).waitFor();
}

const composerOf = (page) => page.getByLabel("Message", { exact: true });
/** Waits until the element with this id has the focus. */
const focused = (page, id) => page.waitForFunction((want) => document.activeElement?.id === want, id, { timeout: TIMEOUT });
const openChat = (page, name) => page.getByTestId("chat-list").getByRole("link").filter({ hasText: name }).click();

test("messages show links and a little Markdown as elements, and HTML as typed", async () => {
  const pia = await person("pia");
  const page = pia.page;
  await group(page, "notes");
  const composer = composerOf(page);
  await composer.fill([
    "**bold** and *italic* and _also italic_, snake_case_name and `a <code> span`",
    "see https://example.com/path?q=1. or www.example.org",
    "> quoted **loud** line",
    "```",
    "fn main() {",
    "    println!(\"<i>hi</i>\");",
    "}",
    "```",
    "after the block",
  ].join("\n"));
  await composer.press("Enter");
  const rich = messages(page, "after the block");
  await rich.waitFor();
  assert.equal(await rich.locator("strong").first().innerText(), "bold");
  assert.deepEqual(await rich.locator("p em").allInnerTexts(), ["italic", "also italic"]);
  assert.equal(await rich.locator(":not(pre) > code").innerText(), "a <code> span");
  assert.equal(await rich.locator("pre code").innerText(), 'fn main() {\n    println!("<i>hi</i>");\n}');
  assert.equal(await rich.locator("pre i").count(), 0);
  assert.equal(await rich.locator("blockquote").innerText(), "quoted loud line");
  assert.equal(await rich.locator("blockquote strong").innerText(), "loud");
  const links = rich.locator('a[href][target="_blank"][rel~="noopener"][rel~="noreferrer"]');
  assert.deepEqual(await links.evaluateAll((as) => as.map((a) => [a.getAttribute("href"), a.textContent])), [
    ["https://example.com/path?q=1", "https://example.com/path?q=1"],
    ["https://www.example.org/", "www.example.org"],
  ]);
  assert.match(await rich.innerText(), /snake_case_name/);

  // Neither a script address nor HTML ever becomes more than text.
  await composer.fill("javascript:alert(1) and data:text/html,<b>x</b> and <script>alert(2)</script> <b>x</b>");
  await composer.press("Enter");
  const plain = messages(page, "javascript:alert(1)");
  await plain.waitFor();
  assert.equal(await plain.locator("a").count(), 0);
  assert.equal(await plain.locator("b, script").count(), 0);
  assert.match(await plain.innerText(), /<script>alert\(2\)<\/script> <b>x<\/b>/);
  await page.screenshot({ path: `${SHOTS}formatted-message.png` });
  await pia.context.close();
});

test("the composer keeps a draft per chat across switches and reloads, until it is sent", async () => {
  const quin = await person("quin");
  const page = quin.page;
  await group(page, "alpha");
  await group(page, "beta");
  const composer = composerOf(page);
  await openChat(page, "alpha");
  await page.getByTestId("chat-title").getByText("alpha").waitFor();
  await composer.fill("half a thought\nfor alpha");
  await openChat(page, "beta");
  await page.getByTestId("chat-title").getByText("beta").waitFor();
  assert.equal(await composer.inputValue(), "", "beta has its own draft");
  await composer.fill("beta's draft");
  await openChat(page, "alpha");
  await page.getByTestId("chat-title").getByText("alpha").waitFor();
  assert.equal(await composer.inputValue(), "half a thought\nfor alpha");
  await page.reload();
  await page.getByTestId("chat-title").getByText("alpha").waitFor();
  assert.equal(await composer.inputValue(), "half a thought\nfor alpha", "kept across a reload");
  // Sent: gone from the composer, and not back after a reload.
  await composer.press("Enter");
  await messages(page, "for alpha").waitFor();
  assert.equal(await composer.inputValue(), "");
  await page.reload();
  await messages(page, "for alpha").waitFor();
  assert.equal(await composer.inputValue(), "", "a sent draft is not restored");
  await openChat(page, "beta");
  await page.getByTestId("chat-title").getByText("beta").waitFor();
  assert.equal(await composer.inputValue(), "beta's draft");
  // Sign-out forgets every draft: none is stored, none comes back.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  const keys = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("harmony.draft.")));
  assert.deepEqual(keys, []);
  await page.getByLabel("Username").fill("quin");
  await page.getByLabel("Password").fill("password-quin");
  await page.getByRole("button", { name: "Sign in" }).click();
  await openChat(page, "beta");
  await page.getByTestId("chat-title").getByText("beta").waitFor();
  assert.equal(await composer.inputValue(), "");
  await quin.context.close();
});

test("the composer grows with its text up to a limit, Shift+Enter adds a line, Enter sends", async () => {
  const ron = await person("ron");
  const page = ron.page;
  await group(page, "tall");
  const composer = composerOf(page);
  const height = async () => (await composer.boundingBox()).height;
  await composer.fill("one line");
  const one = await height();
  for (const line of ["two", "three", "four", "five"]) {
    await composer.press("Shift+Enter");
    await composer.pressSequentially(line);
  }
  assert.equal(await composer.inputValue(), "one line\ntwo\nthree\nfour\nfive", "Shift+Enter starts a line, sends nothing");
  const five = await height();
  assert.ok(five > one + 60, `5 lines: ${five}px, 1 line: ${one}px`);
  // Past 40% of the window it stops growing and scrolls.
  await composer.fill(Array.from({ length: 60 }, (_, i) => `line ${i}`).join("\n"));
  const tall = await height();
  assert.ok(tall <= 800 * 0.4 + 1 && tall > five, `60 lines: ${tall}px`);
  assert.ok(await composer.evaluate((el) => el.scrollHeight > el.clientHeight && getComputedStyle(el).overflowY === "auto"));
  await page.screenshot({ path: `${SHOTS}composer-tall.png` });
  await composer.press("Enter");
  await messages(page, "line 59").waitFor();
  assert.equal(await height(), one, "back to one line once sent");
  await ron.context.close();
});

test("Ctrl+K finds a chat by name, Enter opens it with its composer focused, Escape closes", async () => {
  const sue = await person("sue");
  const page = sue.page;
  for (const name of ["kitchen duty", "garden club", "garage band"]) await group(page, name);
  // A chat that opens has its composer focused.
  await focused(page, "composer");
  await page.getByRole("button", { name: "Members" }).click();
  await page.getByRole("button", { name: "Close members" }).waitFor();
  await page.keyboard.press("Control+k");
  const dialog = page.getByRole("dialog", { name: "Jump to a chat" });
  await dialog.waitFor();
  assert.equal(await dialog.getAttribute("aria-modal"), "true");
  const filter = dialog.getByRole("combobox", { name: "Jump to a chat" });
  assert.ok(await filter.evaluate((el) => el === document.activeElement), "the filter has the focus");
  await page.keyboard.type("gard");
  assert.deepEqual(await dialog.getByRole("option").allInnerTexts(), ["garden club"]);
  await page.screenshot({ path: `${SHOTS}quick-switcher.png` });
  // Focus stays in the dialog.
  await page.keyboard.press("Tab");
  assert.ok(await filter.evaluate((el) => el === document.activeElement), "Tab stays in the dialog");
  await page.keyboard.press("Enter");
  await page.getByTestId("chat-title").getByText("garden club").waitFor();
  await dialog.waitFor({ state: "detached" });
  await focused(page, "composer");
  assert.equal(new URL(page.url()).pathname.startsWith("/chats/"), true);

  // Escape closes the switcher, and only it: the members panel behind stays open.
  await page.getByRole("button", { name: "Members" }).click();
  await page.getByLabel("Chat name").focus();
  await page.keyboard.press("Control+k");
  await dialog.waitFor();
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "detached" });
  await focused(page, "rename");
  await page.getByRole("complementary", { name: "Members" }).waitFor();
  // Escape in a form of the panel closes the panel, and focus goes back to its button.
  await page.getByLabel("Add someone").focus();
  await page.keyboard.press("Escape");
  await page.getByRole("complementary", { name: "Members" }).waitFor({ state: "detached" });
  assert.ok(await page.getByRole("button", { name: "Members" }).evaluate((b) => b === document.activeElement));

  // The arrow keys pick another match; the sidebar's button opens it too.
  await page.getByRole("button", { name: "Jump to chat" }).click();
  await dialog.waitFor();
  assert.deepEqual(await dialog.getByRole("option").allInnerTexts(), ["garage band", "garden club", "kitchen duty"], "newest first");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("Enter");
  await page.getByTestId("chat-title").getByText("kitchen duty").waitFor();
  await focused(page, "composer");
  await sue.context.close();
});

test("Tab reaches the skip link first, then chat rows with a visible ring; Escape closes the new group form", async () => {
  const tom = await person("tom");
  const page = tom.page;
  await group(page, "first");
  await group(page, "second");
  await page.reload();
  await focused(page, "composer");
  // From the start of the page: the focus on the document itself, as after a load.
  await page.evaluate(() => {
    document.body.tabIndex = -1;
    document.body.focus();
    document.body.removeAttribute("tabindex");
  });
  await page.keyboard.press("Tab");
  const skip = page.getByRole("link", { name: "Skip to messages" });
  assert.ok(await skip.evaluate((el) => el === document.activeElement), "the skip link comes first");
  const box = await skip.boundingBox();
  assert.ok(box && box.width > 50 && box.y >= 0, `the skip link shows when focused: ${JSON.stringify(box)}`);
  await page.screenshot({ path: `${SHOTS}skip-link.png` });
  // On to the chat rows (the open chat's, then the other's): each shows a ring when focused.
  let row = null;
  for (let i = 0; i < 12 && !row?.text.includes("first"); i++) {
    await page.keyboard.press("Tab");
    row = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el?.closest('[data-testid="chat-list"]')) return null;
      const style = getComputedStyle(el);
      return { text: el.textContent, ring: el.matches(":focus-visible"), outline: [style.outlineStyle, style.outlineWidth, style.outlineOffset] };
    });
  }
  assert.ok(row, "a chat row takes the focus");
  assert.ok(row.ring, "focus-visible");
  assert.deepEqual(row.outline, ["solid", "2px", "-2px"], "a ring drawn inside the row (the list would clip one outside)");
  await page.screenshot({ path: `${SHOTS}chat-row-focus.png` });
  await page.keyboard.press("Enter");
  await page.getByTestId("chat-title").getByText("first").waitFor();
  await focused(page, "composer");
  // The skip link goes to the messages, where the keyboard scrolls.
  await skip.focus();
  await page.keyboard.press("Enter");
  await focused(page, "messages");
  // Enter on the open chat's row goes to its composer.
  await page.getByTestId("chat-list").getByRole("link").filter({ hasText: "first" }).focus();
  await page.keyboard.press("Enter");
  await focused(page, "composer");
  // Escape closes the new group form, and focus goes back to its button.
  const newGroup = page.getByRole("button", { name: "New group" });
  await newGroup.click();
  await focused(page, "group-name");
  await page.keyboard.press("Escape");
  await page.getByLabel("Group name").waitFor({ state: "detached" });
  assert.ok(await newGroup.evaluate((b) => b === document.activeElement));
  assert.equal(await newGroup.getAttribute("aria-expanded"), "false");
  await tom.context.close();
});

test("signing in from a link to a chat lands on that chat, ready to write", async () => {
  await fetch(`${base}/api/v1/auth/register`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "uli", password: "password-uli" }),
  });
  const login = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "uli", password: "password-uli" }),
  }).then((r) => r.json());
  const chat = await fetch(`${base}/api/v1/chats`, {
    method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${login.access_token}` },
    body: JSON.stringify({ kind: "group", name: "linked" }),
  }).then((r) => r.json());
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/chats/${chat.id}`);
  await page.getByLabel("Username").fill("uli");
  await page.getByLabel("Password").fill("password-uli");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("chat-title").getByText("linked").waitFor();
  assert.equal(new URL(page.url()).pathname, `/chats/${chat.id}`);
  await focused(page, "composer");
  await context.close();
});

noConsoleErrors();

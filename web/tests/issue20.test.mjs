// Browser tests for issue 20: scrolling back keeps your place, the members panel on a phone, an
// unsent message is yours and goes out when the connection is back, the open chat has no badge.
import { test } from "node:test";
import assert from "node:assert/strict";
import { apiAs, base, befriend, messages, person, setup, SHOTS } from "./harness.mjs";

const noConsoleErrors = setup();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A direct chat between `a` (signed up in the browser) and `b` (made here), with `count`
 *  messages through the API, by each in turn or (`onlyB`) all by `b`; and `b`'s API client. */
async function longDirectChat(a, b, count, onlyB = false) {
  await fetch(`${base}/api/v1/auth/register`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: b, password: `password-${b}` }),
  });
  const [asA, asB] = [await apiAs(a), await apiAs(b)];
  const request = await asB("POST", "/friends/requests", { username: a });
  await asA("POST", `/friends/requests/${request.id}/accept`);
  const me = await asA("GET", "/users/me");
  const chat = await asB("POST", "/chats", { kind: "direct", member_ids: [me.id] });
  for (let i = 1; i <= count; i++) await (i % 2 && !onlyB ? asA : asB)("POST", `/chats/${chat.id}/messages`, { content: `line ${i}` });
  return { chat, asB };
}

/** The first message whose bottom is below the top of the list: its seq and its y. */
const topShown = (page) => page.getByTestId("messages").evaluate((list) => {
  const top = list.getBoundingClientRect().top;
  const first = [...list.querySelectorAll('[data-testid="message"]')].find((m) => m.getBoundingClientRect().bottom > top + 1);
  return first && { seq: Number(first.dataset.seq), y: first.getBoundingClientRect().top };
});

test("scrolling back loads one older page at a time and keeps your place", async () => {
  const lea = await person("lea");
  const { chat } = await longDirectChat("lea", "max", 240);
  const page = lea.page;
  const history = [];
  page.on("request", (r) => { if (r.method() === "GET" && /\/chats\/[^/]+\/messages/.test(r.url())) history.push(r.url()); });
  // Older pages come slowly, so the wheel keeps turning while one is on its way.
  await page.route(/\/messages\?.*before=/, async (route) => { await sleep(800); await route.continue(); });
  await page.goto(`${base}/chats/${chat.id}`);
  await page.locator('[data-testid="message"][data-seq="240"]').waitFor();
  assert.equal(history.length, 1);
  const list = page.getByTestId("messages");
  // Some way below the top of the first page; then the wheel, a notch at a time, to the top.
  await list.evaluate((el) => { el.scrollTop = -(el.scrollHeight - el.clientHeight) + 600; });
  const box = await list.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.waitForTimeout(200);
  assert.equal(history.length, 1);
  for (let i = 0; i < 7; i++) {
    await page.mouse.wheel(0, -100);
    await page.waitForTimeout(60);
  }
  await page.getByText("Loading older messages…").waitFor();
  await page.waitForTimeout(300);
  const before = await topShown(page);
  await page.locator('[data-testid="message"][data-seq="190"]').waitFor({ state: "attached" });
  await page.waitForTimeout(1500);
  const after = await page.locator(`[data-testid="message"][data-seq="${before.seq}"]`).boundingBox();
  await page.screenshot({ path: `${SHOTS}scrollback.png` });
  // The first page, then the one older page the wheel reached: not one per notch, not all.
  assert.equal(history.length, 2, `${history.length} history requests`);
  assert.ok(Math.abs(after.y - before.y) < 50, `message ${before.seq} moved from ${before.y} to ${after.y}`);
  assert.equal(await page.locator('[data-testid="message"][data-seq="1"]').count(), 0, "message 1 is not loaded yet");
  await lea.context.close();
});

test("on a phone the members panel is a sheet over the chat; on a desktop it sits beside it", async () => {
  const ned = await person("ned", { width: 390, height: 844 });
  const page = ned.page;
  await page.getByRole("button", { name: "New group" }).click();
  await page.getByLabel("Group name").fill("crew");
  await page.getByRole("button", { name: "Create" }).click();
  await page.getByTestId("chat-title").getByText("crew").waitFor();
  await page.getByLabel("Message", { exact: true }).fill("a message long enough to wrap badly if anything squeezed the chat");
  await page.keyboard.press("Enter");
  await messages(page, "a message long enough").waitFor();
  const open = page.getByRole("button", { name: "Members", exact: true });
  const panel = page.getByRole("complementary", { name: "Members" });
  await open.click();
  await panel.getByText("@ned").waitFor();
  const sheet = await panel.boundingBox();
  assert.ok(sheet.x <= 0 && sheet.width >= 390 && sheet.height >= 800, `the panel covers ${JSON.stringify(sheet)}`);
  await page.screenshot({ path: `${SHOTS}members-phone.png` });
  await page.keyboard.press("Escape");
  await panel.waitFor({ state: "detached" });
  await open.click();
  await page.getByRole("button", { name: "Close members" }).click();
  await panel.waitFor({ state: "detached" });
  assert.ok((await page.getByLabel("Message", { exact: true }).boundingBox()).width > 300, "the composer is back at full width");
  assert.ok(await open.evaluate((b) => b === document.activeElement), "focus is back on the Members button");
  // A desktop has room for both: the panel is beside the chat.
  await page.setViewportSize({ width: 1200, height: 800 });
  await open.click();
  await panel.getByText("@ned").waitFor();
  const side = await panel.boundingBox();
  const composer = await page.getByLabel("Message", { exact: true }).boundingBox();
  assert.ok(side.width < 400 && side.x > 800, `the panel is at ${JSON.stringify(side)}`);
  assert.ok(composer.width > 300 && composer.x + composer.width <= side.x, `the composer is at ${JSON.stringify(composer)}`);
  await ned.context.close();
});

test("a message sent offline is shown as mine and goes out by itself, once, when the connection is back", async () => {
  const oli = await person("oli");
  const pam = await person("pam");
  await befriend(oli, "oli", pam, "pam");
  await pam.page.getByRole("button", { name: "Message" }).click();
  await pam.page.getByLabel("Message", { exact: true }).fill("are you there?");
  await pam.page.keyboard.press("Enter");
  await oli.page.getByTestId("chat-list").getByText("are you there?").click();
  await messages(oli.page, "are you there?").waitFor();

  await oli.context.setOffline(true);
  await oli.page.getByLabel("Message", { exact: true }).fill("on my way");
  await oli.page.keyboard.press("Enter");
  const unsent = oli.page.getByTestId("pending-message").filter({ hasText: "on my way" });
  await unsent.getByText("Not sent yet").waitFor();
  // Oli's own, under his name: not a line of Pam's message above it.
  await unsent.getByText("@oli").waitFor();
  await oli.page.screenshot({ path: `${SHOTS}offline-send.png` });

  await oli.context.setOffline(false);
  await messages(oli.page, "on my way").waitFor();
  await unsent.waitFor({ state: "detached" });
  await oli.page.screenshot({ path: `${SHOTS}offline-send-delivered.png` });
  await messages(pam.page, "on my way").waitFor();
  await oli.page.waitForTimeout(500);
  assert.equal(await messages(oli.page, "on my way").count(), 1);
  assert.equal(await messages(pam.page, "on my way").count(), 1);
  await pam.page.reload();
  await messages(pam.page, "on my way").waitFor();
  assert.equal(await messages(pam.page, "on my way").count(), 1, "the server holds it once");
  await oli.context.close();
  await pam.context.close();
});

test("a message the server refuses says why, and its text goes back to the composer", async () => {
  const ray = await person("ray");
  await ray.page.getByRole("button", { name: "New group" }).click();
  await ray.page.getByLabel("Group name").fill("bells");
  await ray.page.getByRole("button", { name: "Create" }).click();
  await ray.page.getByTestId("chat-title").getByText("bells").waitFor();
  const composer = ray.page.getByLabel("Message", { exact: true });
  await composer.fill("ring \u0007 the bell");
  await composer.press("Enter");
  const refused = ray.page.getByTestId("pending-message").filter({ hasText: "ring" });
  await refused.getByText("must not contain control characters").waitFor();
  await refused.getByText("@ray").waitFor();
  // A retry would be refused again: none is offered.
  assert.equal(await refused.getByRole("button", { name: "Retry" }).count(), 0);
  await ray.page.screenshot({ path: `${SHOTS}refused-send.png` });
  await refused.getByRole("button", { name: "Edit" }).click();
  await refused.waitFor({ state: "detached" });
  assert.equal(await composer.inputValue(), "ring \u0007 the bell");
  await ray.context.close();
});

test("the open chat never shows an unread badge", async () => {
  const tia = await person("tia");
  const { chat, asB: asUma } = await longDirectChat("tia", "uma", 120, true);
  const page = tia.page;
  // On a slow network the chat list comes back late: made before the server took the read
  // marker, it lands after the chat was marked read.
  let slow = false;
  await page.route(/\/api\/v1\/chats(\?[^/]*)?$/, async (route) => {
    if (route.request().method() !== "GET" || !slow) return route.continue();
    const response = await route.fetch();
    await sleep(700);
    await route.fulfill({ response });
  });
  const row = page.getByTestId("chat-list").getByRole("listitem").filter({ hasText: "uma" });
  for (let load = 1; load <= 4; load++) {
    if (load > 1) await asUma("POST", `/chats/${chat.id}/messages`, { content: `news ${load}` });
    slow = load % 2 === 1;
    await page.goto(`${base}/chats/${chat.id}`);
    await messages(page, load > 1 ? `news ${load}` : "line 120").waitFor();
    await page.waitForLoadState("networkidle");
    await page.waitForTimeout(300);
    assert.equal(await row.getByLabel(/unread/).count(), 0, `load ${load}: ${await row.innerText()}`);
  }
  // A new message in the open chat raises no badge, and once read none comes back on leaving.
  await asUma("POST", `/chats/${chat.id}/messages`, { content: "still there?" });
  await messages(page, "still there?").waitFor();
  await page.waitForTimeout(500);
  assert.equal(await row.getByLabel(/unread/).count(), 0);
  await page.getByRole("button", { name: "Friends" }).click();
  await page.getByRole("heading", { name: "Friends", exact: true }).waitFor();
  await page.waitForTimeout(300);
  assert.equal(await row.getByLabel(/unread/).count(), 0, "read before leaving");
  await tia.context.close();
});

noConsoleErrors();

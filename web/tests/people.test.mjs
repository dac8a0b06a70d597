// Asking before removing someone, a direct chat shown as the other person, tap targets on a
// phone, and browser notifications while the tab is hidden.
import { test } from "node:test";
import assert from "node:assert/strict";
import { apiAs, base, messages, person, setup, SHOTS } from "./harness.mjs";

const noConsoleErrors = setup();

async function register(name) {
  const r = await fetch(`${base}/api/v1/auth/register`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: name, password: `password-${name}`, display_name: name }),
  });
  assert.ok(r.ok, `register ${name}: ${r.status}`);
}

/** `name` (signed up in the browser) and a new `other`, friends; `other`'s API client. */
async function friends(name, other) {
  await register(other);
  const [a, b] = [await apiAs(name), await apiAs(other)];
  const request = await b("POST", "/friends/requests", { username: name });
  await a("POST", `/friends/requests/${request.id}/accept`);
  return { a, b, me: await a("GET", "/users/me") };
}

test("removing a member asks first: Cancel and Escape keep them, Remove removes them", async () => {
  const olga = await person("olga");
  const { a } = await friends("olga", "pete");
  const pete = await (await apiAs("pete"))("GET", "/users/me");
  const chat = await a("POST", "/chats", { kind: "group", name: "book club", member_ids: [pete.id] });
  const page = olga.page;
  await page.goto(`${base}/chats/${chat.id}`);
  await page.getByRole("button", { name: "Members" }).click();
  const panel = page.getByRole("complementary", { name: "Members" });
  const row = panel.getByRole("listitem").filter({ hasText: "@pete" });
  await row.waitFor();
  const dialog = page.getByRole("alertdialog", { name: "Remove pete?" });
  await page.getByRole("button", { name: "Remove pete" }).click();
  await dialog.waitFor();
  assert.ok(await dialog.getByRole("button", { name: "Cancel" }).evaluate((b) => b === document.activeElement), "focus on Cancel");
  await page.screenshot({ path: `${SHOTS}confirm-remove.png` });
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "detached" });
  await page.getByRole("button", { name: "Remove pete" }).click();
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "detached" });
  await panel.waitFor();
  assert.equal(await row.count(), 1, "pete is still a member");
  await page.getByRole("button", { name: "Remove pete" }).click();
  await dialog.getByRole("button", { name: "Remove", exact: true }).click();
  await row.waitFor({ state: "detached" });
  await olga.context.close();
});

test("a direct chat shows the other person: no member count, no roles", async () => {
  const rosa = await person("rosa");
  const { b, me } = await friends("rosa", "sam");
  const chat = await b("POST", "/chats", { kind: "direct", member_ids: [me.id] });
  const page = rosa.page;
  await page.goto(`${base}/chats/${chat.id}`);
  await page.getByTestId("chat-title").getByText("sam").waitFor();
  await page.getByTestId("peer-line").getByText("@sam").waitFor();
  const header = page.locator("header").filter({ has: page.getByTestId("chat-title") });
  assert.doesNotMatch(await header.innerText(), /members?\b/i, "no member count");
  assert.equal(await page.getByRole("button", { name: "Members" }).count(), 0);
  await page.getByRole("button", { name: "Profile" }).click();
  const panel = page.getByRole("complementary", { name: "Profile" });
  await panel.getByText("@sam").waitFor();
  assert.doesNotMatch(await panel.innerText(), /\b(owner|admin|member)\b/i, "no roles");
  await page.screenshot({ path: `${SHOTS}direct-chat.png` });
  for (const name of ["Rename", "Add", "Remove sam"]) assert.equal(await panel.getByRole("button", { name }).count(), 0, name);
  assert.equal(await panel.getByLabel("Add someone").count(), 0);
  await rosa.context.close();
});

/** Visible buttons and links smaller than 44×44 (links inside messages aside). */
const smallTargets = (page) => page.evaluate(() =>
  [...document.querySelectorAll('button, a[href], [role="button"]')]
    .filter((el) => el.checkVisibility() && !el.closest('[data-testid="message"]') && !el.classList.contains("sr-only"))
    .map((el) => ({ el, box: el.getBoundingClientRect() }))
    .filter(({ box }) => box.width < 44 || box.height < 44)
    .map(({ el, box }) => `${el.getAttribute("aria-label") ?? el.textContent}: ${Math.round(box.width)}×${Math.round(box.height)}`));

test("on a phone every control is at least 44×44", async () => {
  const tess = await person("tess", { width: 390, height: 844 });
  const { a, b, me } = await friends("tess", "ugo");
  const group = await a("POST", "/chats", { kind: "group", name: "trip" });
  await a("POST", `/chats/${group.id}/messages`, { content: "see https://example.com" });
  await b("POST", "/chats", { kind: "direct", member_ids: [me.id] });
  const page = tess.page;
  await page.getByTestId("chat-list").getByText("trip").waitFor();
  assert.deepEqual(await smallTargets(page), [], "chat list");
  await page.screenshot({ path: `${SHOTS}tap-targets-list.png` });
  await page.getByTestId("chat-list").getByText("trip").click();
  await messages(page, "see https://example.com").waitFor();
  await page.getByLabel("Message", { exact: true }).fill("typed");
  assert.deepEqual(await smallTargets(page), [], "chat");
  await page.screenshot({ path: `${SHOTS}tap-targets-phone.png` });
  await page.getByRole("button", { name: "Members" }).click();
  await page.getByRole("complementary", { name: "Members" }).getByText("@tess").waitFor();
  assert.deepEqual(await smallTargets(page), [], "members panel");
  await tess.context.close();
});

test("a hidden tab notifies of a message, asks permission only when told to, and a muted chat is quiet", async () => {
  const vera = await person("vera");
  const { b, me } = await friends("vera", "walt");
  await vera.context.grantPermissions(["notifications"], { origin: base });
  // A stand-in for the browser's notifications: it records what would be shown.
  await vera.context.addInitScript(() => {
    window.__notes = [];
    window.__asked = 0;
    window.Notification = class {
      static permission = "default";
      static async requestPermission() {
        window.__asked += 1;
        window.Notification.permission = "granted";
        return "granted";
      }
      constructor(title, options) { window.__notes.push({ title, body: options?.body }); }
      close() {}
    };
  });
  const chat = await b("POST", "/chats", { kind: "direct", member_ids: [me.id] });
  const page = vera.page;
  await page.goto(`${base}/chats/${chat.id}`);
  await page.getByTestId("chat-title").getByText("walt").waitFor();
  assert.equal(await page.evaluate(() => window.__asked), 0, "not asked on load");
  await page.getByRole("button", { name: "Enable notifications" }).click();
  await page.getByRole("button", { name: "Enable notifications" }).waitFor({ state: "detached" });
  assert.equal(await page.evaluate(() => window.__asked), 1);
  await page.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
    Object.defineProperty(document, "hidden", { value: true, configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  const long = `hello vera ${"x".repeat(150)}`;
  await b("POST", `/chats/${chat.id}/messages`, { content: long });
  await page.waitForFunction(() => window.__notes.length === 1);
  const [note] = await page.evaluate(() => window.__notes);
  assert.equal(note.title, "walt");
  assert.ok(note.body.startsWith("walt: hello vera x"), note.body);
  assert.equal([...note.body].length, 100);
  // Muted: the message arrives, and no notification.
  const mute = page.getByRole("button", { name: "Mute notifications" });
  await mute.click();
  assert.equal(await mute.getAttribute("aria-pressed"), "true");
  await b("POST", `/chats/${chat.id}/messages`, { content: "quiet please" });
  await messages(page, "quiet please").waitFor();
  await page.waitForTimeout(200);
  assert.equal(await page.evaluate(() => window.__notes.length), 1, "no notification for a muted chat");
  // Kept across a reload, for this user and chat.
  await page.reload();
  assert.equal(await page.getByRole("button", { name: "Mute notifications" }).getAttribute("aria-pressed"), "true");
  await vera.context.close();
});

noConsoleErrors();

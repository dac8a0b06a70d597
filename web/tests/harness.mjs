// What the browser tests share: the real harmony binary (with the UI built in) on a free port and
// a temporary data directory, driven by Playwright in Debian's Chromium. A test file calls
// `setup()` once; screenshots go to tests/screenshots/.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { chromium } from "playwright-core";

const BIN = process.env.UI_TEST_HARMONY ?? new URL("../../target/debug/harmony", import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const SHOTS = new URL("./screenshots/", import.meta.url).pathname;
export const TIMEOUT = 15_000;

let server;
let dataDir;
/** The server's address and the browser: set by `setup()`'s before hook. */
export let base;
export let browser;
const consoleErrors = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

async function waitReady(url) {
  const deadline = Date.now() + TIMEOUT;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`harmony exited with ${server.exitCode}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("harmony did not become ready");
}

/** Starts a server and a browser for the file's tests, and ends the file with a test that no
 *  page logged an error. */
export function setup() {
  before(async () => {
    const port = await freePort();
    dataDir = mkdtempSync(join(tmpdir(), "harmony-ui-"));
    base = `http://127.0.0.1:${port}`;
    server = spawn(BIN, [], {
      // Long chats are filled through the API faster than a person types.
      env: { ...process.env, HARMONY_LISTEN: `127.0.0.1:${port}`, HARMONY_DATA_DIR: dataDir, HARMONY_LIMITS__SEND_BURST: "1000", RUST_LOG: "warn",
        // Someone whose last tab closed is offline after half a second, not ten.
        HARMONY_PRESENCE__GRACE_MS: "500" },
      stdio: ["ignore", "inherit", "inherit"],
    });
    await waitReady(base);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
  });

  after(async () => {
    await browser?.close();
    server?.kill("SIGTERM");
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  return function noConsoleErrors() {
    test("no console errors", () => {
      assert.deepEqual(consoleErrors, []);
    });
  };
}

/** A new user signed up in a fresh browser context. */
export async function person(name, viewport = { width: 1200, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("console", (m) => {
    if (m.type() === "error" && !/Failed to load resource|WebSocket/.test(m.text())) consoleErrors.push(`${name}: ${m.text()}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`${name}: ${e.message}`));
  await page.goto(base);
  await page.getByRole("button", { name: "New here? Create an account" }).click();
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill(`password-${name}`);
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByTestId("me").waitFor();
  return { context, page };
}

export async function befriend(a, aName, b, bName) {
  await a.page.getByRole("button", { name: "Friends" }).click();
  await a.page.getByLabel("Find people").fill(bName);
  await a.page.getByRole("button", { name: "Add friend" }).click();
  await a.page.getByText(`Request sent to ${bName}.`).waitFor();
  // The request arrives live (a frame, no polling): a badge on the Friends button.
  await b.page.getByLabel("1 friend requests waiting").waitFor();
  await b.page.getByRole("button", { name: "Friends" }).click();
  await b.page.getByRole("button", { name: "Accept" }).click();
  await b.page.getByTestId("friends").getByText(aName).waitFor();
}

/** A bearer-token client of the API for `name` (whose password is `password-<name>`), as
 *  another device of the same account would be. */
export async function apiAs(name) {
  const login = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: name, password: `password-${name}` }),
  }).then((r) => r.json());
  const headers = { "content-type": "application/json", authorization: `Bearer ${login.access_token}` };
  return async (method, path, body) => {
    const r = await fetch(`${base}/api/v1${path}`, { method, headers, body: body && JSON.stringify(body) });
    assert.ok(r.ok, `${method} ${path}: ${r.status}`);
    return r.status === 204 ? null : r.json();
  };
}

export const messages = (page, text) => page.getByTestId("message").filter({ hasText: text });

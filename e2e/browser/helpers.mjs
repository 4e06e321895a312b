// Shared helpers of the browser tests: the environment browser_test.go
// sets, the chromium launch, screenshots, and small waits with deadlines.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

/** env returns a required environment variable, or throws. */
export function env(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run these tests through browser_test.go (go test ./e2e/browser/)`);
  }
  return v;
}

/** The servers and the artifacts directory, from browser_test.go. */
export const URL_MAIN = () => env('GATEHOUSE_URL');
export const URL_OTHER = () => env('GATEHOUSE_URL_OTHER');
export const URL_LAB = () => env('GATEHOUSE_LAB_URL');
export const ADMIN_KEY = () => env('GATEHOUSE_ADMIN_KEY');
export const ARTIFACTS = () => env('GATEHOUSE_ARTIFACTS');

/** Chromium's flags: headless, no sandbox (containers), nothing phoning home. */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

/**
 * launch starts Debian's chromium, never a downloaded browser. Playwright
 * gives it a fresh temporary user-data-dir, removed at close.
 */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.GATEHOUSE_CHROMIUM || '/usr/bin/chromium',
    args: ARGS,
    timeout: 30_000,
  });
}

/** Default bound of each Playwright action and wait, in ms. */
export const ACTION_TIMEOUT = 15_000;

/** newContext is a fresh browser context (its own cookie jar) with bounds set. */
export async function newContext(browser, options = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  ctx.setDefaultTimeout(ACTION_TIMEOUT);
  ctx.setDefaultNavigationTimeout(ACTION_TIMEOUT);
  return ctx;
}

/** unique returns a fresh username with prefix. */
export function unique(prefix) {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** A password that satisfies the policy (8 to 128 characters). */
export const PASSWORD = 'correct horse battery staple';

/** screenshot saves a full-page PNG of page as ARTIFACTS/name.png. */
export async function screenshot(page, name) {
  const path = join(ARTIFACTS(), `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** signupAPI creates a user through the JSON API, from Node (no browser). */
export async function signupAPI(base, username, password) {
  const res = await fetch(`${base}/v1/users`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.text();
  assert.equal(res.status, 201, `POST /v1/users ${username}: ${res.status} ${body}`);
  return JSON.parse(body).id;
}

/** loginForm logs page's context in through the server-rendered /login. */
export async function loginForm(page, base, username, password) {
  await page.goto(`${base}/login`);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([
    page.waitForURL(`${base}/account`),
    page.click('form[action="/login"] button[type=submit]'),
  ]);
  assert.equal(await page.textContent('#who'), username, 'the account page names the user');
}

/**
 * poll calls fn until it returns a truthy value, and returns it; it throws
 * with what when timeoutMs passes first.
 */
export async function poll(what, fn, timeoutMs = 10_000, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) {
      return last;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not true within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// The server-rendered pages (session mode, without JavaScript), hybrid
// token mode from a page's script, and what HttpOnly hides from scripts.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  PASSWORD, URL_MAIN, launch, loginForm, newContext, screenshot, signupAPI, unique,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

describe('session mode with the server-rendered pages', () => {
  test('sign up, log in, see the devices and log out, with JavaScript disabled', async () => {
    const base = URL_MAIN();
    const username = unique('pages');
    const ctx = await newContext(browser, { javaScriptEnabled: false, userAgent: 'gatehouse-browser-test/1 (first device)' });
    try {
      const page = await ctx.newPage();

      // The lab page says that its panes need JavaScript: the proof that
      // scripts are really off in this context.
      await page.goto(`${base}/lab`);
      assert.match(await page.locator('main p.error').first().innerText(), /need JavaScript/);

      await page.goto(`${base}/signup`);
      await page.fill('#username', username);
      await page.fill('#password', PASSWORD);
      await page.fill('#confirm_password', PASSWORD);
      await Promise.all([
        page.waitForURL(`${base}/login?m=created`),
        page.click('form[action="/signup"] button[type=submit]'),
      ]);
      assert.match(await page.innerText('p.notice'), /Your account was created/);
      await screenshot(page, 'login');

      await page.fill('#username', username);
      await page.fill('#password', PASSWORD);
      await Promise.all([
        page.waitForURL(`${base}/account`),
        page.click('form[action="/login"] button[type=submit]'),
      ]);
      assert.equal(await page.innerText('#who'), username);
      let devices = page.locator('ul.devices > li.device');
      assert.equal(await devices.count(), 1, 'one device: this one');
      assert.match(await devices.first().innerText(), /this device/);
      assert.match(await devices.first().locator('.ua').innerText(), /first device/);

      // A second browser logs in as the same user: the first one's device
      // list shows it, with a way to end it.
      const ctx2 = await newContext(browser, { javaScriptEnabled: false, userAgent: 'gatehouse-browser-test/1 (second device)' });
      try {
        await loginForm(await ctx2.newPage(), base, username, PASSWORD);
      } finally {
        await ctx2.close();
      }
      await page.reload();
      devices = page.locator('ul.devices > li.device');
      assert.equal(await devices.count(), 2, 'two devices after the second login');
      assert.match(await devices.nth(0).innerText(), /this device/, 'this device first');
      assert.match(await devices.nth(1).locator('.ua').innerText(), /second device/);
      assert.equal(await devices.nth(1).locator('button').innerText(), 'End session');
      assert.match(await page.innerText('form[action="/account/sessions/revoke-others"] button'), /Log out everywhere else \(1\)/);
      await screenshot(page, 'account');

      // Log out with the header's form (it carries the CSRF token).
      await Promise.all([
        page.waitForURL(`${base}/login?m=logged_out`),
        page.click('form.logout button[type=submit]'),
      ]);
      assert.match(await page.innerText('p.notice'), /You are logged out/);
      await page.goto(`${base}/account`);
      assert.equal(new URL(page.url()).pathname, '/login', 'the account page sends a logged-out browser to the login page');
      assert.equal((await ctx.cookies(base)).filter((c) => c.name === 'gh_session').length, 0, 'the session cookie is cleared');
    } finally {
      await ctx.close();
    }
  });
});

describe('hybrid token mode from a page script', () => {
  test('POST /v1/token with delivery=cookie sets HttpOnly cookies; /v1/me works with them', async () => {
    const base = URL_MAIN();
    const username = unique('hybrid');
    const userID = await signupAPI(base, username, PASSWORD);
    const ctx = await newContext(browser);
    try {
      const page = await ctx.newPage();
      // A page of this origin whose Content-Security-Policy allows
      // same-origin fetch (connect-src 'self'): the lab's.
      await page.goto(`${base}/lab`);
      const token = await page.evaluate(async ({ username, password }) => {
        const res = await fetch('/v1/token', {
          method: 'POST',
          body: new URLSearchParams({ grant_type: 'password', username, password, delivery: 'cookie' }),
        });
        return { status: res.status, body: await res.json() };
      }, { username, password: PASSWORD });
      assert.equal(token.status, 200, JSON.stringify(token.body));
      assert.equal(typeof token.body.csrf_token, 'string');
      assert.ok(token.body.expires_in > 0);
      assert.equal(token.body.access_token, undefined, 'no token in the body with delivery=cookie');
      assert.equal(token.body.refresh_token, undefined, 'no refresh token in the body with delivery=cookie');

      const me = await page.evaluate(async () => {
        const res = await fetch('/v1/me');
        return { status: res.status, body: await res.json() };
      });
      assert.equal(me.status, 200, JSON.stringify(me.body));
      assert.equal(me.body.id, userID);
      assert.equal(me.body.username, username);
      assert.equal(me.body.auth.mode, 'cookie-token');

      const jar = await ctx.cookies();
      const access = jar.find((c) => c.name === 'gh_access');
      const refresh = jar.find((c) => c.name === 'gh_refresh');
      assert.ok(access, 'gh_access is set');
      assert.ok(refresh, 'gh_refresh is set');
      assert.equal(access.path, '/');
      assert.equal(refresh.path, '/v1/token');
      assert.equal(refresh.sameSite, 'Strict');
    } finally {
      await ctx.close();
    }
  });
});

describe('HttpOnly cookies', () => {
  // Each case logs a fresh context in, then compares what a page script
  // sees in document.cookie with the browser's jar. A cookie without
  // HttpOnly, set alongside, is the control: scripts must see that one.
  const cases = [
    {
      name: 'session cookie (login form)',
      cookies: { gh_session: 'Lax' },
      pages: ['/account'],
      login: async (page, base, username) => loginForm(page, base, username, PASSWORD),
    },
    {
      name: 'access and refresh cookies (hybrid token mode)',
      cookies: { gh_access: 'Lax', gh_refresh: 'Strict' },
      // /v1/token too: the refresh cookie's Path; there a script would see it
      // if it were not HttpOnly.
      pages: ['/lab', '/v1/token'],
      login: async (page, base, username) => {
        await page.goto(`${base}/lab`);
        const status = await page.evaluate(async ({ username, password }) => (await fetch('/v1/token', {
          method: 'POST',
          body: new URLSearchParams({ grant_type: 'password', username, password, delivery: 'cookie' }),
        })).status, { username, password: PASSWORD });
        assert.equal(status, 200);
      },
    },
  ];
  for (const c of cases) {
    test(`${c.name}: in the jar, HttpOnly, invisible to document.cookie`, async () => {
      const base = URL_MAIN();
      const username = unique('httponly');
      await signupAPI(base, username, PASSWORD);
      const ctx = await newContext(browser);
      try {
        const page = await ctx.newPage();
        await c.login(page, base, username);
        // Every cookie of the jar, whatever its Path (cookies(url) would
        // leave out gh_refresh, scoped to /v1/token).
        const jar = (await ctx.cookies()).filter((k) => k.domain === new URL(base).hostname);
        await ctx.addCookies([{ name: 'gh_control', value: 'visible-to-scripts', url: base }]);
        let seen = '';
        for (const path of c.pages) {
          await page.goto(`${base}${path}`);
          const visible = await page.evaluate(() => document.cookie);
          assert.match(visible, /(^|; )gh_control=visible-to-scripts(;|$)/, `on ${path}, a script sees the cookie without HttpOnly`);
          seen += visible + '\n';
        }
        for (const [name, sameSite] of Object.entries(c.cookies)) {
          const got = jar.find((k) => k.name === name);
          assert.ok(got, `${name} is in the browser's jar`);
          assert.ok(got.value.length >= 20, `${name} has a value`);
          assert.equal(got.httpOnly, true, `${name} is HttpOnly`);
          assert.equal(got.sameSite, sameSite, `${name} is SameSite=${sameSite}`);
          assert.equal(got.secure, false, `${name}: no Secure in --dev (plain HTTP)`);
          assert.ok(!seen.includes(name), `document.cookie does not name ${name}: ${JSON.stringify(seen)}`);
          assert.ok(!seen.includes(got.value), `document.cookie does not hold the value of ${name}`);
        }
      } finally {
        await ctx.close();
      }
    });
  }
});

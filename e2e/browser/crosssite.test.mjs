// Cross-site requests: pages of another loopback origin (127.0.0.2, another
// site than 127.0.0.1 for the browser) post a form to /logout and fetch
// JSON endpoints with credentials: 'include', while the victim is logged in
// in the same browser. The server must refuse them (403, audited as
// csrf.refused) and the victim must stay logged in.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  ADMIN_KEY, PASSWORD, URL_MAIN, URL_OTHER, launch, loginForm, newContext, poll, signupAPI, unique,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** The login-CSRF page tries to log the victim in as this user (see browser_test.go). */
const ATTACKER = { username: 'attacker-user', password: 'attacker-password-0123' };

/** csrfRefusals counts the csrf.refused audit events of browsers with userAgent. */
async function csrfRefusals(base, userAgent) {
  const res = await fetch(`${base}/v1/admin/audit?type=csrf.refused&limit=1000`, {
    headers: { Authorization: `Bearer ${ADMIN_KEY()}` },
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 200, `GET /v1/admin/audit: ${res.status}`);
  const { events } = await res.json();
  return events.filter((e) => e.user_agent === userAgent);
}

/**
 * watchTarget records, from Chromium's network log, every request of page
 * to base: method, path, the status the server answered (even when CORS
 * hides the answer from the page) and the CORS error, if any.
 */
async function watchTarget(ctx, page, base) {
  const cdp = await ctx.newCDPSession(page);
  const byID = new Map();
  const entry = (id) => {
    if (!byID.has(id)) { byID.set(id, {}); }
    return byID.get(id);
  };
  cdp.on('Network.requestWillBeSent', (e) => Object.assign(entry(e.requestId), { method: e.request.method, url: e.request.url }));
  // The raw answer, as received, before any CORS check.
  cdp.on('Network.responseReceivedExtraInfo', (e) => { entry(e.requestId).status = e.statusCode; });
  cdp.on('Network.loadingFailed', (e) => {
    Object.assign(entry(e.requestId), { failed: e.errorText, corsError: e.corsErrorStatus?.corsError });
  });
  await cdp.send('Network.enable');
  const all = () => [...byID.values()]
    .filter((x) => x.url?.startsWith(base))
    .map((x) => ({ method: x.method, path: new URL(x.url).pathname, status: x.status, corsError: x.corsError }));
  return {
    all,
    /**
     * answer waits for the answer to method path (and, with failed, for
     * the browser's verdict on it) and returns it.
     */
    answer: (method, path, failed = false) => poll(`the answer to ${method} ${path}`,
      () => all().find((x) => x.method === method && x.path === path && x.status !== undefined && (!failed || x.corsError))),
  };
}

test('cross-site form post and fetches from 127.0.0.2 are refused; the victim stays logged in', async (t) => {
  const base = URL_MAIN();
  const other = URL_OTHER();
  assert.equal(new URL(base).hostname, '127.0.0.1');
  assert.equal(new URL(other).hostname, '127.0.0.2');

  const victim = unique('victim');
  await signupAPI(base, victim, PASSWORD);
  await signupAPI(base, ATTACKER.username, ATTACKER.password);
  // A User-Agent of this test alone, to find its audit events.
  const userAgent = `gatehouse-browser-test/1 (cross-site ${unique('ua')})`;
  assert.equal((await csrfRefusals(base, userAgent)).length, 0);

  const ctx = await newContext(browser, { userAgent });
  try {
    const page = await ctx.newPage();
    await loginForm(page, base, victim, PASSWORD);
    const session = (await ctx.cookies(base)).find((c) => c.name === 'gh_session');
    assert.ok(session, 'the victim holds a session cookie');

    // Every request of the browser to the target, with the status the
    // server answered, from Chromium's network log (CDP): a fetch answer
    // without CORS headers is hidden from the page, and from Playwright's
    // response events, but the raw status is in the log.
    const net = await watchTarget(ctx, page, base);

    // 1. An auto-submitting form: POST /logout, a top-level navigation.
    // goto waits only for the attacker's page to commit: its script then
    // navigates to the target at once.
    await page.goto(`${other}/form`, { waitUntil: 'commit' });
    await page.waitForURL(`${base}/logout`);
    await page.waitForLoadState('load');
    const logout = await net.answer('POST', '/logout');
    assert.equal(logout.status, 403, JSON.stringify(logout));
    assert.match(await page.innerText('main'), /Cross-origin request refused/);

    // 2. fetch with credentials: 'include' to JSON endpoints: a login CSRF
    // (POST /v1/sessions as the attacker) and a password change. They are
    // "simple" requests (text/plain), sent without a preflight.
    await page.goto(`${other}/fetch`);
    await page.waitForFunction(() => document.getElementById('result')?.textContent.startsWith('done'), null, { timeout: 15_000 });
    const result = await page.innerText('#result');
    // The attacker's script cannot even read the answers (no CORS headers).
    assert.match(result, /v1\/sessions unreadable: TypeError/, result);
    assert.match(result, /v1\/me\/password unreadable: TypeError/, result);

    // The server refused all three: csrf.refused, one per request, from this
    // browser.
    const refused = await poll('three csrf.refused events', async () => {
      const ev = await csrfRefusals(base, userAgent);
      return ev.length >= 3 ? ev : null;
    });
    assert.equal(refused.length, 3, JSON.stringify(refused));
    for (const e of refused) {
      assert.equal(e.reason, 'cross_origin');
    }
    // The browser sent both, and the server answered 403, without CORS
    // headers.
    for (const path of ['/v1/sessions', '/v1/me/password']) {
      const a = await net.answer('POST', path, true);
      assert.equal(a.status, 403, JSON.stringify(a));
      assert.equal(a.corsError, 'MissingAllowOriginHeader', JSON.stringify(a));
    }
    t.diagnostic(`the target's answers, from the browser's network log: ${JSON.stringify(net.all())}`);

    // The victim is still logged in, as themselves, with the same session.
    await page.goto(`${base}/account`);
    assert.equal(await page.innerText('#who'), victim);
    const kept = (await ctx.cookies(base)).find((c) => c.name === 'gh_session');
    assert.equal(kept?.value, session.value, 'the session cookie is unchanged');
    // And the password was not changed.
    const check = await fetch(`${base}/v1/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'password', username: victim, password: PASSWORD }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(check.status, 200, 'the victim\'s password still works');
  } finally {
    await ctx.close();
  }
});

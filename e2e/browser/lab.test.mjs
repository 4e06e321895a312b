// The lab's forced-logout scenario, clicked through the lab's own UI, and
// the comparison page (without JavaScript). Runs against a server of its
// own (GATEHOUSE_LAB_URL): "let time pass" moves that server's clock.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { URL_LAB, launch, newContext, screenshot } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/**
 * click presses the lab button sel, waits for the lab API's answer to POST
 * apiPath and for the page to finish rendering it (the buttons come back),
 * and returns the answer's JSON.
 */
async function click(page, sel, apiPath) {
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === apiPath),
    page.click(sel),
  ]);
  const body = await res.json();
  assert.equal(res.status(), 200, `${apiPath}: ${res.status()} ${JSON.stringify(body)}`);
  await page.waitForFunction(() => !document.querySelector('button[data-lab=probe]').disabled);
  return body;
}

/** recordText is the visible text of the "What happened" record. */
const recordText = (page) => page.innerText('#record');

/** summary is the record's summary line (class notice when ok, error when not). */
const summary = (page) => page.innerText('#record > p.notice, #record > p.error');

test('forced logout: the session is refused at once, the JWT by Gatehouse but not by a JWKS-only verifier until exp', async () => {
  const base = URL_LAB();
  const ctx = await newContext(browser);
  try {
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      // A failed load is reported below with its URL.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) { errors.push(m.text()); }
    });
    page.on('response', (r) => {
      // Chromium asks for /favicon.ico on its own; the server has none (404).
      if (r.status() >= 400 && new URL(r.url()).pathname !== '/favicon.ico') {
        errors.push(`${r.request().method()} ${r.url()}: ${r.status()}`);
      }
    });

    await page.goto(`${base}/lab`);
    // lab.js has loaded the state: the lab clock shows a time.
    await page.waitForFunction(() => /UTC$/.test(document.getElementById('lab-clock').textContent));

    // 1. Log the three panes in; the first login creates a demo user.
    for (const mode of ['session', 'token', 'hybrid']) {
      await click(page, `#pane-${mode} button[data-action=login]`, `/lab/api/panes/${mode}/login`);
      assert.match(await page.innerText(`#pane-${mode} [data-role=status]`), /^Holds a credential/, `${mode} pane logged in`);
    }
    assert.match(await page.innerText('#user-line'), /The panes log in as lab-[a-z0-9]+ \(a demo user the lab created, id /);
    assert.match(await page.innerText('#pane-token [data-role=token]'), /JWKS-only verifier: Accepted/);

    // 2. Every pane calls the protected API: three 200s.
    await click(page, 'button[data-lab=probe]', '/lab/api/probe');
    const probe = await summary(page);
    for (const mode of ['session', 'token', 'hybrid']) {
      assert.match(probe, new RegExp(`${mode} pane: 200, accepted`), probe);
    }

    // 3. Forced logout by an admin: the record shows, at once, every pane
    // refused by Gatehouse, and the tokens still accepted by a JWKS-only
    // verifier.
    const forced = await click(page, 'button[data-lab=force-logout]', '/lab/api/force-logout');
    assert.equal(forced.record.ok, true);
    const fs = await summary(page);
    assert.match(fs, /session pane: refused by Gatehouse at once \(401\)\./, fs);
    assert.match(fs, /token pane: refused by Gatehouse at once \(401\), but a JWKS-only verifier accepts its token for \d+m\d+s more\./, fs);
    assert.match(fs, /hybrid pane: refused by Gatehouse at once \(401\), but a JWKS-only verifier accepts its token for \d+m\d+s more\./, fs);
    assert.match(await recordText(page), /POST \/v1\/admin\/users\/[^/]+\/logout → 204/);

    // 4. Each pane calls GET /v1/me on its own.
    await click(page, '#pane-session button[data-action=me]', '/lab/api/panes/session/me');
    assert.match(await summary(page), /^session pane: 401, refused/);
    assert.equal(await page.locator('#record .token').count(), 0, 'a session has no token to show');

    for (const mode of ['token', 'hybrid']) {
      await click(page, `#pane-${mode} button[data-action=me]`, `/lab/api/panes/${mode}/me`);
      assert.match(await summary(page), new RegExp(`^${mode} pane: 401, refused`));
      const tok = page.locator('#record .token').first();
      assert.match(await tok.locator('h3').innerText(), new RegExp(`Token of the ${mode} pane`));
      assert.match(await tok.locator('p.verdict.no').innerText(), /^Gatehouse \(full verifier, via GET \/v1\/me\): Refused by Gatehouse: 401/);
      assert.match(await tok.locator('p.verdict.yes').innerText(), /^JWKS-only verifier: Accepted/);
      // The countdown to exp runs: it reads "Expires in m:ss" and changes.
      // (lab.js fills it at its next one-second tick: the tick() inside
      // tokenView runs before the new view is in the document.)
      const cd = tok.locator('.countdown');
      await page.waitForFunction(() => /^Expires in /.test(document.querySelector('#record .token .countdown')?.textContent), null, { timeout: 5_000 });
      const first = await cd.innerText();
      assert.match(first, /^Expires in \d+:\d\d \(lab clock\)$/, first);
      await page.waitForFunction((was) => {
        const el = document.querySelector('#record .token .countdown');
        return el && el.textContent !== was && /^Expires in /.test(el.textContent);
      }, first, { timeout: 5_000 });
    }

    // 5. Let an hour pass: exp (10 min) and the leeway are over; the
    // JWKS-only verifier refuses the token too.
    await click(page, 'button[data-advance="3600"]', '/lab/api/advance');
    assert.match(await summary(page), /^1 h passed: the lab clock reads /);
    const text = await recordText(page);
    const tokens = page.locator('#record .token');
    assert.ok(await tokens.count() >= 1, `the record shows the token pane's token: ${text}`);
    await page.waitForFunction(() => [...document.querySelectorAll('#record .token .countdown')].every((e) => e.textContent !== ''), null, { timeout: 5_000 });
    for (const tok of await tokens.all()) {
      assert.match(await tok.locator('p.verdict').innerText(), /^JWKS-only verifier: Refused: expired\.$/);
      assert.match(await tok.locator('.countdown').innerText(), /^Expired \d+:\d\d ago: verifiers refuse it/);
    }
    assert.match(await tokens.first().locator('h3').innerText(), /Token of the token pane/);
    if (await tokens.count() === 1) {
      // The hybrid pane's browser dropped its access cookie at Max-Age.
      assert.match(text, /The hybrid pane's browser holds no access cookie/);
    }
    assert.deepEqual(errors, [], 'no script error and no failed load on the lab page');
    await screenshot(page, 'lab');

    // 6. Log out the panes that still hold a (revoked or expired)
    // credential, so that the measurement below logs them in afresh: it
    // measures the credentials the panes hold, refused ones included.
    for (const mode of ['session', 'token', 'hybrid']) {
      if (/^Holds a credential/.test(await page.innerText(`#pane-${mode} [data-role=status]`))) {
        await click(page, `#pane-${mode} button[data-action=logout]`, `/lab/api/panes/${mode}/logout`);
      }
      assert.equal(await page.innerText(`#pane-${mode} [data-role=status]`), 'Not logged in', `${mode} pane logged out`);
    }

    // 7. The comparison page works without JavaScript: a context with the
    // same lab cookie and scripts off.
    const noJS = await newContext(browser, { javaScriptEnabled: false });
    try {
      await noJS.addCookies(await ctx.cookies(base));
      const cmp = await noJS.newPage();
      await cmp.goto(`${base}/lab/compare`);
      await Promise.all([
        cmp.waitForURL(`${base}/lab/compare#table`),
        cmp.click('form[action="/lab/compare"] button[type=submit]'),
      ]);
      const rows = cmp.locator('#table-section tbody tr');
      assert.equal(await rows.count(), 3, 'one row per mode');
      const table = await cmp.innerText('#table-section table');
      assert.match(table, /session[^\n]*Gatehouse: refused at once \(observed at/);
      assert.match(table, /token[^\n]*Gatehouse: refused at once; JWKS-only: accepted for \d+m\d+s more, until exp/);
      for (const mode of ['session', 'token', 'hybrid']) {
        assert.match(table, new RegExp(`\\n${mode}\\t[^\\n]*\\t200/200\\t`), `${mode}: every call accepted:\n${table}`);
      }

      // The guide: browser-only on one site, several services, logout may
      // wait → hybrid mode, quoting the lab's own observation.
      for (const [name, value] of [['domains', 'no'], ['services', 'yes'], ['instant', 'no'], ['browser', 'yes']]) {
        await cmp.check(`input[name=${name}][value=${value}]`);
      }
      await Promise.all([
        cmp.waitForURL(/\/lab\/compare\?decide=1&/),
        cmp.click('form.guide button[type=submit]'),
      ]);
      assert.equal(await cmp.innerText('.decision h3'), 'Hybrid mode: the JWT in an HttpOnly cookie');
      assert.match(await cmp.innerText('.decision'), /In the lab, a JWKS-only verifier accepted a token for \d+m\d+s after the forced logout\./);
      await screenshot(cmp, 'compare');
    } finally {
      await noJS.close();
    }
  } finally {
    await ctx.close();
  }
});

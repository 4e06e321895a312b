// The Gatehouse lab. Plain JavaScript, no framework, no inline code: the
// panes are clients that run on the server; this script only sends the
// visitor's choices to /lab/api/... and shows what came back. It never
// parses markup: every value is written with textContent.
(function () {
  'use strict';

  var offset = 0;          // lab clock minus this browser's clock, in ms
  var busy = false;

  function $(sel) { return document.querySelector(sel); }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function add(parent) {
    for (var i = 1; i < arguments.length; i++) {
      if (arguments[i]) { parent.appendChild(arguments[i]); }
    }
    return parent;
  }

  function clear(node) {
    while (node.firstChild) { node.removeChild(node.firstChild); }
    return node;
  }

  function labNow() { return Date.now() + offset; }

  function clockText(ms) {
    return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }

  function span(seconds) {
    var s = Math.abs(Math.round(seconds));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var mm = (h > 0 && m < 10 ? '0' : '') + m, rr = (r < 10 ? '0' : '') + r;
    return (h > 0 ? h + ':' : '') + mm + ':' + rr;
  }

  async function call(method, path, body) {
    var opts = { method: method, credentials: 'same-origin', headers: { 'Accept': 'application/json' } };
    if (method === 'POST') {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body || {});
    }
    var res = await fetch(path, opts);
    var data;
    try { data = await res.json(); } catch (e) { data = { error: 'The lab answered ' + res.status + '.' }; }
    return { status: res.status, data: data };
  }

  function controls() {
    return document.querySelectorAll('button[data-pane], button[data-lab], button[data-advance], #setup-form button');
  }

  function setBusy(on, label) {
    busy = on;
    controls().forEach(function (b) { b.disabled = on; });
    if (on) { $('#busy').textContent = label + '…'; }
  }

  function say(text) { $('#busy').textContent = text; }

  async function act(path, body, label) {
    if (busy) { return; }
    setBusy(true, label);
    try {
      var r = await call('POST', path, body);
      if (r.data.state) { renderState(r.data.state); }
      if (r.data.record) {
        renderRecord(r.data.record);
        say('Done: ' + r.data.record.summary);
      } else if (r.data.error) {
        showError(r.data.error);
        say(r.data.error);
      }
    } catch (e) {
      showError('The lab did not answer: ' + e.message);
      say('The lab did not answer.');
    } finally {
      setBusy(false);
    }
  }

  function showError(msg) {
    var box = clear($('#record'));
    add(box, el('p', 'error', msg));
  }

  // ----- state -----

  function renderState(s) {
    offset = s.now_ms - Date.now();
    tick();
    var line = $('#user-line');
    if (s.user) {
      line.textContent = 'The panes log in as ' + s.user.username +
        (s.user.demo ? ' (a demo user the lab created' : ' (') +
        (s.user.id ? ', id ' + s.user.id : ', id learned at the first login') +
        '; password ' + s.user.password + ').';
    } else {
      line.textContent = 'No user yet: the first login creates a demo user.';
    }
    s.panes.forEach(renderPane);
    renderTimeline(s.timeline);
    renderMeasurement(s.measurement);
  }

  function renderPane(p) {
    var root = $('#pane-' + p.mode);
    if (!root) { return; }
    var st = root.querySelector('[data-role=status]');
    // What the client holds, not whether the server still honours it: the
    // last call's verdict (in the timeline) says that.
    st.textContent = p.logged_in ? 'Holds a credential' + (p.session_id ? ' (session ' + p.session_id + ')' : '') + ' (the server may have revoked it: call the API to see)' : 'Not logged in';
    st.className = 'status ' + (p.logged_in ? 'on' : 'off');
    var holds = clear(root.querySelector('[data-role=holds]'));
    if (p.holds.length) {
      add(holds, el('h3', null, 'What the client holds'));
      var ul = add(holds, el('ul', 'holds'));
      p.holds.forEach(function (h) {
        var li = el('li');
        add(li, el('strong', null, h.what + ': '), el('code', null, h.value), el('span', 'meta', ' — ' + h.where));
        ul.appendChild(li);
      });
    }
    var tok = clear(root.querySelector('[data-role=token]'));
    if (p.token) {
      add(tok, tokenView(p.token, 'Access token (JWT)'));
      tick(); // fill the countdown now that it is in the page
    }
  }

  function tokenView(t, title) {
    var box = el('div', 'token');
    add(box, el('h3', null, title + ', ' + t.bytes + ' bytes'));
    add(box, el('p', 'meta', t.where));
    if (t.expires_at) {
      var exp = Date.parse(t.expires_at);
      var iat = t.claims && t.claims.iat ? Number(t.claims.iat) * 1000 : exp - 600000;
      var p = el('p');
      var cd = el('span', 'countdown');
      cd.setAttribute('data-exp', String(exp));
      var bar = el('progress');
      bar.setAttribute('max', String(Math.max(1, Math.round((exp - iat) / 1000))));
      bar.setAttribute('data-exp', String(exp));
      bar.setAttribute('aria-label', 'Lifetime left');
      add(p, cd);
      add(box, p, bar);
    }
    if (t.gatehouse) { add(box, verdictLine('Gatehouse (full verifier, via GET /v1/me): ', t.gatehouse)); }
    add(box, verdictLine('JWKS-only verifier: ', t.jwks_only));
    var d = el('details');
    add(d, el('summary', null, 'Decoded header and claims'));
    add(d, el('pre', null, JSON.stringify(t.header, null, 2)));
    add(d, el('pre', null, JSON.stringify(readableClaims(t.claims), null, 2)));
    add(d, el('p', 'meta', 'Token: ' + t.token + ' (masked). Anyone holding a JWT can read its claims; only the signature makes it trustworthy.'));
    box.appendChild(d);
    tick();
    return box;
  }

  function readableClaims(c) {
    var out = {};
    Object.keys(c || {}).forEach(function (k) {
      var v = c[k];
      if ((k === 'exp' || k === 'iat' || k === 'nbf') && typeof v === 'number') {
        out[k] = v + ' (' + clockText(v * 1000) + ')';
      } else {
        out[k] = v;
      }
    });
    return out;
  }

  function verdictLine(label, v) {
    var p = el('p', 'verdict ' + (v.accepted ? 'yes' : 'no'));
    add(p, el('strong', null, label), document.createTextNode(v.detail));
    return p;
  }

  function tick() {
    var now = labNow();
    $('#lab-clock').textContent = clockText(now);
    document.querySelectorAll('[data-exp]').forEach(function (e) {
      var left = (Number(e.getAttribute('data-exp')) - now) / 1000;
      if (e.tagName === 'PROGRESS') {
        e.value = Math.max(0, left);
        return;
      }
      e.textContent = left > 0 ?
        'Expires in ' + span(left) + ' (lab clock)' :
        'Expired ' + span(left) + ' ago: verifiers refuse it once their leeway (at most 60 s) is over';
    });
  }

  function renderTimeline(items) {
    var ol = clear($('#timeline'));
    items.forEach(function (it) {
      var li = el('li');
      var b = el('button', 'secondary' + (it.ok ? '' : ' bad'),
        '#' + it.id + ' ' + it.at.substring(11, 19) + ' · ' + it.pane + ' · ' + it.action + ' — ' + it.summary);
      b.type = 'button';
      b.addEventListener('click', async function () {
        var r = await call('GET', '/lab/api/records/' + it.id);
        if (r.data.error) { showError(r.data.error); return; }
        renderRecord(r.data);
        $('#record-h').focus();
      });
      add(ol, add(li, b));
    });
  }

  function renderMeasurement(m) {
    var box = $('#measurement');
    if (!m) { return; }
    clear(box);
    add(box, el('p', 'help', 'Measured ' + m.at.substring(0, 19).replace('T', ' ') + ' (lab clock): mean of ' + m.calls + ' in-process calls each.'));
    var wrap = el('div', 'table-wrap');
    var table = el('table');
    var head = add(el('thead'), el('tr'));
    ['Mode', 'Credential header', 'Credential bytes', 'Request bytes', 'Gatehouse µs/op', 'Accepted', 'JWKS-only µs/op'].forEach(function (h) {
      var th = el('th', null, h); th.scope = 'col'; head.firstChild.appendChild(th);
    });
    var body = el('tbody');
    m.rows.forEach(function (r) {
      var tr = el('tr');
      var th = el('th', null, r.mode); th.scope = 'row';
      add(tr, th, el('td', null, r.credential_header), el('td', 'num', r.credential_bytes), el('td', 'num', r.request_bytes),
        el('td', 'num', r.gatehouse_us_per_op.toFixed(1)), el('td', 'num', r.accepted + '/' + m.calls),
        el('td', 'num', r.has_jwks_only ? r.jwks_only_us_per_op.toFixed(1) : 'n/a'));
      body.appendChild(tr);
    });
    add(wrap, add(table, head, body));
    add(box, wrap);
    var p = el('p');
    var a = el('a', null, 'Compare the modes and get a recommendation');
    a.href = '/lab/compare';
    add(box, add(p, a));
  }

  // ----- records -----

  function renderRecord(rec) {
    var box = clear($('#record'));
    add(box, el('h3', null, '#' + rec.id + ' · ' + rec.action + ' (' + rec.pane + ') · ' + rec.at.substring(0, 19).replace('T', ' ') + ' lab clock'));
    add(box, el('p', rec.ok ? 'notice' : 'error', rec.summary));
    if (rec.notes.length) {
      var ul = el('ul');
      rec.notes.forEach(function (n) { ul.appendChild(el('li', 'help', n)); });
      box.appendChild(ul);
    }
    rec.tokens.forEach(function (t) { add(box, tokenView(t, 'Token of the ' + t.pane + ' pane')); });
    if (rec.exchanges.length) {
      add(box, el('h3', null, 'On the wire (' + rec.exchanges.length + ' exchange' + (rec.exchanges.length > 1 ? 's' : '') + ')'));
      rec.exchanges.forEach(function (x, i) { add(box, exchangeView(x, i === 0)); });
    }
    add(box, el('h3', null, 'In the store'));
    if (rec.store_note) { add(box, el('p', 'help', rec.store_note)); }
    if (rec.store) { add(box, storeView(rec.store)); }
  }

  function exchangeView(x, open) {
    var d = el('details');
    if (open) { d.open = true; }
    add(d, el('summary', null, x.purpose + ' → ' + x.response.status + ' ' + x.response.status_text +
      ' · request ' + x.bytes.request + ' B' + (x.bytes.credential ? ', credential ' + x.bytes.credential + ' B (' + x.bytes.credential_header + ')' : ', no credential') +
      ' · ' + x.duration_us + ' µs'));
    var grid = el('div', 'exchange-grid');
    var req = [x.request.method + ' ' + x.request.path + ' HTTP/1.1'];
    x.request.headers.forEach(function (h) { req.push(h.name + ': ' + h.value); });
    if (x.request.cookies.length) {
      req.push('Cookie: ' + x.request.cookies.map(function (c) { return c.name + '=' + c.value; }).join('; '));
    }
    if (x.request.body) { req.push('', x.request.body); }
    var res = ['HTTP/1.1 ' + x.response.status + ' ' + x.response.status_text];
    x.response.headers.forEach(function (h) { res.push(h.name + ': ' + h.value); });
    x.response.set_cookies.forEach(function (c) {
      res.push('Set-Cookie: ' + c.name + '=' + c.value + (c.attributes ? '; ' + c.attributes : '') + (c.cleared ? '   ← clears the cookie' : ''));
    });
    if (x.response.body) { res.push('', x.response.body); }
    var a = el('div'), b = el('div');
    add(a, el('h4', null, 'Request'), el('pre', null, req.join('\n')));
    add(b, el('h4', null, 'Response'), el('pre', null, res.join('\n')));
    add(d, add(grid, a, b));
    return d;
  }

  function storeView(s) {
    var box = el('div');
    var ul = el('ul');
    s.added.forEach(function (i) { ul.appendChild(el('li', 'diff-added', '+ ' + i.table + ' ' + i.key + ': ' + JSON.stringify(i.item))); });
    s.removed.forEach(function (i) { ul.appendChild(el('li', 'diff-removed', '− ' + i.table + ' ' + i.key + ': ' + JSON.stringify(i.item))); });
    s.changed.forEach(function (c) {
      var f = c.fields.map(function (x) { return x.field + ': ' + JSON.stringify(x.before) + ' → ' + JSON.stringify(x.after); }).join('; ');
      ul.appendChild(el('li', 'diff-changed', '~ ' + c.table + ' ' + c.key + ': ' + f));
    });
    return add(box, ul);
  }

  // ----- wiring -----

  function init() {
    document.querySelectorAll('button[data-pane]').forEach(function (b) {
      b.addEventListener('click', function () {
        var mode = b.getAttribute('data-pane'), action = b.getAttribute('data-action');
        act('/lab/api/panes/' + mode + '/' + action, {}, b.textContent + ' (' + mode + ')');
      });
    });
    document.querySelectorAll('button[data-lab]').forEach(function (b) {
      b.addEventListener('click', function () { act('/lab/api/' + b.getAttribute('data-lab'), {}, b.textContent); });
    });
    document.querySelectorAll('button[data-advance]').forEach(function (b) {
      b.addEventListener('click', function () {
        act('/lab/api/advance', { seconds: Number(b.getAttribute('data-advance')) }, 'Letting ' + b.textContent + ' pass');
      });
    });
    $('#setup-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var u = $('#lab-username'), p = $('#lab-password');
      act('/lab/api/setup', { username: u.value, password: p.value }, 'Setting the user');
      p.value = '';
    });
    var demo = $('#demo-user');
    if (demo) { demo.addEventListener('click', function () { act('/lab/api/setup', {}, 'Creating a demo user'); }); }
    call('GET', '/lab/api/state').then(async function (r) {
      if (!r.data.panes) { return; }
      renderState(r.data);
      // Back on the page: show the latest record again.
      if (r.data.timeline.length) {
        var last = await call('GET', '/lab/api/records/' + r.data.timeline[0].id);
        if (last.data.exchanges) { renderRecord(last.data); }
      }
    });
    setInterval(tick, 1000);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
}());

// The single-page app of examples/spa-api, in Gatehouse's hybrid mode.
//
// The access token and the refresh token travel in HttpOnly cookies set by
// the Gatehouse API (mounted under /auth): this script never sees them, so
// an injected script cannot steal them. What it keeps is the login's CSRF
// token, in memory only (a variable, never in web storage), and it sends it in
// X-CSRF-Token on every unsafe request. After a reload it reads the token
// again from GET /auth/v1/me.
'use strict';

let csrfToken = '';

const $ = (id) => document.getElementById(id);

function say(text) {
  $('message').textContent = text;
}

function show(view) {
  for (const id of ['login-view', 'notes-view']) {
    $(id).hidden = id !== view;
  }
}

// tokenEndpoint posts a form to Gatehouse's token endpoint. fetch sends a
// URLSearchParams body as application/x-www-form-urlencoded.
function tokenEndpoint(params, headers) {
  return fetch('/auth/v1/token', {
    method: 'POST',
    headers: headers || {},
    body: new URLSearchParams(params),
    credentials: 'same-origin',
  });
}

// login: the password grant with delivery=cookie. The answer sets the two
// cookies and carries no token, only {expires_in, csrf_token}.
async function login(username, password) {
  const res = await tokenEndpoint({ grant_type: 'password', username, password, delivery: 'cookie' });
  if (res.status === 429) {
    throw new Error('Too many failed logins: try again later.');
  }
  if (!res.ok) {
    throw new Error('Wrong username or password.');
  }
  csrfToken = (await res.json()).csrf_token;
}

// refresh: a cookie-mode refresh. The refresh cookie (Path=/auth/v1/token)
// carries the refresh token; the CSRF token proves the request comes from
// this page. It sets both cookies anew.
async function refresh() {
  if (!csrfToken) {
    // After a reload later than the access cookie's expiry, /auth/v1/me
    // cannot give the token back; the refresh cookie (scoped to
    // /auth/v1/token) can.
    const r = await fetch('/auth/v1/token/csrf', { credentials: 'same-origin' });
    if (!r.ok) {
      return false;
    }
    csrfToken = (await r.json()).csrf_token;
  }
  const res = await tokenEndpoint({ grant_type: 'refresh_token', delivery: 'cookie' }, { 'X-CSRF-Token': csrfToken });
  if (!res.ok) {
    csrfToken = '';
    return false;
  }
  csrfToken = (await res.json()).csrf_token;
  return true;
}

// api calls the application's API. A 401 means the access cookie expired
// (the browser dropped it) or was refused: refresh once and try again.
async function api(path, init) {
  const call = () => {
    const headers = new Headers((init && init.headers) || {});
    if (init && init.method && init.method !== 'GET') {
      headers.set('X-CSRF-Token', csrfToken);
    }
    return fetch(path, Object.assign({}, init, { headers, credentials: 'same-origin' }));
  };
  let res = await call();
  if (res.status === 401 && (await refresh())) {
    res = await call();
  }
  if (res.status === 401) {
    show('login-view');
    throw new Error('Your session has ended: log in again.');
  }
  return res;
}

// whoami asks Gatehouse who is logged in, and takes the CSRF token from
// the answer (after a reload, the page has no other way to know it).
async function whoami() {
  let res = await fetch('/auth/v1/me', { credentials: 'same-origin' });
  if (res.status === 401 && (await refresh())) {
    res = await fetch('/auth/v1/me', { credentials: 'same-origin' });
  }
  if (res.status !== 200) {
    return null;
  }
  const me = await res.json();
  csrfToken = me.csrf_token || '';
  return me;
}

function renderNotes(notes) {
  const list = $('notes');
  list.replaceChildren();
  for (const n of notes) {
    const li = document.createElement('li');
    const time = document.createElement('time');
    time.dateTime = n.created_at;
    time.textContent = new Date(n.created_at).toLocaleString();
    li.append(time, document.createTextNode(n.text));
    list.append(li);
  }
}

async function loadNotes() {
  const res = await api('/api/notes');
  if (!res.ok) {
    throw new Error('The notes could not be loaded.');
  }
  const body = await res.json();
  $('username').textContent = body.username;
  renderNotes(body.notes);
  show('notes-view');
}

async function addNote(text) {
  const res = await api('/api/notes', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ text }),
  });
  if (!res.ok) {
    const p = await res.json().catch(() => ({}));
    throw new Error(p.detail || 'The note was not saved.');
  }
}

async function signup(username, password) {
  const res = await fetch('/auth/v1/users', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password }),
    credentials: 'same-origin',
  });
  if (res.status !== 201) {
    const p = await res.json().catch(() => ({}));
    throw new Error(p.detail || 'The account was not created.');
  }
}

// logout revokes the login's refresh family (and with it every access
// token of the login) and clears both cookies.
async function logout() {
  await fetch('/auth/v1/token/revoke', {
    method: 'POST',
    headers: { 'X-CSRF-Token': csrfToken },
    body: new URLSearchParams(),
    credentials: 'same-origin',
  });
  csrfToken = '';
  show('login-view');
}

// handle runs an event handler and shows its error, if any.
function handle(fn) {
  return async (event) => {
    event.preventDefault();
    say('');
    try {
      await fn(event);
    } catch (err) {
      say(err.message);
    }
  };
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', handle(async (e) => {
    const f = new FormData(e.target);
    await login(f.get('username'), f.get('password'));
    e.target.reset();
    await loadNotes();
  }));
  $('signup-form').addEventListener('submit', handle(async (e) => {
    const f = new FormData(e.target);
    await signup(f.get('username'), f.get('password'));
    await login(f.get('username'), f.get('password'));
    e.target.reset();
    await loadNotes();
  }));
  $('note-form').addEventListener('submit', handle(async (e) => {
    await addNote(new FormData(e.target).get('text'));
    e.target.reset();
    await loadNotes();
  }));
  $('logout').addEventListener('click', handle(logout));

  whoami().then((me) => (me ? loadNotes() : show('login-view'))).catch((err) => {
    show('login-view');
    say(err.message);
  });
});

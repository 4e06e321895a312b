package web

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/csrf"
	"github.com/gatehouse-auth/gatehouse/token"
)

// pane is one of the lab's three clients, run on the server.
type pane struct {
	mode string
	// jar is what a browser keeps (session and hybrid mode).
	jar jar
	// csrf is the CSRF token a page script keeps (session and hybrid mode).
	csrf string
	// access and refresh are what an app keeps (token mode).
	access, refresh string
	// sessionID is the public id of the pane's session (session mode).
	sessionID string
}

// csrfHeader is the X-CSRF-Token header with tok, none when tok is empty.
func csrfHeader(tok string) http.Header {
	h := http.Header{}
	if tok != "" {
		h.Set(csrf.HeaderName, tok)
	}
	return h
}

func (p *pane) userAgent() string { return "gatehouse-lab/1 (" + p.mode + " pane)" }

// record is one lab action as the visitor sees it.
type record struct {
	ID        int        `json:"id"`
	At        time.Time  `json:"at"`
	Pane      string     `json:"pane"`
	Action    string     `json:"action"`
	Summary   string     `json:"summary"`
	OK        bool       `json:"ok"`
	Exchanges []exchange `json:"exchanges"`
	Tokens    []jwtView  `json:"tokens"`
	Store     *storeDiff `json:"store,omitempty"`
	StoreNote string     `json:"store_note,omitempty"`
	Notes     []string   `json:"notes"`
}

// labError is a refusal of the lab itself (not of the API): an action that
// cannot run in the lab's present state.
type labError struct {
	status int
	msg    string
}

func (e *labError) Error() string { return e.msg }

func refuse(msg string) error { return &labError{http.StatusConflict, msg} }

// act is one running action.
type act struct {
	l   *lab
	r   *http.Request
	v   *visitor
	rec *record
}

func (a *act) note(format string, args ...any) {
	a.rec.Notes = append(a.rec.Notes, fmt.Sprintf(format, args...))
}

// send makes one exchange with the API for pane p (nil: the lab's admin),
// keeps the cookies the API sets in p's jar, and records the exchange.
func (a *act) send(p *pane, purpose string, ar apiRequest) (*apiResponse, error) {
	ar.userAgent = "gatehouse-lab/1 (admin)"
	if p != nil {
		ar.userAgent = p.userAgent()
	}
	res, err := a.l.h.callAPI(a.r, ar)
	if err != nil {
		return nil, err
	}
	if p != nil && p.mode != modeToken {
		p.jar.update(res.setCookies(), a.l.cfg.Now())
	}
	a.rec.Exchanges = append(a.rec.Exchanges, recordExchange(purpose, ar.body, res))
	return res, nil
}

// run performs an action: a snapshot of the store before and after, the
// action's exchanges, and an entry in the visitor's timeline.
func (l *lab) run(r *http.Request, v *visitor, paneName, action string, fn func(a *act) (summary string, ok bool, err error)) labAnswer {
	a := &act{l: l, r: r, v: v, rec: &record{Pane: paneName, Action: action, Exchanges: []exchange{}, Tokens: []jwtView{}, Notes: []string{}}}
	before, berr := l.snapshot(r.Context(), v)
	whose := v.user
	summary, ok, err := fn(a)
	if v.user != whose && before != nil {
		// Another user now: everything of the new one is new to the view.
		before = nil
	}
	var le *labError
	switch {
	case errors.As(err, &le) && len(a.rec.Exchanges) == 0:
		return labErr(le.status, le.msg)
	case le != nil:
		summary, ok = le.msg, false
	case err != nil:
		l.h.log.ErrorContext(r.Context(), "lab action failed", "action", action, "pane", paneName, "error", err)
		return labErr(http.StatusInternalServerError, "The lab could not complete the action.")
	}
	a.rec.At = l.cfg.Now().UTC()
	a.rec.Summary, a.rec.OK = summary, ok
	after, aerr := l.snapshot(r.Context(), v)
	switch {
	case berr != nil || aerr != nil:
		l.h.log.ErrorContext(r.Context(), "lab snapshot", "error", errors.Join(berr, aerr))
		a.rec.StoreNote = "The store could not be read."
	case after == nil:
		a.rec.StoreNote = "No user yet: nothing stored to show."
	default:
		d, err := diffSnapshots(before, after)
		if err != nil {
			l.h.log.ErrorContext(r.Context(), "lab snapshot diff", "error", err)
			a.rec.StoreNote = "The store could not be compared."
			break
		}
		a.rec.Store = d
		if d.empty() {
			a.rec.StoreNote = "Nothing changed in the store."
		}
	}
	v.nextID++
	a.rec.ID = v.nextID
	v.records = append(v.records, a.rec)
	if len(v.records) > maxRecords {
		v.records = slices.Delete(v.records, 0, len(v.records)-maxRecords)
	}
	return labAnswer{http.StatusOK, map[string]any{"record": a.rec, "state": l.stateView(r, v)}}
}

func (l *lab) snapshot(ctx context.Context, v *visitor) (*Snapshot, error) {
	if v.user == nil || v.user.ID == "" {
		return nil, nil
	}
	return l.cfg.Snapshot(ctx, SnapshotQuery{UserID: v.user.ID, IDs: slices.Clone(v.seenIDs), JTIs: slices.Clone(v.seenJTIs)})
}

// setup chooses the account the panes log in as: the one given, or a new
// demo account.
func (l *lab) setup(r *http.Request, v *visitor, body []byte) labAnswer {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if !decodeLabBody(body, &in) {
		return labErr(http.StatusBadRequest, `Send {"username","password"}, or {} for a demo user.`)
	}
	if (in.Username == "") != (in.Password == "") {
		return labErr(http.StatusBadRequest, "Give both a username and a password, or neither for a demo user.")
	}
	return l.run(r, v, "lab", "setup", func(a *act) (string, bool, error) {
		v.clear()
		if in.Username == "" {
			return a.createDemoUser()
		}
		v.user = &labUser{Username: in.Username, Password: in.Password}
		return "The panes will log in as " + in.Username + ".", true, nil
	})
}

// createDemoUser signs up a new account with a random name and password.
func (a *act) createDemoUser() (string, bool, error) {
	name := "lab-" + strings.ToLower(rand.Text()[:8])
	pw := rand.Text()
	body, _ := json.Marshal(map[string]string{"username": name, "password": pw})
	res, err := a.send(nil, "Create a demo user: POST /v1/users", apiRequest{method: http.MethodPost, path: "/v1/users", body: body, contentType: "application/json"})
	if err != nil {
		return "", false, err
	}
	if res.status != http.StatusCreated {
		msg := res.problem()
		if res.problemType() == "signup_disabled" {
			msg += " Enter the username and password of an existing account instead."
		}
		return "No demo user: " + msg, false, nil
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := res.decode(&out); err != nil {
		return "", false, err
	}
	a.v.user = &labUser{ID: out.ID, Username: name, Password: pw, Demo: true}
	return "Created the demo user " + name + ".", true, nil
}

// ensureUser creates a demo user when the visitor has none.
func (a *act) ensureUser() error {
	if a.v.user != nil {
		return nil
	}
	summary, ok, err := a.createDemoUser()
	if err != nil {
		return err
	}
	if !ok {
		return &labError{http.StatusConflict, summary}
	}
	return nil
}

func (l *lab) paneAction(r *http.Request, v *visitor, _ []byte) labAnswer {
	mode, action := r.PathValue("mode"), r.PathValue("action")
	p := v.panes[mode]
	if p == nil {
		return labErr(http.StatusNotFound, "No such pane.")
	}
	var fn func(a *act, p *pane) (string, bool, error)
	switch action {
	case "login":
		fn = (*act).login
	case "me":
		fn = func(a *act, p *pane) (string, bool, error) {
			st, detail, err := a.me(p)
			return detail, st == http.StatusOK, err
		}
	case "refresh":
		fn = (*act).refreshPane
	case "logout":
		fn = (*act).logout
	default:
		return labErr(http.StatusNotFound, "No such action.")
	}
	return l.run(r, v, mode, action, func(a *act) (string, bool, error) { return fn(a, p) })
}

// learnUser records the user id the API reports.
func (a *act) learnUser(id string) {
	if id != "" && a.v.user != nil {
		a.v.user.ID = id
	}
}

// learnToken records the ids of an access token the lab received.
func (a *act) learnToken(raw string) {
	_, c, ok := decodeJWT(raw)
	if !ok {
		return
	}
	a.v.seeID(claimString(c, "sid"))
	a.v.seeJTI(claimString(c, "jti"))
	a.learnUser(claimString(c, "sub"))
}

func formBody(kv ...string) []byte {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return []byte(v.Encode())
}

const formType = "application/x-www-form-urlencoded"

func (a *act) login(p *pane) (string, bool, error) {
	if err := a.ensureUser(); err != nil {
		return "", false, err
	}
	u, now := a.v.user, a.l.cfg.Now()
	switch p.mode {
	case modeSession:
		body, _ := json.Marshal(map[string]string{"username": u.Username, "password": u.Password})
		res, err := a.send(p, "Log in: POST /v1/sessions", apiRequest{method: http.MethodPost, path: "/v1/sessions",
			body: body, contentType: "application/json", cookies: p.jar.forPath("/v1/sessions", now)})
		if err != nil {
			return "", false, err
		}
		if res.status != http.StatusCreated {
			return "Login refused: " + refusal(res), false, nil
		}
		var out struct {
			Session struct {
				ID string `json:"id"`
			} `json:"session"`
			User struct {
				ID string `json:"id"`
			} `json:"user"`
			CSRFToken string `json:"csrf_token"`
		}
		if err := res.decode(&out); err != nil {
			return "", false, err
		}
		p.csrf, p.sessionID = out.CSRFToken, out.Session.ID
		a.v.seeID(out.Session.ID)
		a.learnUser(out.User.ID)
		a.note("The server stored the session (only a hash of the secret); the browser holds the secret in the HttpOnly cookie %s and the page keeps the CSRF token.", a.l.sessionCookie)
		return "Logged in: session " + out.Session.ID + ".", true, nil

	case modeToken:
		res, err := a.send(p, "Log in: POST /v1/token (password grant)", apiRequest{method: http.MethodPost, path: "/v1/token",
			body: formBody("grant_type", "password", "username", u.Username, "password", u.Password), contentType: formType})
		if err != nil {
			return "", false, err
		}
		if res.status != http.StatusOK {
			return "Login refused: " + refusal(res), false, nil
		}
		if err := a.takePair(p, res); err != nil {
			return "", false, err
		}
		a.note("The app keeps both tokens in memory and sends the access token as Authorization: Bearer. The server stored a refresh family; the access token itself is stored nowhere.")
		return "Logged in: an access token and a refresh token.", true, nil

	default:
		res, err := a.send(p, "Log in: POST /v1/token (password grant, delivery=cookie)", apiRequest{method: http.MethodPost, path: "/v1/token",
			body:        formBody("grant_type", "password", "username", u.Username, "password", u.Password, "delivery", "cookie"),
			contentType: formType, cookies: p.jar.forPath("/v1/token", now)})
		if err != nil {
			return "", false, err
		}
		if res.status != http.StatusOK {
			return "Login refused: " + refusal(res), false, nil
		}
		var out struct {
			CSRFToken string `json:"csrf_token"`
		}
		if err := res.decode(&out); err != nil {
			return "", false, err
		}
		p.csrf = out.CSRFToken
		raw, _ := a.l.accessToken(p)
		a.learnToken(raw)
		a.addToken(p, nil)
		a.note("The JWT travels in the HttpOnly cookie %s (page scripts cannot read it); the refresh token in %s, sent only to /v1/token. The page keeps the CSRF token.", a.l.accessCookie, a.l.refreshCookie)
		return "Logged in: the access and refresh tokens are in cookies.", true, nil
	}
}

// credential adds p's credential to ar: the Bearer header in token mode,
// the cookies for ar's path otherwise.
func (l *lab) credential(p *pane, ar *apiRequest) {
	if ar.header == nil {
		ar.header = http.Header{}
	}
	if p.mode == modeToken {
		if p.access != "" {
			ar.header.Set("Authorization", "Bearer "+p.access)
		}
		return
	}
	path, _, _ := strings.Cut(ar.path, "?")
	ar.cookies = p.jar.forPath(path, l.cfg.Now())
}

// me calls GET /v1/me with p's credential and returns the status and a
// summary.
func (a *act) me(p *pane) (int, string, error) {
	ar := apiRequest{method: http.MethodGet, path: "/v1/me"}
	a.l.credential(p, &ar)
	res, err := a.send(p, "Call a protected API: GET /v1/me ("+p.mode+" pane)", ar)
	if err != nil {
		return 0, "", err
	}
	v := &verdict{Accepted: res.status == http.StatusOK, Status: res.status}
	var summary string
	if v.Accepted {
		var out struct {
			Auth struct {
				Mode string `json:"mode"`
			} `json:"auth"`
		}
		_ = res.decode(&out)
		v.Detail = "Accepted by Gatehouse's full verifier (signature, claims and revocation)."
		summary = fmt.Sprintf("%s pane: 200, accepted (auth mode %q).", p.mode, out.Auth.Mode)
	} else {
		v.Detail = fmt.Sprintf("Refused by Gatehouse: %d, %s", res.status, res.problem())
		if c := res.header.Get("WWW-Authenticate"); c != "" {
			v.Detail += " (WWW-Authenticate: " + c + ")"
		}
		summary = fmt.Sprintf("%s pane: %d, refused: %s", p.mode, res.status, res.problem())
	}
	if p.mode != modeSession {
		a.addToken(p, v)
	}
	return res.status, summary, nil
}

func (a *act) refreshPane(p *pane) (string, bool, error) {
	switch p.mode {
	case modeSession:
		return "", false, refuse("Session mode has no refresh: every use slides the session's idle timeout, up to its absolute timeout.")
	case modeToken:
		if p.refresh == "" {
			return "", false, refuse("This pane holds no refresh token: log in first.")
		}
		res, err := a.send(p, "Refresh: POST /v1/token (refresh_token grant)", apiRequest{method: http.MethodPost, path: "/v1/token",
			body: formBody("grant_type", "refresh_token", "refresh_token", p.refresh), contentType: formType})
		if err != nil {
			return "", false, err
		}
		if res.status != http.StatusOK {
			a.note("A client answered invalid_grant must log in again.")
			return "Refresh refused: " + refusal(res), false, nil
		}
		if err := a.takePair(p, res); err != nil {
			return "", false, err
		}
		a.note("Rotation: the old refresh token is spent. Presented again after the grace period, it is reuse, and the whole family is revoked.")
		return "Refreshed: a new access token and a new refresh token.", true, nil
	default:
		ar := apiRequest{method: http.MethodPost, path: "/v1/token", body: formBody("grant_type", "refresh_token", "delivery", "cookie"),
			contentType: formType, header: csrfHeader(p.csrf)}
		a.l.credential(p, &ar)
		if len(ar.cookies) == 0 {
			return "", false, refuse("This pane holds no refresh cookie: log in first.")
		}
		res, err := a.send(p, "Refresh: POST /v1/token (refresh_token grant, delivery=cookie)", ar)
		if err != nil {
			return "", false, err
		}
		if res.status != http.StatusOK {
			return "Refresh refused: " + refusal(res), false, nil
		}
		var out struct {
			CSRFToken string `json:"csrf_token"`
		}
		if err := res.decode(&out); err != nil {
			return "", false, err
		}
		p.csrf = out.CSRFToken
		raw, _ := a.l.accessToken(p)
		a.learnToken(raw)
		a.addToken(p, nil)
		return "Refreshed: both cookies set anew.", true, nil
	}
}

func (a *act) logout(p *pane) (string, bool, error) {
	switch p.mode {
	case modeSession:
		ar := apiRequest{method: http.MethodDelete, path: "/v1/sessions/current", header: csrfHeader(p.csrf)}
		a.l.credential(p, &ar)
		if len(ar.cookies) == 0 {
			return "", false, refuse("This pane holds no session cookie: log in first.")
		}
		res, err := a.send(p, "Log out: DELETE /v1/sessions/current", ar)
		if err != nil {
			return "", false, err
		}
		if res.status != http.StatusNoContent && res.status != http.StatusUnauthorized {
			return "Logout refused: " + refusal(res), false, nil
		}
		p.jar, p.csrf, p.sessionID = jar{}, "", ""
		if res.status == http.StatusUnauthorized {
			return "The session had already ended; the pane forgets its cookie.", true, nil
		}
		return "Logged out: the server deleted the session; the cookie is cleared.", true, nil

	case modeToken:
		if p.access == "" && p.refresh == "" {
			return "", false, refuse("This pane holds no token: log in first.")
		}
		old := p.access
		if p.access != "" {
			if _, err := a.send(p, "Log out: POST /v1/token/revoke (the access token)", apiRequest{method: http.MethodPost,
				path: "/v1/token/revoke", body: formBody("token", p.access, "token_type_hint", "access_token"), contentType: formType}); err != nil {
				return "", false, err
			}
		}
		if p.refresh != "" {
			if _, err := a.send(p, "Log out: POST /v1/token/revoke (the refresh token)", apiRequest{method: http.MethodPost,
				path: "/v1/token/revoke", body: formBody("token", p.refresh, "token_type_hint", "refresh_token"), contentType: formType}); err != nil {
				return "", false, err
			}
		}
		p.access, p.refresh = "", ""
		if old != "" {
			if err := a.checkCopy(p, old); err != nil {
				return "", false, err
			}
		}
		return "Logged out: the access token's jti is denylisted and the refresh family is revoked.", true, nil

	default:
		ar := apiRequest{method: http.MethodPost, path: "/v1/token/revoke", contentType: formType, header: csrfHeader(p.csrf)}
		a.l.credential(p, &ar)
		if len(ar.cookies) == 0 {
			return "", false, refuse("This pane holds no cookie: log in first.")
		}
		old, _ := a.l.accessToken(p)
		res, err := a.send(p, "Log out: POST /v1/token/revoke (refresh cookie)", ar)
		if err != nil {
			return "", false, err
		}
		if res.status != http.StatusOK {
			return "Logout refused: " + refusal(res), false, nil
		}
		p.jar, p.csrf = jar{}, ""
		if old != "" {
			if err := a.checkCopy(p, old); err != nil {
				return "", false, err
			}
		}
		return "Logged out: the refresh family is revoked, and with it the access token's sid; both cookies are cleared.", true, nil
	}
}

// checkCopy shows what a copy of a logged-out access token is still worth:
// refused by Gatehouse, accepted by a JWKS-only verifier until exp.
func (a *act) checkCopy(p *pane, raw string) error {
	ar := apiRequest{method: http.MethodGet, path: "/v1/me", header: http.Header{}}
	if p.mode == modeToken {
		ar.header.Set("Authorization", "Bearer "+raw)
	} else {
		ar.cookies = []*http.Cookie{{Name: a.l.accessCookie, Value: raw}}
	}
	res, err := a.send(p, "Check: GET /v1/me with a copy of the logged-out access token", ar)
	if err != nil {
		return err
	}
	v := &verdict{Accepted: res.status == http.StatusOK, Status: res.status, Detail: fmt.Sprintf("%d, %s", res.status, res.problem())}
	a.rec.Tokens = append(a.rec.Tokens, a.l.tokenView(a.r.Context(), p.mode, "a copy of the logged-out token", raw, v))
	a.note("A copy of the token (stolen, or cached by another service) is refused by Gatehouse, which consults revocation, but a verifier holding only the JWKS accepts it until exp.")
	return nil
}

// accessToken is p's current access token and where the client holds it.
func (l *lab) accessToken(p *pane) (raw, where string) {
	switch p.mode {
	case modeToken:
		return p.access, "Authorization: Bearer (the app keeps it in memory)"
	case modeHybrid:
		v, _ := p.jar.value(l.accessCookie, l.cfg.Now())
		return v, "cookie " + l.accessCookie + " (HttpOnly: scripts cannot read it)"
	}
	return "", ""
}

// addToken adds the view of p's access token to the record, with
// Gatehouse's verdict when the action asked for it.
func (a *act) addToken(p *pane, gatehouse *verdict) {
	raw, where := a.l.accessToken(p)
	if raw == "" {
		if p.mode == modeHybrid {
			a.note("The hybrid pane's browser holds no access cookie: it expired (Max-Age) or was cleared.")
		}
		return
	}
	a.rec.Tokens = append(a.rec.Tokens, a.l.tokenView(a.r.Context(), p.mode, where, raw, gatehouse))
}

// tokenView decodes raw and asks the JWKS-only verifier about it.
func (l *lab) tokenView(ctx context.Context, mode, where, raw string, gatehouse *verdict) jwtView {
	now := l.cfg.Now()
	jv := jwtView{Pane: mode, Where: where, Token: mask(raw), Bytes: len(raw), Gatehouse: gatehouse}
	h, c, ok := decodeJWT(raw)
	if ok {
		jv.Header, jv.Claims = h, c
		if exp, ok := claimTime(c, "exp"); ok {
			jv.ExpiresAt = exp
			jv.RemainingSeconds = exp.Sub(now).Seconds()
		}
	}
	_, err := l.cfg.JWKSOnly(ctx, raw)
	switch {
	case err == nil:
		jv.JWKSOnly = verdict{Accepted: true, Detail: "Accepted: the signature and claims are valid. Revocation is not consulted."}
	case errors.Is(err, token.ErrExpired):
		jv.JWKSOnly = verdict{Detail: "Refused: expired."}
	case errors.Is(err, token.ErrInvalidToken):
		jv.JWKSOnly = verdict{Detail: "Refused: " + token.Reason(err) + "."}
	default:
		jv.JWKSOnly = verdict{Detail: "Not verified: " + token.Reason(err)}
	}
	return jv
}

// loggedIn reports whether p holds a credential.
func (l *lab) loggedIn(p *pane) bool {
	now := l.cfg.Now()
	switch p.mode {
	case modeSession:
		_, ok := p.jar.value(l.sessionCookie, now)
		return ok
	case modeToken:
		return p.access != "" || p.refresh != ""
	}
	_, a := p.jar.value(l.accessCookie, now)
	_, r := p.jar.value(l.refreshCookie, now)
	return a || r
}

func (l *lab) probe(r *http.Request, v *visitor, _ []byte) labAnswer {
	return l.run(r, v, "lab", "probe", func(a *act) (string, bool, error) {
		var parts []string
		for _, m := range paneModes {
			p := v.panes[m]
			if !l.loggedIn(p) {
				continue
			}
			_, s, err := a.me(p)
			if err != nil {
				return "", false, err
			}
			parts = append(parts, s)
		}
		if len(parts) == 0 {
			return "", false, refuse("No pane is logged in.")
		}
		return strings.Join(parts, " "), true, nil
	})
}

// observation is what the lab saw right after a forced logout.
type observation struct {
	At    time.Time      `json:"at"`
	Panes []observedPane `json:"panes"`
}

type observedPane struct {
	Mode              string    `json:"mode"`
	GatehouseStatus   int       `json:"gatehouse_status"`
	GatehouseAccepted bool      `json:"gatehouse_accepted"`
	HasToken          bool      `json:"has_token"`
	JWKSOnlyAccepted  bool      `json:"jwks_only_accepted"`
	ExpiresAt         time.Time `json:"expires_at,omitzero"`
	RemainingSeconds  float64   `json:"remaining_seconds"`
}

func (l *lab) forceLogout(r *http.Request, v *visitor, _ []byte) labAnswer {
	if l.cfg.AdminKey == "" {
		return labErr(http.StatusConflict, "No admin key is configured: the lab cannot act as an admin.")
	}
	if v.user == nil || v.user.ID == "" {
		return labErr(http.StatusConflict, "Log a pane in first: the lab learns the user's id at the first login.")
	}
	return l.run(r, v, "lab", "force-logout", func(a *act) (string, bool, error) {
		res, err := a.send(nil, "Forced logout by an admin: POST /v1/admin/users/{id}/logout", apiRequest{method: http.MethodPost,
			path: "/v1/admin/users/" + url.PathEscape(v.user.ID) + "/logout", header: http.Header{"Authorization": {"Bearer " + l.cfg.AdminKey}}})
		if err != nil {
			return "", false, err
		}
		if res.status != http.StatusNoContent {
			return "Forced logout refused: " + refusal(res), false, nil
		}
		obs := &observation{At: l.cfg.Now().UTC(), Panes: []observedPane{}}
		for _, m := range paneModes {
			p := v.panes[m]
			if !l.loggedIn(p) {
				continue
			}
			st, _, err := a.me(p)
			if err != nil {
				return "", false, err
			}
			op := observedPane{Mode: m, GatehouseStatus: st, GatehouseAccepted: st == http.StatusOK}
			if raw, _ := l.accessToken(p); raw != "" {
				tv := l.tokenView(r.Context(), m, "", raw, nil)
				op.HasToken, op.JWKSOnlyAccepted = true, tv.JWKSOnly.Accepted
				op.ExpiresAt, op.RemainingSeconds = tv.ExpiresAt, max(tv.RemainingSeconds, 0)
			}
			obs.Panes = append(obs.Panes, op)
		}
		v.observation = obs
		a.note("Every session and refresh family of the user ended, and access tokens issued before now are refused by every Gatehouse verifier. A service that checks tokens with the JWKS alone learns nothing of it.")
		return summarizeObservation(obs), true, nil
	})
}

func summarizeObservation(o *observation) string {
	if len(o.Panes) == 0 {
		return "Forced logout done; no pane was logged in."
	}
	var parts []string
	for _, p := range o.Panes {
		s := fmt.Sprintf("%s pane: ", p.Mode)
		if p.GatehouseAccepted {
			s += "still accepted by Gatehouse"
		} else {
			s += fmt.Sprintf("refused by Gatehouse at once (%d)", p.GatehouseStatus)
		}
		if p.HasToken {
			if p.JWKSOnlyAccepted {
				s += fmt.Sprintf(", but a JWKS-only verifier accepts its token for %s more", roundDuration(time.Duration(p.RemainingSeconds*float64(time.Second))))
			} else {
				s += ", and refused by a JWKS-only verifier"
			}
		}
		parts = append(parts, s+".")
	}
	return strings.Join(parts, " ")
}

func roundDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	return d.Round(time.Second).String()
}

func (l *lab) rotateKeys(r *http.Request, v *visitor, _ []byte) labAnswer {
	if l.cfg.AdminKey == "" {
		return labErr(http.StatusConflict, "No admin key is configured: the lab cannot act as an admin.")
	}
	return l.run(r, v, "lab", "rotate-keys", func(a *act) (string, bool, error) {
		res, err := a.send(nil, "Rotate the signing key: POST /v1/admin/keys/rotate", apiRequest{method: http.MethodPost,
			path: "/v1/admin/keys/rotate", header: http.Header{"Authorization": {"Bearer " + l.cfg.AdminKey}}})
		if err != nil {
			return "", false, err
		}
		if res.status != http.StatusOK {
			return "Rotation refused: " + refusal(res), false, nil
		}
		var out struct {
			KID       string    `json:"kid"`
			SignsFrom time.Time `json:"signs_from"`
		}
		if err := res.decode(&out); err != nil {
			return "", false, err
		}
		jw, err := a.send(nil, "Fetch the public keys: GET /.well-known/jwks.json", apiRequest{method: http.MethodGet, path: "/.well-known/jwks.json"})
		if err != nil {
			return "", false, err
		}
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		_ = jw.decode(&set)
		a.note("Tokens signed by the old key stay valid until they expire: the old key stays in the JWKS until then. New tokens carry the new kid in their header.")
		return fmt.Sprintf("New key %s signs from %s; the JWKS lists %d keys.", out.KID, out.SignsFrom.UTC().Format(time.TimeOnly), len(set.Keys)), true, nil
	})
}

func (l *lab) advance(r *http.Request, v *visitor, body []byte) labAnswer {
	var in struct {
		Seconds int `json:"seconds"`
	}
	if !decodeLabBody(body, &in) {
		return labErr(http.StatusBadRequest, `Send {"seconds": n}.`)
	}
	d := time.Duration(in.Seconds) * time.Second
	if !slices.Contains(advanceChoices, d) {
		return labErr(http.StatusBadRequest, "Choose 60, 300, 600 or 3600 seconds.")
	}
	return l.run(r, v, "lab", "advance", func(a *act) (string, bool, error) {
		l.cfg.Advance(d)
		for _, m := range []string{modeToken, modeHybrid} {
			a.addToken(v.panes[m], nil)
		}
		a.note("The server's clock moved for everyone on this server. Records past their expiry no longer count as live: the store view drops them even before the purge deletes them.")
		return fmt.Sprintf("%s passed: the lab clock reads %s.", advanceLabel(d), l.cfg.Now().UTC().Format(time.DateTime)), true, nil
	})
}

// measurement is the live cost of each mode, measured in-process.
type measurement struct {
	At    time.Time    `json:"at"`
	Calls int          `json:"calls"`
	Rows  []measureRow `json:"rows"`
}

type measureRow struct {
	Mode             string  `json:"mode"`
	CredentialHeader string  `json:"credential_header"`
	CredentialBytes  int     `json:"credential_bytes"`
	RequestBytes     int     `json:"request_bytes"`
	Status           int     `json:"status"`
	Accepted         int     `json:"accepted"`
	GatehouseMicros  float64 `json:"gatehouse_us_per_op"`
	HasJWKSOnly      bool    `json:"has_jwks_only"`
	JWKSOnlyMicros   float64 `json:"jwks_only_us_per_op"`
	JWKSOnlyAccepted bool    `json:"jwks_only_accepted"`
}

func (l *lab) measure(r *http.Request, v *visitor, _ []byte) labAnswer {
	return l.run(r, v, "lab", "measure", (*act).measure)
}

// measure times GET /v1/verify, in-process, for each pane's credential, and
// the JWKS-only verifier for each access token; panes not logged in log in
// first.
func (a *act) measure() (string, bool, error) {
	if err := a.ensureUser(); err != nil {
		return "", false, err
	}
	m := &measurement{At: a.l.cfg.Now().UTC(), Calls: measureCalls, Rows: []measureRow{}}
	ctx := a.r.Context()
	reqs := make([]apiRequest, len(paneModes))
	tokens := make([]string, len(paneModes))
	for i, mode := range paneModes {
		p := a.v.panes[mode]
		if !a.l.loggedIn(p) {
			if _, ok, err := a.login(p); err != nil || !ok {
				if err == nil {
					err = refuse("The " + mode + " pane could not log in; see the exchange.")
				}
				return "", false, err
			}
		}
		ar := apiRequest{method: http.MethodGet, path: "/v1/verify", userAgent: p.userAgent()}
		a.l.credential(p, &ar)
		res, err := a.send(p, "Measure: GET /v1/verify ("+mode+" pane), then the same request "+fmt.Sprint(measureCalls)+" times", ar)
		if err != nil {
			return "", false, err
		}
		ex := a.rec.Exchanges[len(a.rec.Exchanges)-1]
		m.Rows = append(m.Rows, measureRow{Mode: mode, CredentialHeader: ex.Bytes.CredentialHeader, CredentialBytes: ex.Bytes.Credential,
			RequestBytes: ex.Bytes.Request, Status: res.status})
		reqs[i] = ar
		tokens[i], _ = a.l.accessToken(p)
	}
	// The modes take turns, call by call, so that whatever else the
	// machine does weighs on each of them alike.
	spent := make([]time.Duration, len(paneModes))
	jwks := make([]time.Duration, len(paneModes))
	jwksErr := make([]error, len(paneModes))
	for range measureCalls {
		for i := range paneModes {
			start := time.Now()
			res, err := a.l.h.callAPI(a.r, reqs[i])
			spent[i] += time.Since(start)
			if err != nil {
				return "", false, err
			}
			if res.status == http.StatusOK {
				m.Rows[i].Accepted++
			}
			if tokens[i] != "" {
				start := time.Now()
				_, jwksErr[i] = a.l.cfg.JWKSOnly(ctx, tokens[i])
				jwks[i] += time.Since(start)
			}
		}
	}
	for i := range m.Rows {
		m.Rows[i].GatehouseMicros = micros(spent[i], measureCalls)
		if tokens[i] != "" {
			m.Rows[i].HasJWKSOnly = true
			m.Rows[i].JWKSOnlyMicros = micros(jwks[i], measureCalls)
			m.Rows[i].JWKSOnlyAccepted = jwksErr[i] == nil
		}
	}
	a.v.measurement = m
	a.note("Each figure is the mean of %d in-process calls on this server, as it runs now: the request is built and passed to the API handler, which routes, authenticates and answers. No network is involved.", measureCalls)
	a.note("Both token verifiers cache the tokens they have verified (the signature is checked once per token); Gatehouse's still consults revocation on every call, and session mode looks the session up in the store.")
	var parts []string
	for _, row := range m.Rows {
		parts = append(parts, fmt.Sprintf("%s %.1f µs/op, %d B credential", row.Mode, row.GatehouseMicros, row.CredentialBytes))
		if row.Accepted < m.Calls {
			a.note("The %s pane's credential was refused (%d): its figure is the cost of a refusal. Log the pane out and in again to measure an accepted credential.", row.Mode, row.Status)
		}
	}
	return "Measured: " + strings.Join(parts, "; ") + ".", true, nil
}

func micros(d time.Duration, n int) float64 {
	return float64(d.Nanoseconds()) / float64(n) / 1e3
}

// stateView is the lab's state as the visitor's page shows it.
type stateView struct {
	Now         time.Time      `json:"now"`
	NowMS       int64          `json:"now_ms"`
	User        *userState     `json:"user"`
	Admin       bool           `json:"admin"`
	Signup      bool           `json:"signup"`
	Panes       []paneState    `json:"panes"`
	Timeline    []timelineItem `json:"timeline"`
	Measurement *measurement   `json:"measurement"`
	Observation *observation   `json:"observation"`
}

type userState struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Password string `json:"password"`
	Demo     bool   `json:"demo"`
}

type paneState struct {
	Mode      string     `json:"mode"`
	LoggedIn  bool       `json:"logged_in"`
	Holds     []heldItem `json:"holds"`
	SessionID string     `json:"session_id,omitempty"`
	Token     *jwtView   `json:"token,omitempty"`
}

// heldItem is a secret the client holds, masked.
type heldItem struct {
	What  string `json:"what"`
	Value string `json:"value"`
	Where string `json:"where"`
}

type timelineItem struct {
	ID      int       `json:"id"`
	At      time.Time `json:"at"`
	Pane    string    `json:"pane"`
	Action  string    `json:"action"`
	Summary string    `json:"summary"`
	OK      bool      `json:"ok"`
}

func (l *lab) stateView(r *http.Request, v *visitor) stateView {
	now := l.cfg.Now()
	s := stateView{Now: now.UTC(), NowMS: now.UnixMilli(), Admin: l.cfg.AdminKey != "", Signup: l.h.cfg.Signup,
		Panes: []paneState{}, Timeline: []timelineItem{}, Measurement: v.measurement, Observation: v.observation}
	if v.user != nil {
		s.User = &userState{ID: v.user.ID, Username: v.user.Username, Password: mask(v.user.Password), Demo: v.user.Demo}
	}
	for _, m := range paneModes {
		p := v.panes[m]
		ps := paneState{Mode: m, LoggedIn: l.loggedIn(p), Holds: []heldItem{}, SessionID: p.sessionID}
		for _, c := range p.jar.all() {
			where := "cookie, Path=" + c.path
			if !c.expires.IsZero() {
				if now.Before(c.expires) {
					where += ", expires " + c.expires.UTC().Format(time.DateTime)
				} else {
					where += ", expired: no longer sent"
				}
			}
			ps.Holds = append(ps.Holds, heldItem{What: c.name, Value: mask(c.value), Where: where})
		}
		if p.csrf != "" {
			ps.Holds = append(ps.Holds, heldItem{What: "CSRF token", Value: mask(p.csrf), Where: "page memory, sent as " + csrf.HeaderName})
		}
		if p.access != "" {
			ps.Holds = append(ps.Holds, heldItem{What: "access token", Value: mask(p.access), Where: "app memory, sent as Authorization: Bearer"})
		}
		if p.refresh != "" {
			ps.Holds = append(ps.Holds, heldItem{What: "refresh token", Value: mask(p.refresh), Where: "app storage, sent only to /v1/token"})
		}
		if raw, where := l.accessToken(p); raw != "" {
			tv := l.tokenView(r.Context(), m, where, raw, nil)
			ps.Token = &tv
		}
		s.Panes = append(s.Panes, ps)
	}
	for i := len(v.records) - 1; i >= 0; i-- {
		rec := v.records[i]
		s.Timeline = append(s.Timeline, timelineItem{ID: rec.ID, At: rec.At, Pane: rec.Pane, Action: rec.Action, Summary: rec.Summary, OK: rec.OK})
	}
	return s
}

// takePair keeps the token pair of a body-mode token response in pane p.
func (a *act) takePair(p *pane, res *apiResponse) error {
	var out struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	if err := res.decode(&out); err != nil {
		return err
	}
	p.access, p.refresh = out.Access, out.Refresh
	a.learnToken(p.access)
	a.addToken(p, nil)
	return nil
}

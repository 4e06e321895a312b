package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// maxFormBytes bounds a form post, as the API bounds its bodies.
const maxFormBytes = 64 << 10

// notices are the messages a redirect may ask a page to show, by key: a
// query parameter never carries text into a page.
var notices = map[string]string{
	"created":    "Your account was created. Log in to continue.",
	"logged_out": "You are logged out.",
	"revoked":    "That session was ended; the device is logged out.",
	"others":     "Every other session was ended; only this device is logged in.",
	"password":   "Your password was changed. Your other sessions were ended.",
	"expired":    "Your session has ended. Log in again.",
	"family":     "That app login was ended; its tokens are refused from now on.",
}

// userView, sessionView and deviceView mirror the API's bodies.
type userView struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
}

type sessionView struct {
	ID            string    `json:"id"`
	CreatedAt     time.Time `json:"created_at"`
	LastSeenAt    time.Time `json:"last_seen_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"`
	ExpiresAt     time.Time `json:"expires_at"`
}

type currentSession struct {
	Session   sessionView `json:"session"`
	User      userView    `json:"user"`
	CSRFToken string      `json:"csrf_token"`
}

type deviceView struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	Current    bool      `json:"current"`
}

// errSessionEnded means the browser has no valid session: the page
// redirects to the login page.
var errSessionEnded = errors.New("no valid session")

// parseForm reads a form post, bounded; false means the answer was written.
func (h *Handler) parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.renderError(w, http.StatusBadRequest, "The form could not be read.")
		return false
	}
	return true
}

// internalError answers a failure of the in-process call itself.
func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, err error) {
	h.log.ErrorContext(r.Context(), "page request failed", "method", r.Method, "route", r.Pattern, "error", err)
	h.renderError(w, http.StatusInternalServerError, "The server could not complete the request. Try again later.")
}

// apiFailure shows the API's refusal on an error page with its status.
func (h *Handler) apiFailure(w http.ResponseWriter, res *apiResponse) {
	h.renderError(w, res.status, res.problem())
}

func seeOther(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (h *Handler) root(w http.ResponseWriter, r *http.Request) {
	if len(h.browserCookies(r)) > 0 {
		seeOther(w, r, "/account")
		return
	}
	seeOther(w, r, "/login")
}

type loginPage struct {
	Username string
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "login", pageData{Title: "Log in", Notice: notices[r.URL.Query().Get("m")], Page: loginPage{}})
}

func (h *Handler) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	res, err := h.pageCall(w, r, http.MethodPost, "/v1/sessions", map[string]string{"username": username, "password": password}, "")
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	if res.status == http.StatusCreated {
		seeOther(w, r, "/account")
		return
	}
	h.render(w, res.status, "login", pageData{Title: "Log in", Error: refusal(res), Page: loginPage{Username: username}})
}

// refusal is the message shown for a refused form: the API's detail, with
// the wait when the API throttles.
func refusal(res *apiResponse) string {
	msg := res.problem()
	if res.status == http.StatusTooManyRequests {
		if s := res.retryAfter(); s > 0 {
			msg = fmt.Sprintf("%s (wait %d s)", msg, s)
		}
	}
	return msg
}

func (h *Handler) signupForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "signup", pageData{Title: "Sign up", Page: loginPage{}})
}

func (h *Handler) signupSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	if password != r.PostForm.Get("confirm_password") {
		h.render(w, http.StatusBadRequest, "signup", pageData{Title: "Sign up", Error: "The two passwords differ.", Page: loginPage{Username: username}})
		return
	}
	res, err := h.pageCall(w, r, http.MethodPost, "/v1/users", map[string]string{"username": username, "password": password}, "")
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	if res.status == http.StatusCreated {
		seeOther(w, r, "/login?m=created")
		return
	}
	h.render(w, res.status, "signup", pageData{Title: "Sign up", Error: refusal(res), Page: loginPage{Username: username}})
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	res, err := h.pageCall(w, r, http.MethodDelete, "/v1/sessions/current", nil, r.PostForm.Get("csrf_token"))
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	switch res.status {
	case http.StatusNoContent, http.StatusUnauthorized:
		// 401: the session had already ended; the browser is logged out.
		seeOther(w, r, "/login?m=logged_out")
	default:
		h.apiFailure(w, res)
	}
}

// current loads the browser's session: errSessionEnded when it has none.
func (h *Handler) current(w http.ResponseWriter, r *http.Request) (*currentSession, *apiResponse, error) {
	res, err := h.pageCall(w, r, http.MethodGet, "/v1/sessions/current", nil, "")
	if err != nil {
		return nil, nil, err
	}
	switch res.status {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return nil, res, errSessionEnded
	default:
		return nil, res, nil
	}
	var cur currentSession
	if err := res.decode(&cur); err != nil {
		return nil, res, err
	}
	return &cur, res, nil
}

type accountPage struct {
	User     userView
	Session  sessionView
	Devices  []deviceView
	Others   int
	Families []familyView
}

// familyView mirrors GET /v1/token/families: a login in token or hybrid
// mode (an app, an API client).
type familyView struct {
	ID         string    `json:"id"`
	Delivery   string    `json:"delivery"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
}

func (h *Handler) account(w http.ResponseWriter, r *http.Request) {
	h.renderAccount(w, r, http.StatusOK, notices[r.URL.Query().Get("m")], "")
}

// renderAccount shows the account page with a notice or an error.
func (h *Handler) renderAccount(w http.ResponseWriter, r *http.Request, status int, notice, errMsg string) {
	cur, res, err := h.current(w, r)
	if errors.Is(err, errSessionEnded) {
		to := "/login"
		if len(h.browserCookies(r)) > 0 {
			to = "/login?m=expired"
		}
		seeOther(w, r, to)
		return
	}
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	if cur == nil {
		h.apiFailure(w, res)
		return
	}
	list, err := h.pageCall(w, r, http.MethodGet, "/v1/sessions", nil, "")
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	if list.status != http.StatusOK {
		h.apiFailure(w, list)
		return
	}
	var devices struct {
		Sessions []deviceView `json:"sessions"`
	}
	if err := list.decode(&devices); err != nil {
		h.internalError(w, r, err)
		return
	}
	p := accountPage{User: cur.User, Session: cur.Session, Devices: devices.Sessions}
	// Token-mode logins, when the server runs token mode (404 otherwise).
	fl, err := h.pageCall(w, r, http.MethodGet, "/v1/token/families", nil, "")
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	if fl.status == http.StatusOK {
		var fams struct {
			Families []familyView `json:"families"`
		}
		if err := fl.decode(&fams); err != nil {
			h.internalError(w, r, err)
			return
		}
		p.Families = fams.Families
	}
	// This device first, then the others as the API lists them (newest
	// first).
	slices.SortStableFunc(p.Devices, func(a, b deviceView) int {
		switch {
		case a.Current == b.Current:
			return 0
		case a.Current:
			return -1
		}
		return 1
	})
	for _, d := range p.Devices {
		if !d.Current {
			p.Others++
		}
	}
	h.render(w, status, "account", pageData{Title: "Your account", LoggedIn: true, CSRF: cur.CSRFToken,
		Notice: notice, Error: errMsg, Page: p})
}

func (h *Handler) revokeSession(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	res, err := h.pageCall(w, r, http.MethodDelete, "/v1/sessions/"+url.PathEscape(r.PathValue("id")), nil, r.PostForm.Get("csrf_token"))
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	switch {
	case res.status == http.StatusNoContent && h.clearsSession(res):
		seeOther(w, r, "/login?m=logged_out")
	case res.status == http.StatusNoContent:
		seeOther(w, r, "/account?m=revoked")
	case res.status == http.StatusNotFound:
		h.renderAccount(w, r, http.StatusNotFound, "", "That session does not exist or has already ended.")
	default:
		h.apiFailure(w, res)
	}
}

func (h *Handler) revokeFamily(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	res, err := h.pageCall(w, r, http.MethodDelete, "/v1/token/families/"+url.PathEscape(r.PathValue("id")), nil, r.PostForm.Get("csrf_token"))
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	switch res.status {
	case http.StatusNoContent:
		seeOther(w, r, "/account?m=family")
	case http.StatusNotFound:
		h.renderAccount(w, r, http.StatusNotFound, "", "That app login does not exist or has already ended.")
	default:
		h.apiFailure(w, res)
	}
}

func (h *Handler) revokeOthers(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	res, err := h.pageCall(w, r, http.MethodDelete, "/v1/sessions?others=true", nil, r.PostForm.Get("csrf_token"))
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	if res.status == http.StatusNoContent {
		seeOther(w, r, "/account?m=others")
		return
	}
	h.apiFailure(w, res)
}

func (h *Handler) passwordForm(w http.ResponseWriter, r *http.Request) {
	h.renderPassword(w, r, http.StatusOK, "")
}

func (h *Handler) renderPassword(w http.ResponseWriter, r *http.Request, status int, errMsg string) {
	cur, res, err := h.current(w, r)
	if errors.Is(err, errSessionEnded) {
		seeOther(w, r, "/login?m=expired")
		return
	}
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	if cur == nil {
		h.apiFailure(w, res)
		return
	}
	h.render(w, status, "password", pageData{Title: "Change password", LoggedIn: true, CSRF: cur.CSRFToken, Error: errMsg, Page: cur.User})
}

func (h *Handler) passwordSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	next := r.PostForm.Get("new_password")
	if next != r.PostForm.Get("confirm_password") {
		h.renderPassword(w, r, http.StatusBadRequest, "The two new passwords differ.")
		return
	}
	body := map[string]string{"current_password": r.PostForm.Get("current_password"), "new_password": next}
	res, err := h.pageCall(w, r, http.MethodPost, "/v1/me/password", body, r.PostForm.Get("csrf_token"))
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	switch res.status {
	case http.StatusNoContent:
		seeOther(w, r, "/account?m=password")
	case http.StatusUnauthorized:
		seeOther(w, r, "/login?m=expired")
	case http.StatusBadRequest, http.StatusTooManyRequests:
		h.renderPassword(w, r, res.status, refusal(res))
	case http.StatusForbidden:
		if res.problemType() == "csrf" {
			h.apiFailure(w, res)
			return
		}
		h.renderPassword(w, r, res.status, res.problem())
	default:
		h.apiFailure(w, res)
	}
}

package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/throttle"
)

type sessionView struct {
	ID            string    `json:"id"`
	CreatedAt     time.Time `json:"created_at"`
	LastSeenAt    time.Time `json:"last_seen_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"`
	ExpiresAt     time.Time `json:"expires_at"`
}

func viewSession(s *session.Session) sessionView {
	return sessionView{ID: s.ID, CreatedAt: s.CreatedAt.UTC(), LastSeenAt: s.LastSeenAt.UTC(),
		IdleExpiresAt: s.IdleExpiresAt.UTC(), ExpiresAt: s.ExpiresAt.UTC()}
}

type sessionBody struct {
	Session   sessionView `json:"session"`
	User      userView    `json:"user"`
	CSRFToken string      `json:"csrf_token"`
}

// errLoginFailed is the one answer to every failed login: the same status,
// body and headers whatever was wrong.
func errLoginFailed() *apiError {
	return &apiError{status: http.StatusUnauthorized, class: classUnauthorized,
		detail: "The username or password is wrong.", wwwAuth: challengeBearer}
}

// attempt is one throttled password check: per account and per client
// address. Begin reserves it in both limiters; it must end with exactly one
// of fail, succeed or abandon (see throttle.Limiter).
type attempt struct {
	s                  *Server
	r                  *http.Request
	accountKey, ipKey  string
	normalisedUsername string
}

// beginAttempt reserves a login attempt, or answers 429 with the longer
// wait when either limiter refuses. A username that cannot be normalised can
// never log in: it is throttled by address only, so that junk names cannot
// fill the per-account limiter.
func (s *Server) beginAttempt(r *http.Request, username string) (*attempt, error) {
	a := &attempt{s: s, r: r, ipKey: throttle.IPKey(s.clientIP(r))}
	if n, err := account.NormalizeUsername(username); err == nil {
		a.normalisedUsername = n
		a.accountKey = throttle.AccountKey(n)
	}
	ctx := r.Context()
	var waitA time.Duration
	if a.accountKey != "" {
		var err error
		if waitA, err = s.cfg.AccountLimiter.Check(ctx, a.accountKey); err != nil {
			return nil, err
		}
	}
	waitI, err := s.cfg.IPLimiter.Check(ctx, a.ipKey)
	if err != nil {
		if waitA == 0 && a.accountKey != "" {
			_ = s.cfg.AccountLimiter.Release(ctx, a.accountKey)
		}
		return nil, err
	}
	if waitA == 0 && waitI == 0 {
		return a, nil
	}
	if waitA == 0 && a.accountKey != "" {
		_ = s.cfg.AccountLimiter.Release(ctx, a.accountKey)
	}
	if waitI == 0 {
		_ = s.cfg.IPLimiter.Release(ctx, a.ipKey)
	}
	return nil, &apiError{status: http.StatusTooManyRequests, class: classTooMany,
		detail: "Too many failed attempts; try again later.", retryAfter: max(waitA, waitI)}
}

// fail counts a wrong password against the account and the address.
func (a *attempt) fail() error {
	ctx := context.WithoutCancel(a.r.Context())
	var errA error
	if a.accountKey != "" {
		errA = a.s.cfg.AccountLimiter.Failure(ctx, a.accountKey)
	}
	return errors.Join(errA, a.s.cfg.IPLimiter.Failure(ctx, a.ipKey))
}

// succeed clears the account's failures; the address keeps its count, so
// that an attacker cannot wash an address by logging in to their own
// account between guesses.
func (a *attempt) succeed() error {
	ctx := context.WithoutCancel(a.r.Context())
	return errors.Join(a.s.cfg.AccountLimiter.Success(ctx, a.accountKey), a.s.cfg.IPLimiter.Release(ctx, a.ipKey))
}

// abandon ends an attempt whose password was not checked.
func (a *attempt) abandon() {
	ctx := context.WithoutCancel(a.r.Context())
	if a.accountKey != "" {
		_ = a.s.cfg.AccountLimiter.Release(ctx, a.accountKey)
	}
	_ = a.s.cfg.IPLimiter.Release(ctx, a.ipKey)
}

// knownUsername is the username to record in the audit for a login attempt:
// the account's, when one exists, and nothing otherwise, so that a password
// typed into the username field never reaches a log line.
func (s *Server) knownUsername(ctx context.Context, a *attempt) (userID, username string) {
	if a.normalisedUsername == "" {
		return "", ""
	}
	u, err := s.cfg.Accounts.UserByUsername(ctx, a.normalisedUsername)
	if err != nil {
		return "", ""
	}
	return u.ID, u.Username
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var req credentialsRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := requireString("username", req.Username); err != nil {
		return err
	}
	if err := requireString("password", req.Password); err != nil {
		return err
	}
	ctx := r.Context()
	at, err := s.beginAttempt(r, req.Username)
	if err != nil {
		if ae, ok := err.(*apiError); ok && ae.status == http.StatusTooManyRequests {
			s.cfg.Metrics.Login(modeSession, "throttled")
			s.recordThrottled(r, req.Username)
		}
		return err
	}
	u, err := s.cfg.Accounts.Authenticate(ctx, req.Username, req.Password)
	if errors.Is(err, account.ErrBadCredentials) {
		s.cfg.Metrics.Login(modeSession, "failure")
		uid, name := s.knownUsername(ctx, at)
		s.record(r, audit.Event{Type: audit.TypeLoginFailure, UserID: uid, Username: name, Reason: "bad_credentials"})
		if err := at.fail(); err != nil {
			return err
		}
		return errLoginFailed()
	}
	if err != nil {
		at.abandon()
		s.cfg.Metrics.Login(modeSession, "error")
		return err
	}
	if err := at.succeed(); err != nil {
		return err
	}
	// The browser is replacing its session: end the one it presented, if any.
	if c, err := r.Cookie(s.cookies.session); err == nil {
		if old, err := session.ParseSecret(c.Value); err == nil {
			if err := s.cfg.Sessions.Delete(ctx, old); err != nil {
				return err
			}
		}
	}
	secret, sess, err := s.cfg.Sessions.Create(ctx, u.ID, session.Meta{
		UserAgent: cleanUserAgent(r.UserAgent()),
		IP:        s.clientIP(r).String(),
	})
	if err != nil {
		s.cfg.Metrics.Login(modeSession, "error")
		return err
	}
	s.cfg.Metrics.Login(modeSession, "success")
	s.record(r, audit.Event{Type: audit.TypeLoginSuccess, UserID: u.ID, Username: u.Username, SessionID: sess.ID})
	s.record(r, audit.Event{Type: audit.TypeSessionCreated, UserID: u.ID, SessionID: sess.ID})
	http.SetCookie(w, s.sessionCookie(secret.Encode(), int(sess.ExpiresAt.Sub(s.clock.Now())/time.Second)))
	writeJSON(w, http.StatusCreated, sessionBody{Session: viewSession(sess), User: viewUser(u), CSRFToken: secret.CSRFToken()})
	return nil
}

func (s *Server) currentSession(w http.ResponseWriter, r *http.Request, p *principal) error {
	writeJSON(w, http.StatusOK, sessionBody{Session: viewSession(p.session), User: viewUser(p.user), CSRFToken: p.secret.CSRFToken()})
	return nil
}

func (s *Server) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, s.sessionCookie("", -1))
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := s.cfg.Sessions.Delete(r.Context(), p.secret); err != nil {
		return err
	}
	s.record(r, audit.Event{Type: audit.TypeLogout, UserID: p.user.ID, SessionID: p.session.ID})
	s.clearSessionCookie(w)
	noContent(w)
	return nil
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

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request, p *principal) error {
	ss, err := s.cfg.Sessions.List(r.Context(), p.user.ID)
	if err != nil {
		return err
	}
	out := make([]deviceView, 0, len(ss))
	for _, x := range ss {
		out = append(out, deviceView{ID: x.ID, CreatedAt: x.CreatedAt.UTC(), LastSeenAt: x.LastSeenAt.UTC(),
			ExpiresAt: x.ExpiresAt.UTC(), UserAgent: x.UserAgent, IP: x.IP, Current: x.ID == p.session.ID})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
	return nil
}

func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	ended, err := s.cfg.Sessions.Revoke(r.Context(), p.user.ID, id)
	if errors.Is(err, session.ErrNotFound) {
		return problemf(http.StatusNotFound, classNotFound, "No such session.")
	}
	if err != nil {
		return err
	}
	s.record(r, audit.Event{Type: audit.TypeSessionRevoked, UserID: p.user.ID, SessionID: ended.ID, Reason: "user"})
	if ended.ID == p.session.ID {
		s.clearSessionCookie(w)
	}
	noContent(w)
	return nil
}

func (s *Server) revokeSessions(w http.ResponseWriter, r *http.Request, p *principal) error {
	var keep *session.Secret
	switch r.URL.Query().Get("others") {
	case "true":
		keep = &p.secret
	case "", "false":
	default:
		return badRequest(`Query parameter "others" must be "true" or "false".`)
	}
	ended, err := s.cfg.Sessions.RevokeAll(r.Context(), p.user.ID, keep)
	if err != nil {
		return err
	}
	for _, e := range ended {
		s.record(r, audit.Event{Type: audit.TypeSessionRevoked, UserID: p.user.ID, SessionID: e.ID, Reason: "user"})
	}
	if keep == nil {
		s.clearSessionCookie(w)
	}
	noContent(w)
	return nil
}

// recordThrottled audits a throttled login, naming the account only when
// it exists.
func (s *Server) recordThrottled(r *http.Request, username string) {
	var uid, name string
	if n, err := account.NormalizeUsername(username); err == nil {
		if u, err := s.cfg.Accounts.UserByUsername(r.Context(), n); err == nil {
			uid, name = u.ID, u.Username
		}
	}
	s.record(r, audit.Event{Type: audit.TypeLoginThrottled, UserID: uid, Username: name})
}

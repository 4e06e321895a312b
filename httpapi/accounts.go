package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store"
	"github.com/gatehouse-auth/gatehouse/throttle"
)

// userView is a user as the API shows it.
type userView struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
}

func viewUser(u *account.User) userView {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return userView{ID: u.ID, Username: u.Username, Roles: roles, CreatedAt: u.CreatedAt.UTC()}
}

type credentialsRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	if !s.cfg.Signup {
		return problemf(http.StatusForbidden, classSignupDisabled, "Sign-up is disabled on this server.")
	}
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
	u, err := s.cfg.Accounts.Register(r.Context(), req.Username, req.Password)
	switch {
	case errors.Is(err, account.ErrUsernameTaken):
		return problemf(http.StatusConflict, classUsernameTaken, "That username is taken.")
	case errors.Is(err, account.ErrInvalidUsername):
		return problemf(http.StatusBadRequest, classInvalidUsername, "%s", userMessage(err))
	case errors.Is(err, account.ErrPasswordPolicy):
		return problemf(http.StatusBadRequest, classPasswordPolicy, "%s", userMessage(err))
	case err != nil:
		return err
	}
	s.record(r, audit.Event{Type: audit.TypeUserCreated, UserID: u.ID, Username: u.Username})
	writeJSON(w, http.StatusCreated, map[string]any{"id": u.ID, "username": u.Username, "created_at": u.CreatedAt.UTC()})
	return nil
}

// userMessage is the client-facing text of a validation error from the
// account package: its messages name the rule, never the value.
func userMessage(err error) string {
	return err.Error()
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, p *principal) error {
	auth := map[string]any{"mode": p.mode}
	if p.session != nil {
		auth["session_id"] = p.session.ID
		auth["expires_at"] = p.session.ExpiresAt.UTC()
	}
	if p.claims != nil {
		auth["sid"] = p.claims.SID
		auth["jti"] = p.claims.JTI
		auth["issued_at"] = p.claims.IssuedAt.UTC()
		auth["expires_at"] = p.claims.ExpiresAt.UTC()
	}
	v := viewUser(p.user)
	body := map[string]any{"id": v.ID, "username": v.Username, "roles": v.Roles, "auth": auth}
	// A browser app authenticated by a cookie gets its CSRF token back here
	// after a page reload (hybrid mode has no other way to read it).
	switch p.mode {
	case modeSession:
		body["csrf_token"] = p.secret.CSRFToken()
	case modeCookieToken:
		body["csrf_token"] = s.hybridCSRF(p.claims.SID)
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req passwordRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := requireString("current_password", req.CurrentPassword); err != nil {
		return err
	}
	if err := requireString("new_password", req.NewPassword); err != nil {
		return err
	}
	ctx := r.Context()
	key := throttle.AccountKey(p.user.Username)
	wait, err := s.cfg.AccountLimiter.Check(ctx, key)
	if err != nil {
		return err
	}
	if wait > 0 {
		s.record(r, audit.Event{Type: audit.TypeLoginThrottled, UserID: p.user.ID, Username: p.user.Username, Reason: "password_change"})
		return &apiError{status: http.StatusTooManyRequests, class: classTooMany, detail: "Too many attempts; try again later.", retryAfter: wait}
	}
	lctx := context.WithoutCancel(ctx)
	// The user's other credentials end before the new password is stored:
	// if ending them fails, the password is unchanged and the user can try
	// again, instead of a new password with an attacker's sessions alive.
	var ended []*session.Session
	endOthers := func(context.Context) error {
		var keep = &p.secret
		if p.mode != modeSession {
			keep = nil
		}
		var err error
		if ended, err = s.cfg.Sessions.RevokeAll(lctx, p.user.ID, keep); err != nil {
			return err
		}
		if s.cfg.Tokens == nil {
			return nil
		}
		fams, err := s.cfg.Tokens.Refresh.List(lctx, p.user.ID)
		if err != nil {
			return err
		}
		for _, f := range fams {
			if p.claims != nil && f.ID == p.claims.SID {
				continue // the caller's own login stays
			}
			if _, err := s.cfg.Tokens.Refresh.RevokeFamily(lctx, p.user.ID, f.ID); err != nil {
				return err
			}
			if err := s.revokeSID(lctx, f.ID); err != nil {
				return err
			}
			s.record(r, audit.Event{Type: audit.TypeTokenRevoked, UserID: p.user.ID, SessionID: f.ID, Reason: "password_changed"})
		}
		return nil
	}
	err = s.cfg.Accounts.ChangePasswordThen(ctx, p.user.ID, req.CurrentPassword, req.NewPassword, endOthers)
	switch {
	case errors.Is(err, account.ErrBadCredentials):
		if ferr := s.cfg.AccountLimiter.Failure(lctx, key); ferr != nil {
			return ferr
		}
		s.record(r, audit.Event{Type: audit.TypePasswordChangeFailed, UserID: p.user.ID, Username: p.user.Username, SessionID: p.sessionID(), Reason: "wrong_current_password"})
		return problemf(http.StatusForbidden, classForbidden, "The current password is wrong.")
	case errors.Is(err, account.ErrPasswordPolicy):
		_ = s.cfg.AccountLimiter.Release(lctx, key)
		return problemf(http.StatusBadRequest, classPasswordPolicy, "%s", userMessage(err))
	case errors.Is(err, store.ErrNotFound):
		_ = s.cfg.AccountLimiter.Release(lctx, key)
		return errInvalidCredential()
	case err != nil:
		_ = s.cfg.AccountLimiter.Release(lctx, key)
		return err
	}
	if err := s.cfg.AccountLimiter.Success(lctx, key); err != nil {
		return err
	}
	for _, e := range ended {
		s.record(r, audit.Event{Type: audit.TypeSessionRevoked, UserID: p.user.ID, SessionID: e.ID, Reason: "password_changed"})
	}
	s.record(r, audit.Event{Type: audit.TypePasswordChanged, UserID: p.user.ID, Username: p.user.Username, SessionID: p.sessionID()})
	noContent(w)
	return nil
}

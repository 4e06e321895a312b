package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/store"
)

func (s *Server) forceLogout(w http.ResponseWriter, r *http.Request, actor string) error {
	ctx := r.Context()
	id := r.PathValue("id")
	u, err := s.cfg.Accounts.User(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return problemf(http.StatusNotFound, classNotFound, "No such user.")
	}
	if err != nil {
		return err
	}
	now := s.clock.Now()
	// The revoked-before time first: from here on every credential issued
	// earlier is refused, even while the sessions are being deleted.
	if err := s.cfg.Accounts.RevokeAll(ctx, u.ID, now); err != nil {
		return err
	}
	if s.cfg.Tokens != nil {
		lctx := context.WithoutCancel(ctx)
		if err := s.cfg.Tokens.Revocations.RevokeUser(lctx, u.ID, now, now.Add(MaxAccessLifetime)); err != nil {
			return err
		}
		fams, err := s.cfg.Tokens.Refresh.RevokeUser(lctx, u.ID)
		if err != nil {
			return err
		}
		for _, f := range fams {
			if err := s.revokeSID(lctx, f.ID); err != nil {
				return err
			}
			s.record(r, audit.Event{Type: audit.TypeTokenRevoked, UserID: u.ID, SessionID: f.ID, ActorID: actor, Reason: "forced_logout"})
		}
	}
	ended, err := s.cfg.Sessions.RevokeAll(ctx, u.ID, nil)
	if err != nil {
		return err
	}
	for _, e := range ended {
		s.record(r, audit.Event{Type: audit.TypeSessionRevoked, UserID: u.ID, SessionID: e.ID, ActorID: actor, Reason: "forced_logout"})
	}
	s.record(r, audit.Event{Type: audit.TypeUserForcedLogout, UserID: u.ID, Username: u.Username, ActorID: actor})
	noContent(w)
	return nil
}

func (s *Server) auditEvents(w http.ResponseWriter, r *http.Request, actor string) error {
	q := r.URL.Query()
	f := audit.Filter{UserID: q.Get("user_id"), Type: q.Get("type"), Limit: 100}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return badRequest(`Query parameter "limit" must be a whole number from 1 to 1000.`)
		}
		f.Limit = n
	}
	events, err := s.cfg.Audit.Events(r.Context(), f)
	if err != nil {
		return err
	}
	if events == nil {
		events = []*audit.Event{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": events})
	return nil
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Revocation paths.
const (
	pathSessionLogout = "session-logout"
	pathTokenRevoke   = "token-revoke"
	pathForced        = "forced-logout/"
	pathJWKSOnly      = "jwks-only"
)

// poll is the outcome of polling one revoked credential.
type poll struct {
	delay    time.Duration
	accepted int
	timedOut bool
}

// pollRefused presents c to GET /v1/verify back to back, from ack (when
// the revocation was answered) until an answer refuses it or
// cfg.RevokeWait has passed.
func (b *bencher) pollRefused(ctx context.Context, client *http.Client, c credential, ack time.Time) (poll, error) {
	var p poll
	for {
		st, _, err := b.verifyStatus(ctx, client, c)
		if err != nil {
			return p, fmt.Errorf("bench: poll a revoked %s: %w", modeLabels[c.mode], err)
		}
		d := time.Since(ack)
		switch st {
		case http.StatusUnauthorized:
			p.delay = d
			return p, nil
		case http.StatusOK:
			p.accepted++
		default:
			return p, fmt.Errorf("bench: poll a revoked %s: status %d", modeLabels[c.mode], st)
		}
		if d >= b.cfg.RevokeWait {
			p.delay, p.timedOut = b.cfg.RevokeWait, true
			return p, nil
		}
	}
}

// samples collects the polls of one path.
type samples struct {
	path, label string
	delays      []time.Duration
	accepted    int
	timedOut    int
}

func (s *samples) add(p poll) {
	s.delays = append(s.delays, p.delay)
	s.accepted += p.accepted
	if p.timedOut {
		s.timedOut++
	}
}

func (s *samples) result(method string) RevocationResult {
	sum := summarize(s.delays)
	return RevocationResult{
		Path: s.path, Label: s.label, Method: method, Samples: len(s.delays),
		P50MS: ms(sum.p50), P99MS: ms(sum.p99), MaxMS: ms(sum.max),
		AcceptedAfter: s.accepted, TimedOut: s.timedOut,
	}
}

// revokeSessions measures session logout: DELETE /v1/sessions/current,
// then the session cookie until it is refused.
func (b *bencher) revokeSessions(ctx context.Context) error {
	client := newClient(1, nil)
	defer closeClient(client)
	s := &samples{path: pathSessionLogout, label: "session logout (DELETE /v1/sessions/current)"}
	for i := range b.cfg.Repeat {
		c, err := b.sessionLogin(ctx)
		if err != nil {
			return err
		}
		if err := b.accepted(ctx, client, c); err != nil {
			return err
		}
		if err := b.logout(ctx, c); err != nil {
			return err
		}
		p, err := b.pollRefused(ctx, client, c, time.Now())
		if err != nil {
			return err
		}
		s.add(p)
		b.prog.set(float64(i+1) / float64(b.cfg.Repeat))
	}
	b.res.Revocation = append(b.res.Revocation, s.result(MethodPolled))
	return nil
}

// revokeTokens measures RFC 7009 revocation of access tokens: one login,
// then for each sample a refresh grant for a fresh access token, its
// revocation, and the Bearer until it is refused. For each it also computes
// how long the token stays valid for a verifier that consults only the
// JWKS: its remaining lifetime when it was revoked.
func (b *bencher) revokeTokens(ctx context.Context) error {
	client := newClient(1, nil)
	defer closeClient(client)
	c, err := b.tokenLogin(ctx, false)
	if err != nil {
		return err
	}
	s := &samples{path: pathTokenRevoke, label: "access token revoke (POST /v1/token/revoke)"}
	jwks := &samples{path: pathJWKSOnly, label: "JWKS-only verifier: the token's remaining lifetime (exp - now)"}
	for i := range b.cfg.Repeat {
		if c, err = b.refreshBearer(ctx, c); err != nil {
			return err
		}
		exp, err := tokenExpiry(c.access)
		if err != nil {
			return fmt.Errorf("bench: the access token's exp: %w", err)
		}
		if err := b.accepted(ctx, client, c); err != nil {
			return err
		}
		if err := b.revoke(ctx, c.access); err != nil {
			return err
		}
		ack := time.Now()
		p, err := b.pollRefused(ctx, client, c, ack)
		if err != nil {
			return err
		}
		s.add(p)
		jwks.delays = append(jwks.delays, max(exp.Sub(ack), 0))
		b.prog.set(float64(i+1) / float64(b.cfg.Repeat))
	}
	if err := b.revoke(ctx, c.refresh); err != nil {
		return err
	}
	b.res.Revocation = append(b.res.Revocation, s.result(MethodPolled), jwks.result(MethodComputed))
	return nil
}

// forcedLogouts measures the admin's forced logout: each sample logs in
// with a session, a Bearer token and a hybrid cookie, forces the user out
// and polls the three credentials at once until each is refused.
func (b *bencher) forcedLogouts(ctx context.Context) error {
	modes := []string{modeSession}
	if b.tokens {
		modes = append(modes, modeToken, modeCookieToken)
	}
	client := newClient(len(modes), nil)
	defer closeClient(client)
	per := make([]*samples, len(modes))
	for i, m := range modes {
		per[i] = &samples{path: pathForced + m, label: "forced logout (POST /v1/admin/users/{id}/logout): " + modeLabels[m]}
	}
	var last time.Time // the previous forced logout's answer
	for i := range b.cfg.Repeat {
		creds, err := b.freshAfter(ctx, client, modes, last)
		if err != nil {
			return err
		}
		if err := b.forceLogout(ctx); err != nil {
			return err
		}
		last = time.Now()
		polls := make([]poll, len(creds))
		errs := make([]error, len(creds))
		var wg sync.WaitGroup
		for j, c := range creds {
			wg.Go(func() { polls[j], errs[j] = b.pollRefused(ctx, client, c, last) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		for j, p := range polls {
			per[j].add(p)
		}
		b.prog.set(float64(i+1) / float64(b.cfg.Repeat))
	}
	for _, s := range per {
		b.res.Revocation = append(b.res.Revocation, s.result(MethodPolled))
	}
	return nil
}

// freshAfter logs in once per mode and checks that each credential is
// accepted. A forced logout refuses every access token whose iat (whole
// seconds) is before the logout rounded up to the next second, so a token
// minted in the same second as the previous logout would be refused from
// the start: the token logins wait for the next second after prev, and are
// tried again a second later when the server's clock runs behind ours.
func (b *bencher) freshAfter(ctx context.Context, client *http.Client, modes []string, prev time.Time) ([]credential, error) {
	creds := make([]credential, 0, len(modes))
	for _, m := range modes {
		if m != modeSession && !prev.IsZero() {
			if err := sleepUntil(ctx, prev.Truncate(time.Second).Add(time.Second+20*time.Millisecond)); err != nil {
				return nil, err
			}
		}
		var c credential
		var err error
		for try := 0; ; try++ {
			if c, err = b.login(ctx, m); err != nil {
				return nil, err
			}
			err = b.accepted(ctx, client, c)
			if err == nil || m == modeSession || !errors.Is(err, errRefused) || try == 2 {
				break
			}
			if err := sleepUntil(ctx, time.Now().Add(time.Second)); err != nil {
				return nil, err
			}
		}
		if err != nil {
			return nil, err
		}
		creds = append(creds, c)
	}
	return creds, nil
}

// sleepUntil waits until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bench: %w", ctx.Err())
	}
}

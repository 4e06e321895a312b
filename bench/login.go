package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// jsonBody decodes a JSON answer into v.
func jsonBody(r reply, v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("decode the answer: %w", err)
	}
	return nil
}

// sessionLogin logs the bench user in with POST /v1/sessions.
func (b *bencher) sessionLogin(ctx context.Context) (credential, error) {
	const what = "session login"
	r, err := b.do(ctx, b.api, exchange{method: http.MethodPost, path: "/v1/sessions",
		json: map[string]string{"username": b.cfg.Username, "password": b.cfg.Password}})
	if err != nil {
		return credential{}, fmt.Errorf("bench: %s: %w", what, err)
	}
	if r.status != http.StatusCreated {
		return credential{}, loginRefused(what, r)
	}
	var body struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		CSRF string `json:"csrf_token"`
	}
	if err := jsonBody(r, &body); err != nil {
		return credential{}, fmt.Errorf("bench: %s: %w", what, err)
	}
	c := r.cookie("gh_session")
	if c == nil || body.CSRF == "" || body.User.ID == "" {
		return credential{}, fmt.Errorf("bench: %s: the answer lacks the session cookie, csrf_token or user id", what)
	}
	if b.userID == "" {
		b.userID = body.User.ID
	}
	return credential{mode: modeSession, header: "Cookie", value: c.Name + "=" + c.Value,
		csrf: body.CSRF, userID: body.User.ID}, nil
}

// tokenLogin runs the password grant of POST /v1/token, with the tokens in
// the body (token mode) or in cookies (hybrid mode).
func (b *bencher) tokenLogin(ctx context.Context, cookies bool) (credential, error) {
	what := "token login"
	form := url.Values{"grant_type": {"password"}, "username": {b.cfg.Username}, "password": {b.cfg.Password}}
	if cookies {
		what = "hybrid login"
		form.Set("delivery", "cookie")
	}
	r, err := b.do(ctx, b.api, exchange{method: http.MethodPost, path: "/v1/token", form: form})
	if err != nil {
		return credential{}, fmt.Errorf("bench: %s: %w", what, err)
	}
	if r.status == http.StatusNotFound || r.status == http.StatusMethodNotAllowed {
		return credential{}, errNoTokenMode
	}
	if r.status != http.StatusOK {
		return credential{}, loginRefused(what, r)
	}
	if cookies {
		return hybridCredential(what, r)
	}
	return bearerCredential(what, r)
}

// bearerCredential reads a body-delivery grant's answer.
func bearerCredential(what string, r reply) (credential, error) {
	var body struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	if err := jsonBody(r, &body); err != nil {
		return credential{}, fmt.Errorf("bench: %s: %w", what, err)
	}
	if body.Access == "" || body.Refresh == "" {
		return credential{}, fmt.Errorf("bench: %s: the answer lacks access_token or refresh_token", what)
	}
	return credential{mode: modeToken, header: "Authorization", value: "Bearer " + body.Access,
		access: body.Access, refresh: body.Refresh}, nil
}

// hybridCredential reads a cookie-delivery grant's answer.
func hybridCredential(what string, r reply) (credential, error) {
	var body struct {
		CSRF string `json:"csrf_token"`
	}
	if err := jsonBody(r, &body); err != nil {
		return credential{}, fmt.Errorf("bench: %s: %w", what, err)
	}
	access, refresh := r.cookie("gh_access"), r.cookie("gh_refresh")
	if access == nil || refresh == nil || body.CSRF == "" {
		return credential{}, fmt.Errorf("bench: %s: the answer lacks the access cookie, the refresh cookie or csrf_token", what)
	}
	return credential{mode: modeCookieToken, header: "Cookie", value: access.Name + "=" + access.Value,
		csrf: body.CSRF, access: access.Value, refresh: refresh.Value}, nil
}

// refreshBearer trades c's refresh token for a new pair (rotation).
func (b *bencher) refreshBearer(ctx context.Context, c credential) (credential, error) {
	const what = "refresh grant"
	r, err := b.do(ctx, b.api, exchange{method: http.MethodPost, path: "/v1/token",
		form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.refresh}}})
	if err != nil {
		return credential{}, fmt.Errorf("bench: %s: %w", what, err)
	}
	if r.status != http.StatusOK {
		return credential{}, fmt.Errorf("bench: %s: %s", what, r.problem())
	}
	return bearerCredential(what, r)
}

// logout ends c: DELETE /v1/sessions/current for a session, revocation of
// the refresh token (and with it the family's access tokens) otherwise.
func (b *bencher) logout(ctx context.Context, c credential) error {
	if c.mode != modeSession {
		return b.revoke(ctx, c.refresh)
	}
	h := http.Header{}
	c.apply(h)
	h.Set("X-CSRF-Token", c.csrf)
	r, err := b.do(ctx, b.api, exchange{method: http.MethodDelete, path: "/v1/sessions/current", header: h})
	if err != nil {
		return fmt.Errorf("bench: session logout: %w", err)
	}
	if r.status != http.StatusNoContent {
		return fmt.Errorf("bench: session logout: %s", r.problem())
	}
	return nil
}

// revoke revokes a token with POST /v1/token/revoke (RFC 7009).
func (b *bencher) revoke(ctx context.Context, tok string) error {
	r, err := b.do(ctx, b.api, exchange{method: http.MethodPost, path: "/v1/token/revoke",
		form: url.Values{"token": {tok}}})
	if err != nil {
		return fmt.Errorf("bench: token revoke: %w", err)
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("bench: token revoke: %s", r.problem())
	}
	return nil
}

// forceLogout ends every credential of the bench user with the admin
// endpoint.
func (b *bencher) forceLogout(ctx context.Context) error {
	h := http.Header{"Authorization": {"Bearer " + b.cfg.AdminKey}}
	r, err := b.do(ctx, b.api, exchange{method: http.MethodPost,
		path: "/v1/admin/users/" + url.PathEscape(b.userID) + "/logout", header: h})
	if err != nil {
		return fmt.Errorf("bench: forced logout: %w", err)
	}
	switch r.status {
	case http.StatusNoContent:
		return nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("bench: forced logout: the admin key was refused (%s)", r.problem())
	}
	return fmt.Errorf("bench: forced logout: %s", r.problem())
}

// errRefused is a verify answer of 401 where 200 was expected.
var errRefused = errors.New("the credential was refused")

// verifyStatus sends GET /v1/verify with c and returns the status and the
// auth mode the answer names.
func (b *bencher) verifyStatus(ctx context.Context, client *http.Client, c credential) (int, string, error) {
	req, err := newVerifyRequest(ctx, b.base, c)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("GET /v1/verify: %w", stripURL(err))
	}
	drain(resp)
	return resp.StatusCode, resp.Header.Get("X-Gatehouse-Auth-Mode"), nil
}

// accepted checks that the deployment accepts c in its mode.
func (b *bencher) accepted(ctx context.Context, client *http.Client, c credential) error {
	st, mode, err := b.verifyStatus(ctx, client, c)
	switch {
	case err != nil:
		return fmt.Errorf("bench: verify a fresh %s: %w", modeLabels[c.mode], err)
	case st == http.StatusUnauthorized:
		return fmt.Errorf("bench: verify a fresh %s: %w", modeLabels[c.mode], errRefused)
	case st != http.StatusOK:
		return fmt.Errorf("bench: verify a fresh %s: status %d", modeLabels[c.mode], st)
	case mode != c.mode:
		return fmt.Errorf("bench: verify a fresh %s: X-Gatehouse-Auth-Mode is %q, want %q", modeLabels[c.mode], mode, c.mode)
	}
	return nil
}

package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/csrf"
)

// maxAPIBody bounds what an in-process call keeps of the API's answer. The
// API's own answers are a few hundred bytes; the bound only keeps a mistake
// from filling memory.
const maxAPIBody = 1 << 20

// apiRequest is one request to the API, made in-process.
type apiRequest struct {
	method, path string
	// body and contentType: a body is sent with its content type.
	body        []byte
	contentType string
	// header holds extra headers: Authorization, X-CSRF-Token.
	header http.Header
	// cookies are sent in one Cookie header, in order.
	cookies []*http.Cookie
	// userAgent replaces the original request's User-Agent when set.
	userAgent string
}

// apiResponse is the API's answer to an in-process request.
type apiResponse struct {
	status int
	header http.Header
	body   []byte
	// sent is the request as the API received it (for the lab's record).
	sent *http.Request
	// took is how long the API took to answer.
	took time.Duration
}

// setCookies returns the cookies the API set.
func (a *apiResponse) setCookies() []*http.Cookie {
	return (&http.Response{Header: a.header}).Cookies()
}

// decode unmarshals the JSON body into v.
func (a *apiResponse) decode(v any) error {
	if err := json.Unmarshal(a.body, v); err != nil {
		return fmt.Errorf("decode API answer to %s %s (%d): %w", a.sent.Method, a.sent.URL.Path, a.status, err)
	}
	return nil
}

// problem is the part of an API error body a page shows: a problem+json
// detail, or an OAuth-shaped error description.
func (a *apiResponse) problem() string {
	var p struct {
		Title       string `json:"title"`
		Detail      string `json:"detail"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(a.body, &p) == nil {
		switch {
		case p.Detail != "":
			return p.Detail
		case p.Description != "":
			return p.Description
		case p.Title != "":
			return p.Title
		}
	}
	if a.status >= 500 {
		return "The server could not complete the request. Try again later."
	}
	return http.StatusText(a.status)
}

// problemType is the class of a problem+json answer: the last path segment
// of its type URI, "" for anything else.
func (a *apiResponse) problemType() string {
	var p struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(a.body, &p) != nil {
		return ""
	}
	return p.Type[strings.LastIndexByte(p.Type, '/')+1:]
}

// retryAfter is the API's Retry-After in seconds, 0 when absent.
func (a *apiResponse) retryAfter() int {
	n, err := strconv.Atoi(a.header.Get("Retry-After"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// recorder is the ResponseWriter of an in-process call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if room := maxAPIBody - w.body.Len(); room > 0 {
		w.body.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}

// carriedHeaders are copied from the browser's request to the internal one:
// what the API's client-address, cross-origin and device rules look at.
var carriedHeaders = []string{"User-Agent", "Sec-Fetch-Site", "Origin", "X-Forwarded-For"}

// callAPI sends ar to the API in-process, as if from's client had sent it:
// same client address, Host, TLS state, User-Agent, Fetch Metadata and
// Origin. Only the cookies and headers of ar are sent as credentials.
func (h *Handler) callAPI(from *http.Request, ar apiRequest) (*apiResponse, error) {
	req, err := http.NewRequestWithContext(from.Context(), ar.method, ar.path, bytes.NewReader(ar.body))
	if err != nil {
		return nil, fmt.Errorf("build API request %s %s: %w", ar.method, ar.path, err)
	}
	if len(ar.body) == 0 {
		req.Body = http.NoBody
		req.ContentLength = 0
	}
	req.Host = from.Host
	req.RemoteAddr = from.RemoteAddr
	req.TLS = from.TLS
	req.RequestURI = ar.path
	for _, k := range carriedHeaders {
		if vs := from.Header.Values(k); len(vs) > 0 {
			req.Header[k] = append([]string(nil), vs...)
		}
	}
	if ar.userAgent != "" {
		req.Header.Set("User-Agent", ar.userAgent)
	}
	for k, vs := range ar.header {
		req.Header[k] = append([]string(nil), vs...)
	}
	if ar.contentType != "" {
		req.Header.Set("Content-Type", ar.contentType)
	}
	if len(ar.cookies) > 0 {
		parts := make([]string, len(ar.cookies))
		for i, c := range ar.cookies {
			parts[i] = c.Name + "=" + c.Value
		}
		req.Header.Set("Cookie", strings.Join(parts, "; "))
	}
	rec := &recorder{header: http.Header{}}
	start := time.Now()
	h.cfg.API.ServeHTTP(rec, req)
	took := time.Since(start)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &apiResponse{status: rec.status, header: rec.header, body: rec.body.Bytes(), sent: req, took: took}, nil
}

// browserCookies returns the cookies of r that the pages pass on: the
// session cookie, and any cookie whose name differs from it only in case,
// so that the API's refusal of duplicated or case-variant credentials
// applies to the pages too. Other cookies (the hybrid-mode access cookie of
// an app on the same origin, for one) are not the pages' credential.
func (h *Handler) browserCookies(r *http.Request) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range r.Cookies() {
		if strings.EqualFold(c.Name, h.sessionCookie) {
			out = append(out, c)
		}
	}
	return out
}

// pageCall is a page's call to the API with the browser's session cookie,
// the JSON body v (nil for none) and, when csrfToken is not empty, the
// X-CSRF-Token header. The cookies the API sets are copied to w.
func (h *Handler) pageCall(w http.ResponseWriter, r *http.Request, method, path string, v any, csrfToken string) (*apiResponse, error) {
	ar := apiRequest{method: method, path: path, cookies: h.browserCookies(r), header: http.Header{}}
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode API request: %w", err)
		}
		ar.body, ar.contentType = b, "application/json"
	}
	if csrfToken != "" {
		ar.header.Set(csrf.HeaderName, csrfToken)
	}
	res, err := h.callAPI(r, ar)
	if err != nil {
		return nil, err
	}
	for _, c := range res.header.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", c)
	}
	return res, nil
}

// clearsSession reports whether the API's answer clears the session cookie.
func (h *Handler) clearsSession(res *apiResponse) bool {
	for _, c := range res.setCookies() {
		if c.Name == h.sessionCookie && c.MaxAge < 0 {
			return true
		}
	}
	return false
}

package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// The cookie names of secure mode, as openapi.yaml names them. The
// exchanges of these tests run in secure mode (Dev false) so that the
// document's names are the real ones.
const (
	secureSessionCookie = "__Host-gh_session"
	secureAccessCookie  = "__Host-gh_access"
	secureRefreshCookie = "__Secure-gh_refresh"
)

var (
	jwtShape          = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)
	registerProtobuf  sync.Once
	protobufMediaType = "application/vnd.google.protobuf"
)

// loadOpenAPI loads and validates the embedded document and builds a router
// over it.
func loadOpenAPI(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	// The metrics endpoint answers the protocol-buffer exposition when asked;
	// kin-openapi has no decoder for that media type, and an opaque one is
	// all the document promises.
	registerProtobuf.Do(func() {
		openapi3filter.RegisterBodyDecoder(protobufMediaType, openapi3filter.FileBodyDecoder)
	})
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI 3 document: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("route openapi.yaml: %v", err)
	}
	return doc, router
}

// documentedOperations returns "METHOD /path" for every operation of doc.
func documentedOperations(doc *openapi3.T) []string {
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	sort.Strings(ops)
	return ops
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	if doc.OpenAPI != "3.0.3" {
		t.Fatalf("openapi %q, want 3.0.3", doc.OpenAPI)
	}
	// Every operation lists 500, and every response that carries a body
	// names its media type with a schema.
	for _, op := range documentedOperations(doc) {
		method, path, _ := strings.Cut(op, " ")
		o := doc.Paths.Value(path).GetOperation(method)
		if o.OperationID == "" || o.Summary == "" {
			t.Errorf("%s: no operationId or summary", op)
		}
		if o.Responses.Status(http.StatusInternalServerError) == nil {
			t.Errorf("%s: 500 is not documented", op)
		}
		for code, rr := range o.Responses.Map() {
			for mt, m := range rr.Value.Content {
				if m.Schema == nil {
					t.Errorf("%s %s %s: no schema", op, code, mt)
				}
			}
		}
	}
	// Request bodies refuse unknown members, as the server does.
	for name, s := range doc.Components.Schemas {
		if !strings.HasSuffix(name, "Request") || name == "TokenRequest" {
			continue
		}
		if ap := s.Value.AdditionalProperties.Has; ap == nil || *ap {
			t.Errorf("schema %s: additionalProperties is not false", name)
		}
	}
	for _, alt := range doc.Components.Schemas["TokenRequest"].Value.OneOf {
		if ap := alt.Value.AdditionalProperties.Has; ap == nil || *ap {
			t.Errorf("schema %s: additionalProperties is not false", alt.Ref)
		}
	}
}

// routePattern finds the route registrations of the package's source:
// s.handle("GET /path", …), s.handleOAuth(…) and s.mux.HandleFunc(…).
var routePattern = regexp.MustCompile(`\bs\.(?:handle|handleOAuth|mux\.HandleFunc)\("([A-Z]+) (/[^"]*)"`)

// registeredRoutes reads every route pattern from the package's non-test
// source files.
func registeredRoutes(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range routePattern.FindAllStringSubmatch(string(src), -1) {
			routes[m[1]+" "+m[2]] = true
		}
	}
	return routes
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	routes := registeredRoutes(t)
	// The API has 28 routes today; far fewer means the pattern no longer
	// finds the registrations.
	if len(routes) < 25 {
		t.Fatalf("found only %d route registrations in the source: %v", len(routes), routes)
	}
	documented := map[string]bool{}
	for _, op := range documentedOperations(doc) {
		documented[op] = true
	}
	for r := range routes {
		if !documented[r] {
			t.Errorf("route %q is registered but not in openapi.yaml", r)
		}
	}
	for op := range documented {
		if routes[op] {
			continue
		}
		// ServeMux answers HEAD wherever GET is registered.
		if path, ok := strings.CutPrefix(op, "HEAD "); ok && routes["GET "+path] {
			continue
		}
		t.Errorf("openapi.yaml documents %q, which no handler serves", op)
	}
}

func TestOpenAPIServed(t *testing.T) {
	h := newHarness(t)
	r := h.do(req{method: "GET", path: "/openapi.yaml"})
	if r.StatusCode != http.StatusOK || !bytes.Equal(r.body, openAPIDocument) {
		t.Fatalf("GET /openapi.yaml: %d, %d bytes; want 200 and the embedded %d bytes", r.StatusCode, len(r.body), len(openAPIDocument))
	}
	for k, want := range map[string]string{
		"Content-Type":           "application/yaml",
		"Cache-Control":          "public, max-age=300",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if _, err := openapi3.NewLoader().LoadFromData(r.body); err != nil {
		t.Fatalf("the served document does not load: %v", err)
	}
	// Not behind any credential, and HEAD works as for every GET.
	if r := h.do(req{method: "HEAD", path: "/openapi.yaml"}); r.StatusCode != http.StatusOK || len(r.body) != 0 {
		t.Fatalf("HEAD /openapi.yaml: %d, %d bytes", r.StatusCode, len(r.body))
	}
}

// TestOpenAPIUnroutedAnswers: the 404 and 405 that ServeMux answers before
// any documented operation are problems of the document's Problem schema.
func TestOpenAPIUnroutedAnswers(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	h := newTokenHarness(t)
	problem := doc.Components.Schemas["Problem"].Value
	cases := []struct {
		name         string
		method, path string
		status       int
		class        string
	}{
		{"unknown path", "GET", "/v1/nope", 404, classNotFound},
		{"wrong method", "PUT", "/v1/me", 405, classMethod},
		{"preflight", "OPTIONS", "/v1/token", 405, classMethod},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(req{method: tc.method, path: tc.path})
			wantProblem(t, r, tc.status, tc.class)
			var v any
			if err := json.Unmarshal(r.body, &v); err != nil {
				t.Fatal(err)
			}
			if err := problem.VisitJSON(v); err != nil {
				t.Fatalf("%s: %v", r.body, err)
			}
			if tc.status == 405 && r.Header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}
}

// expectation is what the document says of an exchange's request.
type expectation int

const (
	// conforms: the request must pass the document's validation.
	conforms expectation = iota
	// breaks: the request breaks the document on purpose (a missing
	// credential, an unknown member, a wrong media type …), and the
	// document must refuse it.
	breaks
	// undecided: the document cannot tell (a duplicate JSON member, an
	// unknown query parameter, a cross-origin request).
	undecided
)

// exchange is one request sent to the API and the status it must get.
type exchange struct {
	name   string
	rq     req
	status int // 0: any status the document lists for the operation
	expect expectation
}

// securityHeaders are set on every response (info.description).
var securityHeaders = map[string]string{
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
	"X-Frame-Options":         "DENY",
	"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}

// openAPIChecker sends exchanges and validates each request and response
// against the document, recording which statuses each operation answered.
type openAPIChecker struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router
	// seen is operation → statuses answered; conformingSuccess is the
	// operations that answered 2xx to a conforming request.
	seen              map[string]map[int]bool
	conformingSuccess map[string]bool
	exchanges         int
}

func newOpenAPIChecker(t *testing.T) *openAPIChecker {
	doc, router := loadOpenAPI(t)
	return &openAPIChecker{t: t, doc: doc, router: router, seen: map[string]map[int]bool{}, conformingSuccess: map[string]bool{}}
}

// buildRequest builds the request harness.do sends for rq.
func buildRequest(ctx context.Context, base string, rq req) (*http.Request, error) {
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r, err := http.NewRequestWithContext(ctx, rq.method, base+rq.path, body)
	if err != nil {
		return nil, err
	}
	if rq.body != "" {
		ct := rq.contentType
		if ct == "" {
			ct = "application/json"
		}
		r.Header.Set("Content-Type", ct)
	}
	for k, v := range rq.headers {
		r.Header.Set(k, v)
	}
	for _, c := range rq.cookies {
		r.AddCookie(c)
	}
	if rq.rawCookie != "" {
		r.Header.Set("Cookie", rq.rawCookie)
	}
	return r, nil
}

// authenticate is the document's security schemes as the test reads them:
// the scheme's credential is present and of its kind, and the request
// carries exactly one credential (the Conventions).
func (c *openAPIChecker) authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	n := len(r.Header.Values("Authorization"))
	for _, ck := range r.Cookies() {
		if strings.EqualFold(ck.Name, secureSessionCookie) || strings.EqualFold(ck.Name, secureAccessCookie) {
			n++
		}
	}
	if n != 1 {
		return in.NewError(fmt.Errorf("%d credentials; a request carries exactly one", n))
	}
	s := in.SecurityScheme
	switch {
	case s.Type == "apiKey" && s.In == "cookie":
		if _, err := r.Cookie(s.Name); err != nil {
			return in.NewError(fmt.Errorf("no %s cookie", s.Name))
		}
		return nil
	case s.Type == "http" && s.Scheme == "bearer":
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return in.NewError(errors.New("no Bearer credential"))
		}
		var kind bool
		switch in.SecuritySchemeName {
		case "adminKey":
			kind = tok == adminKey
		case "serviceKey":
			kind = tok == serviceKey
		case "bearerAuth":
			kind = jwtShape.MatchString(tok)
		default:
			return in.NewError(fmt.Errorf("unknown bearer scheme %q", in.SecuritySchemeName))
		}
		if !kind {
			return in.NewError(fmt.Errorf("the Bearer credential is not a %s", in.SecuritySchemeName))
		}
		return nil
	}
	return in.NewError(fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName))
}

// validateRequest validates r (whose body is body) against the document.
// Form bodies are also checked as a JSON object against the same schema,
// because kin-openapi's form decoder drops unknown and repeated
// parameters, which the server refuses.
func (c *openAPIChecker) validateRequest(ctx context.Context, in *openapi3filter.RequestValidationInput, body string) error {
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		return err
	}
	rb := in.Route.Operation.RequestBody
	if rb == nil || body == "" || mediaType(in.Request) != "application/x-www-form-urlencoded" {
		return nil
	}
	mt := rb.Value.Content.Get("application/x-www-form-urlencoded")
	if mt == nil {
		return nil // ValidateRequest has refused it already
	}
	vals, err := url.ParseQuery(body)
	if err != nil {
		return fmt.Errorf("form body: %w", err)
	}
	obj := map[string]any{}
	for k, vs := range vals {
		if len(vs) == 1 {
			obj[k] = vs[0]
			continue
		}
		list := make([]any, len(vs))
		for i, v := range vs {
			list[i] = v
		}
		obj[k] = list
	}
	if err := mt.Schema.Value.VisitJSON(obj); err != nil {
		return fmt.Errorf("form body as an object: %w", err)
	}
	return nil
}

// run sends x to h, checks its status and validates the request and the
// response against the document.
func (c *openAPIChecker) run(h *harness, x exchange) resp {
	t := c.t
	t.Helper()
	ctx := t.Context()
	vreq, err := buildRequest(ctx, h.srv.URL, x.rq)
	if err != nil {
		t.Fatalf("%s: %v", x.name, err)
	}
	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		t.Fatalf("%s: %s %s is not in openapi.yaml: %v", x.name, x.rq.method, x.rq.path, err)
	}
	op := route.Method + " " + route.Path
	in := &openapi3filter.RequestValidationInput{
		Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:                c.authenticate,
			RejectWhenRequestBodyNotSpecified: true,
			MultiError:                        true,
		},
	}
	reqErr := c.validateRequest(ctx, in, x.rq.body)
	switch {
	case x.expect == conforms && reqErr != nil:
		t.Errorf("%s: %s: the request should conform to openapi.yaml: %v", x.name, op, reqErr)
	case x.expect == breaks && reqErr == nil:
		t.Errorf("%s: %s: openapi.yaml accepts a request the server must refuse", x.name, op)
	}

	r := h.do(x.rq)
	c.exchanges++
	if x.status != 0 && r.StatusCode != x.status {
		t.Errorf("%s: %s: status %d, want %d; body %s", x.name, op, r.StatusCode, x.status, r.body)
	}
	// The headers info.description promises on every response.
	for k, want := range securityHeaders {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s: %s: %s %q, want %q", x.name, op, k, got, want)
		}
	}
	if c.seen[op] == nil {
		c.seen[op] = map[int]bool{}
	}
	c.seen[op][r.StatusCode] = true
	if x.expect == conforms && reqErr == nil && r.StatusCode < 300 {
		c.conformingSuccess[op] = true
	}

	// ValidateResponse skips HEAD; a HEAD answer is checked as the GET it
	// mirrors, against the HEAD operation's responses.
	rin := *in
	if vreq.Method == http.MethodHead {
		rin.Request = vreq.Clone(ctx)
		rin.Request.Method = http.MethodGet
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &rin,
		Status:                 r.StatusCode,
		Header:                 r.Header,
		Body:                   io.NopCloser(bytes.NewReader(r.body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("%s: %s: the %d response does not match openapi.yaml: %v\n%v\n%s", x.name, op, r.StatusCode, err, r.Header, r.body)
		return r
	}
	doc := route.Operation.Responses.Status(r.StatusCode)
	if doc == nil {
		return r // refused above
	}
	if len(doc.Value.Content) == 0 && len(r.body) != 0 {
		t.Errorf("%s: %s: the %d response has a body, the document none: %s", x.name, op, r.StatusCode, r.body)
	}
	// kin-openapi validates the first value of a header; Set-Cookie comes
	// twice in hybrid mode.
	for name, hdr := range doc.Value.Headers {
		if hdr.Value.Schema == nil {
			continue
		}
		for _, v := range r.Header.Values(name) {
			var val any = v
			if hdr.Value.Schema.Value.Type.Is("integer") {
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Errorf("%s: %s: header %s %q is not an integer", x.name, op, name, v)
					continue
				}
				val = n
			}
			if err := hdr.Value.Schema.Value.VisitJSON(val); err != nil {
				t.Errorf("%s: %s: header %s %q: %v", x.name, op, name, v, err)
			}
		}
	}
	return r
}

// checkCoverage fails for every documented operation that never answered
// a conforming request with success, and for every documented status (but
// 500) that no exchange produced.
func (c *openAPIChecker) checkCoverage() {
	t := c.t
	t.Helper()
	statuses := 0
	for _, op := range documentedOperations(c.doc) {
		method, path, _ := strings.Cut(op, " ")
		if !c.conformingSuccess[op] {
			t.Errorf("%s: no conforming request answered with success", op)
		}
		for code := range c.doc.Paths.Value(path).GetOperation(method).Responses.Map() {
			status, err := strconv.Atoi(code)
			if err != nil {
				t.Errorf("%s: response %q is not a status", op, code)
				continue
			}
			if status == http.StatusInternalServerError {
				continue
			}
			statuses++
			if !c.seen[op][status] {
				t.Errorf("%s: the documented %d was never answered", op, status)
			}
		}
	}
	t.Logf("openapi: %d operations, %d documented statuses (500 aside) all answered, %d exchanges validated",
		len(documentedOperations(c.doc)), statuses, c.exchanges)
}

// fill replaces the path parameters of a documented path with value.
func fill(path, value string) string {
	return regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, value)
}

func bigBody(prefix, suffix string) string {
	return prefix + strings.Repeat("a", MaxBodyBytes+1) + suffix
}

// TestOpenAPIExchanges drives every documented operation through success
// and its documented errors, in secure mode, and validates every request
// and response against openapi.yaml.
func TestOpenAPIExchanges(t *testing.T) {
	c := newOpenAPIChecker(t)
	h := newTokenHarness(t, func(cfg *Config) { cfg.Dev = false })
	const form = "application/x-www-form-urlencoded"
	const bobPassword = "a brand new one"
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	admin := bearer(adminKey)
	service := bearer(serviceKey)
	run := func(name string, rq req, status int, e expectation) resp {
		t.Helper()
		return c.run(h, exchange{name: name, rq: rq, status: status, expect: e})
	}
	jsonOf := func(r resp) map[string]any { t.Helper(); return r.json(t) }
	cookieOf := func(r resp, name string) *http.Cookie {
		t.Helper()
		ck := r.cookie(name)
		if ck == nil {
			t.Fatalf("no %s cookie in %v", name, r.Header.Values("Set-Cookie"))
		}
		return &http.Cookie{Name: ck.Name, Value: ck.Value}
	}
	logIn := func(name, username, password string) login {
		t.Helper()
		r := run(name, req{method: "POST", path: "/v1/sessions", body: credJSON(username, password)}, 201, conforms)
		m := jsonOf(r)
		return login{cookie: cookieOf(r, secureSessionCookie), csrf: m["csrf_token"].(string), sessionID: m["session"].(map[string]any)["id"].(string)}
	}
	as := func(l login, csrf bool) ([]*http.Cookie, map[string]string) {
		hd := map[string]string{}
		if csrf {
			hd["X-CSRF-Token"] = l.csrf
		}
		return []*http.Cookie{l.cookie}, hd
	}
	grant := func(name, body, ct string) resp {
		t.Helper()
		return run(name, req{method: "POST", path: "/v1/token", body: body, contentType: ct}, 200, conforms)
	}

	// Service.
	run("healthz", req{method: "GET", path: "/healthz"}, 200, conforms)
	run("readyz", req{method: "GET", path: "/readyz"}, 200, conforms)
	run("metrics", req{method: "GET", path: "/metrics"}, 200, conforms)
	if r := run("metrics, protobuf", req{method: "GET", path: "/metrics", headers: map[string]string{"Accept": protobufMediaType + ";proto=io.prometheus.client.MetricFamily;encoding=delimited"}}, 200, conforms); !strings.HasPrefix(r.Header.Get("Content-Type"), protobufMediaType) {
		t.Errorf("metrics in protobuf: Content-Type %q", r.Header.Get("Content-Type"))
	}
	run("openapi", req{method: "GET", path: "/openapi.yaml"}, 200, conforms)
	run("discovery", req{method: "GET", path: "/.well-known/openid-configuration"}, 200, conforms)
	run("jwks", req{method: "GET", path: "/.well-known/jwks.json"}, 200, conforms)

	// Sign-up.
	aliceID := jsonOf(run("signup", req{method: "POST", path: "/v1/users", body: credJSON("alice", pw)}, 201, conforms))["id"].(string)
	if err := h.accounts.SetRoles(t.Context(), aliceID, []string{"admin"}); err != nil {
		t.Fatal(err)
	}
	run("signup bob", req{method: "POST", path: "/v1/users", body: credJSON("bob", pw)}, 201, conforms)
	malloryID := jsonOf(run("signup mallory", req{method: "POST", path: "/v1/users", body: credJSON("mallory", pw)}, 201, conforms))["id"].(string)
	run("signup taken", req{method: "POST", path: "/v1/users", body: credJSON("Alice", pw)}, 409, conforms)
	run("signup short password", req{method: "POST", path: "/v1/users", body: credJSON("carol", "short")}, 400, breaks)
	run("signup invalid username", req{method: "POST", path: "/v1/users", body: credJSON("carol\u0007", pw)}, 400, conforms)
	run("signup empty username", req{method: "POST", path: "/v1/users", body: credJSON("", pw)}, 400, breaks)
	run("signup unknown member", req{method: "POST", path: "/v1/users", body: `{"username":"carol","password":"` + pw + `","admin":true}`}, 400, breaks)
	run("signup case-variant member", req{method: "POST", path: "/v1/users", body: `{"Username":"carol","password":"` + pw + `"}`}, 400, breaks)
	run("signup duplicate member", req{method: "POST", path: "/v1/users", body: `{"username":"carol","username":"dave","password":"` + pw + `"}`}, 400, undecided)
	run("signup text/plain", req{method: "POST", path: "/v1/users", body: credJSON("carol", pw), contentType: "text/plain"}, 415, breaks)
	run("signup too large", req{method: "POST", path: "/v1/users", body: bigBody(`{"username":"`, `","password":"`+pw+`"}`)}, 413, conforms)
	closed := newTokenHarness(t, func(cfg *Config) { cfg.Dev = false; cfg.Signup = false })
	c.run(closed, exchange{name: "signup disabled", rq: req{method: "POST", path: "/v1/users", body: credJSON("carol", pw)}, status: 403, expect: conforms})

	// Session mode.
	alice := logIn("login", "alice", pw)
	bob := logIn("login bob", "bob", pw)
	run("login wrong password", req{method: "POST", path: "/v1/sessions", body: credJSON("alice", "wrong password")}, 401, conforms)
	run("login unknown user", req{method: "POST", path: "/v1/sessions", body: credJSON("nobody", "wrong password")}, 401, conforms)
	run("login missing password", req{method: "POST", path: "/v1/sessions", body: `{"username":"alice"}`}, 400, breaks)
	run("login null password", req{method: "POST", path: "/v1/sessions", body: `{"username":"alice","password":null}`}, 400, breaks)
	run("login nested value", req{method: "POST", path: "/v1/sessions", body: `{"username":"alice","password":["x"]}`}, 400, breaks)
	run("login text/plain", req{method: "POST", path: "/v1/sessions", body: credJSON("alice", pw), contentType: "text/plain"}, 415, breaks)
	run("login too large", req{method: "POST", path: "/v1/sessions", body: bigBody(`{"username":"`, `","password":"x"}`)}, 413, conforms)
	ck, _ := as(alice, false)
	run("login again replaces the presented session", req{method: "POST", path: "/v1/sessions", body: credJSON("bob", pw), cookies: ck}, 201, conforms)
	alice = logIn("login alice again", "alice", pw)

	ck, _ = as(alice, false)
	run("current session", req{method: "GET", path: "/v1/sessions/current", cookies: ck}, 200, conforms)
	run("session list", req{method: "GET", path: "/v1/sessions", cookies: ck}, 200, conforms)
	ck, hd := as(alice, true)
	run("end someone else's session", req{method: "DELETE", path: "/v1/sessions/" + bob.sessionID, cookies: ck, headers: hd}, 404, conforms)
	other := logIn("login alice elsewhere", "alice", pw)
	run("end another session", req{method: "DELETE", path: "/v1/sessions/" + other.sessionID, cookies: ck, headers: hd}, 204, conforms)
	logIn("login alice elsewhere again", "alice", pw)
	run("end other sessions", req{method: "DELETE", path: "/v1/sessions?others=true", cookies: ck, headers: hd}, 204, conforms)
	run("end sessions, bad others", req{method: "DELETE", path: "/v1/sessions?others=True", cookies: ck, headers: hd}, 400, breaks)
	ck, _ = as(alice, false)
	run("logout without CSRF token", req{method: "DELETE", path: "/v1/sessions/current", cookies: ck}, 403, conforms)
	run("end sessions without CSRF token", req{method: "DELETE", path: "/v1/sessions", cookies: ck}, 403, conforms)
	run("end one session without CSRF token", req{method: "DELETE", path: "/v1/sessions/" + alice.sessionID, cookies: ck}, 403, conforms)
	run("session with a bad secret", req{method: "GET", path: "/v1/sessions/current", cookies: []*http.Cookie{{Name: secureSessionCookie, Value: strings.Repeat("A", 43)}}}, 401, conforms)
	throwaway := logIn("login to log out", "bob", pw)
	ck, hd = as(throwaway, true)
	run("logout", req{method: "DELETE", path: "/v1/sessions/current", cookies: ck, headers: hd}, 204, conforms)
	throwaway = logIn("login to end all", "bob", pw)
	ck, hd = as(throwaway, true)
	run("end all sessions", req{method: "DELETE", path: "/v1/sessions", cookies: ck, headers: hd}, 204, conforms)
	bob = logIn("login bob again", "bob", pw)
	throwaway = logIn("login to end by id", "bob", pw)
	ck, hd = as(throwaway, true)
	run("end the current session by id", req{method: "DELETE", path: "/v1/sessions/" + throwaway.sessionID, cookies: ck, headers: hd}, 204, conforms)

	// Token mode.
	pair := jsonOf(grant("password grant", "grant_type=password&username=alice&password="+url.QueryEscape(pw), form))
	aliceAccess := pair["access_token"].(string)
	pair = jsonOf(grant("password grant, JSON", `{"grant_type":"password","username":"alice","password":"`+pw+`","client_id":"app"}`, "application/json"))
	pair = jsonOf(grant("refresh grant", "grant_type=refresh_token&refresh_token="+pair["refresh_token"].(string), form))
	rotated := pair["refresh_token"].(string)
	pair = jsonOf(grant("refresh grant, JSON", `{"grant_type":"refresh_token","refresh_token":"`+rotated+`"}`, "application/json"))
	secondAccess, secondRefresh := pair["access_token"].(string), pair["refresh_token"].(string)
	bobPair := jsonOf(grant("password grant bob", "grant_type=password&username=bob&password="+url.QueryEscape(pw), form))
	bobAccess := bobPair["access_token"].(string)
	mallory := jsonOf(grant("password grant mallory", "grant_type=password&username=mallory&password="+url.QueryEscape(pw), form))["access_token"].(string)
	hy := grant("password grant, cookies", "grant_type=password&username=alice&password="+url.QueryEscape(pw)+"&delivery=cookie", form)
	access, refreshCk := cookieOf(hy, secureAccessCookie), cookieOf(hy, secureRefreshCookie)
	hyCSRF := jsonOf(hy)["csrf_token"].(string)
	run("me, access cookie of a cookie-mode login", req{method: "GET", path: "/v1/me", cookies: []*http.Cookie{access}}, 200, conforms)
	hy = run("cookie refresh", req{method: "POST", path: "/v1/token", body: "grant_type=refresh_token&delivery=cookie", contentType: form, cookies: []*http.Cookie{refreshCk}, headers: map[string]string{"X-CSRF-Token": hyCSRF}}, 200, conforms)
	access, refreshCk = cookieOf(hy, secureAccessCookie), cookieOf(hy, secureRefreshCookie)
	if got := jsonOf(run("CSRF token from the refresh cookie", req{method: "GET", path: "/v1/token/csrf", cookies: []*http.Cookie{refreshCk}}, 200, conforms))["csrf_token"]; got != hyCSRF {
		t.Fatalf("GET /v1/token/csrf = %v, want the login's CSRF token", got)
	}
	run("CSRF token without a refresh cookie", req{method: "GET", path: "/v1/token/csrf"}, 401, conforms)
	run("CSRF token with two refresh cookies", req{method: "GET", path: "/v1/token/csrf", cookies: []*http.Cookie{refreshCk, refreshCk}}, 400, conforms)
	run("cookie refresh without CSRF token", req{method: "POST", path: "/v1/token", body: "grant_type=refresh_token&delivery=cookie", contentType: form, cookies: []*http.Cookie{refreshCk}}, 403, conforms)
	run("cookie refresh without cookie", req{method: "POST", path: "/v1/token", body: "grant_type=refresh_token&delivery=cookie", contentType: form, headers: map[string]string{"X-CSRF-Token": hyCSRF}}, 400, conforms)
	run("cookie refresh with a refresh_token", req{method: "POST", path: "/v1/token", body: "grant_type=refresh_token&delivery=cookie&refresh_token=" + refreshCk.Value, contentType: form, cookies: []*http.Cookie{refreshCk}, headers: map[string]string{"X-CSRF-Token": hyCSRF}}, 400, breaks)
	for _, tc := range []struct {
		name, body, ct string
		status         int
		e              expectation
	}{
		{"wrong password", "grant_type=password&username=alice&password=wrong", form, 400, conforms},
		{"unknown user", "grant_type=password&username=nobody&password=wrong", form, 400, conforms},
		{"unknown refresh token", "grant_type=refresh_token&refresh_token=" + strings.Repeat("A", 43), form, 400, conforms},
		{"no grant type", "username=alice&password=x", form, 400, breaks},
		{"unsupported grant type", "grant_type=client_credentials", form, 400, breaks},
		{"scope", "grant_type=password&username=alice&password=x&scope=admin", form, 400, breaks},
		{"bad delivery", "grant_type=password&username=alice&password=x&delivery=pigeon", form, 400, breaks},
		{"unknown parameter", "grant_type=password&username=alice&password=x&foo=1", form, 400, breaks},
		{"repeated parameter", "grant_type=password&grant_type=password&username=alice&password=x", form, 400, breaks},
		{"password grant with a refresh token", "grant_type=password&username=alice&password=x&refresh_token=y", form, 400, breaks},
		{"JSON unknown member", `{"grant_type":"password","username":"alice","password":"x","extra":"1"}`, "application/json", 400, breaks},
		{"JSON number", `{"grant_type":"password","username":"alice","password":1}`, "application/json", 400, breaks},
		{"text/plain", "grant_type=password", "text/plain", 415, breaks},
		{"too large", bigBody("grant_type=password&password=x&username=", ""), form, 413, conforms},
	} {
		run("token: "+tc.name, req{method: "POST", path: "/v1/token", body: tc.body, contentType: tc.ct}, tc.status, tc.e)
	}
	run("token: parameters in the query", req{method: "POST", path: "/v1/token?grant_type=password", body: "grant_type=password&username=alice&password=x", contentType: form}, 400, undecided)

	// Throttling: the session login, the password grant and the password
	// change share the account's throttle.
	throttled := false
	for i := 0; i < 10 && !throttled; i++ {
		r := run("login mallory, wrong password", req{method: "POST", path: "/v1/sessions", body: credJSON("mallory", "wrong password")}, 0, conforms)
		switch r.StatusCode {
		case 429:
			throttled = true
		case 401:
		default:
			t.Fatalf("failed login: %d %s", r.StatusCode, r.body)
		}
	}
	if !throttled {
		t.Fatal("ten failed logins were not throttled")
	}
	run("password grant, throttled", req{method: "POST", path: "/v1/token", body: "grant_type=password&username=mallory&password=" + url.QueryEscape(pw), contentType: form}, 429, conforms)
	run("password change, throttled", req{method: "POST", path: "/v1/me/password", body: `{"current_password":"` + pw + `","new_password":"a brand new one"}`, headers: bearer(mallory)}, 429, conforms)

	// The caller.
	ck, _ = as(alice, false)
	run("me, session", req{method: "GET", path: "/v1/me", cookies: ck}, 200, conforms)
	run("me, bearer", req{method: "GET", path: "/v1/me", headers: bearer(aliceAccess)}, 200, conforms)
	run("me, access cookie", req{method: "GET", path: "/v1/me", cookies: []*http.Cookie{access}}, 200, conforms)
	run("me, bad token", req{method: "GET", path: "/v1/me", headers: bearer("x.y.z")}, 401, conforms)
	run("me, admin key", req{method: "GET", path: "/v1/me", headers: admin}, 401, breaks)
	run("current session, bearer", req{method: "GET", path: "/v1/sessions/current", headers: bearer(aliceAccess)}, 403, breaks)
	run("session list, access cookie", req{method: "GET", path: "/v1/sessions", cookies: []*http.Cookie{access}}, 403, breaks)
	run("me, Basic", req{method: "GET", path: "/v1/me", headers: map[string]string{"Authorization": "Basic YTpi"}}, 400, breaks)

	// Device list of token-mode logins.
	fams := jsonOf(run("families", req{method: "GET", path: "/v1/token/families", headers: bearer(aliceAccess)}, 200, conforms))["families"].([]any)
	ck, _ = as(alice, false)
	run("families, session", req{method: "GET", path: "/v1/token/families", cookies: ck}, 200, conforms)
	bobFam := jsonOf(run("families bob", req{method: "GET", path: "/v1/token/families", headers: bearer(bobAccess)}, 200, conforms))["families"].([]any)[0].(map[string]any)["id"].(string)
	run("end someone else's family", req{method: "DELETE", path: "/v1/token/families/" + bobFam, headers: bearer(aliceAccess)}, 404, conforms)
	run("end a family with the access cookie, no CSRF token", req{method: "DELETE", path: "/v1/token/families/" + bobFam, cookies: []*http.Cookie{access}}, 403, conforms)
	var otherFam string
	for _, f := range fams {
		if m := f.(map[string]any); m["current"] != true && m["delivery"] == "body" {
			otherFam = m["id"].(string)
		}
	}
	if otherFam == "" {
		t.Fatalf("no other family in %v", fams)
	}
	run("end a family", req{method: "DELETE", path: "/v1/token/families/" + otherFam, headers: bearer(aliceAccess)}, 204, conforms)
	run("me, revoked family", req{method: "GET", path: "/v1/me", headers: bearer(secondAccess)}, 401, conforms)
	run("refresh, revoked family", req{method: "POST", path: "/v1/token", body: "grant_type=refresh_token&refresh_token=" + secondRefresh, contentType: form}, 400, conforms)

	// Password change.
	ck, hd = as(bob, true)
	run("password change, wrong current password", req{method: "POST", path: "/v1/me/password", body: `{"current_password":"wrong password","new_password":"a brand new one"}`, cookies: ck, headers: hd}, 403, conforms)
	run("password change, policy", req{method: "POST", path: "/v1/me/password", body: `{"current_password":"` + pw + `","new_password":"short"}`, cookies: ck, headers: hd}, 400, breaks)
	run("password change, unknown member", req{method: "POST", path: "/v1/me/password", body: `{"current_password":"` + pw + `","new_password":"a brand new one","again":"x"}`, cookies: ck, headers: hd}, 400, breaks)
	run("password change, text/plain", req{method: "POST", path: "/v1/me/password", body: "x", contentType: "text/plain", cookies: ck, headers: hd}, 415, breaks)
	run("password change, too large", req{method: "POST", path: "/v1/me/password", body: bigBody(`{"current_password":"`, `","new_password":"a brand new one"}`), cookies: ck, headers: hd}, 413, conforms)
	ck, _ = as(bob, false)
	run("password change, no CSRF token", req{method: "POST", path: "/v1/me/password", body: `{"current_password":"` + pw + `","new_password":"a brand new one"}`, cookies: ck}, 403, conforms)
	ck, hd = as(bob, true)
	run("password change", req{method: "POST", path: "/v1/me/password", body: `{"current_password":"` + pw + `","new_password":"` + bobPassword + `"}`, cookies: ck, headers: hd}, 204, conforms)

	// Revocation and introspection.
	run("introspect", req{method: "POST", path: "/v1/token/introspect", body: "token=" + aliceAccess, contentType: form, headers: service}, 200, conforms)
	run("introspect, JSON", req{method: "POST", path: "/v1/token/introspect", body: `{"token":"garbage"}`, headers: service}, 200, conforms)
	run("introspect, admin key", req{method: "POST", path: "/v1/token/introspect", body: "token=" + aliceAccess, contentType: form, headers: admin}, 401, breaks)
	run("introspect, no token", req{method: "POST", path: "/v1/token/introspect", body: "token_type_hint=access_token", contentType: form, headers: service}, 400, breaks)
	run("introspect, text/plain", req{method: "POST", path: "/v1/token/introspect", body: "token=x", contentType: "text/plain", headers: service}, 415, breaks)
	run("introspect, too large", req{method: "POST", path: "/v1/token/introspect", body: bigBody("token=", ""), contentType: form, headers: service}, 413, conforms)
	run("introspect a token without roles", req{method: "POST", path: "/v1/token/introspect", body: "token=" + bobAccess, contentType: form, headers: service}, 200, conforms)
	run("revoke an access token", req{method: "POST", path: "/v1/token/revoke", body: "token=" + bobAccess + "&token_type_hint=access_token", contentType: form}, 200, conforms)
	run("revoke a refresh token, JSON", req{method: "POST", path: "/v1/token/revoke", body: `{"token":"` + bobPair["refresh_token"].(string) + `"}`}, 200, conforms)
	run("revoke an unknown token", req{method: "POST", path: "/v1/token/revoke", body: "token=unknown", contentType: form}, 200, conforms)
	run("introspect a revoked token", req{method: "POST", path: "/v1/token/introspect", body: "token=" + bobAccess, contentType: form, headers: service}, 200, conforms)
	run("revoke, no token and no cookie", req{method: "POST", path: "/v1/token/revoke", body: "token_type_hint=refresh_token", contentType: form}, 400, conforms)
	run("revoke, grant_type", req{method: "POST", path: "/v1/token/revoke", body: "token=x&grant_type=password", contentType: form}, 400, breaks)
	run("revoke, text/plain", req{method: "POST", path: "/v1/token/revoke", body: "token=x", contentType: "text/plain"}, 415, breaks)
	run("revoke, too large", req{method: "POST", path: "/v1/token/revoke", body: bigBody("token=", ""), contentType: form}, 413, conforms)
	logout := map[string]string{"Content-Type": form}
	run("hybrid logout without CSRF token", req{method: "POST", path: "/v1/token/revoke", cookies: []*http.Cookie{refreshCk}, headers: logout}, 403, conforms)
	logout["X-CSRF-Token"] = hyCSRF
	run("hybrid logout", req{method: "POST", path: "/v1/token/revoke", cookies: []*http.Cookie{refreshCk}, headers: logout}, 200, conforms)
	run("me, logged-out access cookie", req{method: "GET", path: "/v1/me", cookies: []*http.Cookie{access}}, 401, conforms)
	hy = grant("password grant, cookies again", "grant_type=password&username=alice&password="+url.QueryEscape(pw)+"&delivery=cookie", form)
	access, hyCSRF = cookieOf(hy, secureAccessCookie), jsonOf(hy)["csrf_token"].(string)

	// Forward-auth.
	ck, _ = as(alice, false)
	unsafe := map[string]string{"X-Forwarded-Method": "POST"}
	for _, method := range []string{"GET", "HEAD"} {
		run(method+" verify, session", req{method: method, path: "/v1/verify", cookies: ck}, 200, conforms)
		run(method+" verify, bearer", req{method: method, path: "/v1/verify", headers: map[string]string{"Authorization": "Bearer " + aliceAccess, "X-Gatehouse-User-Id": "root"}}, 200, conforms)
		run(method+" verify, access cookie", req{method: method, path: "/v1/verify", cookies: []*http.Cookie{access}, headers: map[string]string{"X-Original-Method": "DELETE", "X-CSRF-Token": hyCSRF}}, 200, conforms)
		run(method+" verify, unsafe method without CSRF token", req{method: method, path: "/v1/verify", cookies: ck, headers: unsafe}, 403, conforms)
		run(method+" verify, revoked token", req{method: method, path: "/v1/verify", headers: bearer(bobAccess)}, 401, conforms)
	}

	// The revocation feed.
	snap := jsonOf(run("feed snapshot", req{method: "GET", path: "/v1/revocations?wait=0", headers: service}, 200, conforms))
	if snap["reset"] != true || len(snap["entries"].([]any)) == 0 {
		t.Errorf("feed snapshot %v", snap)
	}
	cursor := snap["cursor"].(string)
	run("forced logout", req{method: "POST", path: "/v1/admin/users/" + malloryID + "/logout", headers: admin}, 204, conforms)
	news := jsonOf(run("feed news", req{method: "GET", path: "/v1/revocations?wait=0&cursor=" + url.QueryEscape(cursor), headers: service}, 200, conforms))
	if news["reset"] != false || len(news["entries"].([]any)) == 0 {
		t.Errorf("feed news %v", news)
	}
	run("feed, nothing new", req{method: "GET", path: "/v1/revocations?wait=0.000&cursor=" + url.QueryEscape(news["cursor"].(string)), headers: service}, 200, conforms)
	run("feed, admin key", req{method: "GET", path: "/v1/revocations?wait=0", headers: admin}, 401, breaks)
	run("feed, bad wait", req{method: "GET", path: "/v1/revocations?wait=61", headers: service}, 400, breaks)
	run("feed, repeated wait", req{method: "GET", path: "/v1/revocations?wait=0&wait=0", headers: service}, 400, undecided)
	run("feed, unknown parameter", req{method: "GET", path: "/v1/revocations?wait=0&since=1", headers: service}, 400, undecided)
	run("feed, foreign cursor", req{method: "GET", path: "/v1/revocations?wait=0&cursor=nope", headers: service}, 400, conforms)

	// Administration.
	run("forced logout, unknown user", req{method: "POST", path: "/v1/admin/users/nobody/logout", headers: admin}, 404, conforms)
	run("forced logout, no admin role", req{method: "POST", path: "/v1/admin/users/" + malloryID + "/logout", headers: bearer(jsonOf(grant("password grant bob again", "grant_type=password&username=bob&password="+url.QueryEscape(bobPassword), form))["access_token"].(string))}, 403, conforms)
	run("audit", req{method: "GET", path: "/v1/admin/audit", headers: admin}, 200, conforms)
	ck, _ = as(alice, false)
	run("audit by an admin's session", req{method: "GET", path: "/v1/admin/audit?type=login.failure&limit=5", cookies: ck}, 200, conforms)
	run("audit, bad limit", req{method: "GET", path: "/v1/admin/audit?limit=0", headers: admin}, 400, breaks)
	ck, _ = as(bob, false)
	run("audit, no admin role", req{method: "GET", path: "/v1/admin/audit", cookies: ck}, 403, conforms)
	run("rotate with the access cookie, no CSRF token", req{method: "POST", path: "/v1/admin/keys/rotate", cookies: []*http.Cookie{access}}, 403, conforms)
	run("rotate with the access cookie", req{method: "POST", path: "/v1/admin/keys/rotate", cookies: []*http.Cookie{access}, headers: map[string]string{"X-CSRF-Token": hyCSRF}}, 200, conforms)
	kid := jsonOf(run("rotate", req{method: "POST", path: "/v1/admin/keys/rotate", headers: admin}, 200, conforms))["kid"].(string)
	run("remove an unknown key", req{method: "DELETE", path: "/v1/admin/keys/nope", headers: admin}, 404, conforms)
	ck, hd = as(bob, true)
	run("remove a key, no admin role", req{method: "DELETE", path: "/v1/admin/keys/" + kid, cookies: ck, headers: hd}, 403, conforms)
	run("remove a key", req{method: "DELETE", path: "/v1/admin/keys/" + kid, headers: admin}, 204, conforms)

	// Every operation: its credential, one credential only, and the
	// cross-origin check.
	for _, op := range documentedOperations(c.doc) {
		method, path, _ := strings.Cut(op, " ")
		o := c.doc.Paths.Value(path).GetOperation(method)
		p := fill(path, "x")
		if o.Security != nil && len(*o.Security) > 0 {
			run(op+" without a credential", req{method: method, path: p}, 401, breaks)
			if slices.ContainsFunc(*o.Security, func(s openapi3.SecurityRequirement) bool { _, ok := s["sessionCookie"]; return ok }) {
				ck, _ := as(alice, false)
				run(op+" with two credentials", req{method: method, path: p, cookies: ck, headers: bearer(aliceAccess)}, 400, breaks)
			}
		}
		if method == "POST" || method == "DELETE" {
			run(op+" from another origin", req{method: method, path: p, headers: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403, undecided)
		}
	}

	// Shutting down: not ready any more.
	h.api.SetShuttingDown()
	run("readyz, shutting down", req{method: "GET", path: "/readyz"}, 503, conforms)

	c.checkCoverage()
}

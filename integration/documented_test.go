package integration

// Traefik and Envoy are not installed here: their documented
// configurations (testdata/traefik, testdata/envoy) are parsed and checked
// against a running Gatehouse, its endpoints and its discovery document.

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The documented deployment of testdata/envoy and docs/gateways.md.
const (
	docIssuer   = "https://auth.example.com"
	docAudience = "https://api.example.com"
)

// envoyAlgs are the JWS algorithms Envoy's jwt_authn verifies with a
// public JWKS (jwt_verify_lib: RSA, RSA-PSS, ECDSA, Ed25519).
var envoyAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// underscored is the spelling of a header name that CGI-style frameworks
// read as the same name.
func underscored(name string) string { return strings.ReplaceAll(name, "-", "_") }

// TestDocumentedConfigs checks the Traefik and Envoy configurations of
// docs/gateways.md against a Gatehouse started as that page says.
func TestDocumentedConfigs(t *testing.T) {
	gh := startGatehouse(t, "--issuer", docIssuer, "--audience", docAudience, "--forward-token-audience", forwardAudience)
	c := newClient(t)
	user := signup(t, c, gh.url, "carol")
	f := &fixture{c: c, gh: gh, user: user,
		session: login(t, c, gh.url, user, nil),
		token:   passwordGrant(t, c, gh.url, user),
	}
	var disc struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	send(t, c, gh.url, request{method: "GET", path: "/.well-known/openid-configuration"}).json(t, &disc)
	if disc.Issuer != docIssuer {
		t.Fatalf("discovery issuer %q, want %q", disc.Issuer, docIssuer)
	}
	t.Run("traefik", func(t *testing.T) { testTraefik(t, f) })
	t.Run("envoy", func(t *testing.T) { testEnvoy(t, f, disc.Issuer, disc.JWKSURI, disc.Algs) })
}

// traefikDynamic is the part of Traefik's dynamic configuration the
// documented file uses; unknown fields are refused, to catch misspellings.
type traefikDynamic struct {
	HTTP struct {
		Routers map[string]struct {
			Rule        string         `yaml:"rule"`
			EntryPoints []string       `yaml:"entryPoints"`
			Middlewares []string       `yaml:"middlewares"`
			Service     string         `yaml:"service"`
			TLS         map[string]any `yaml:"tls"`
		} `yaml:"routers"`
		Middlewares map[string]struct {
			Headers *struct {
				CustomRequestHeaders map[string]string `yaml:"customRequestHeaders"`
			} `yaml:"headers"`
			ForwardAuth *struct {
				Address             string   `yaml:"address"`
				TrustForwardHeader  *bool    `yaml:"trustForwardHeader"`
				AuthResponseHeaders []string `yaml:"authResponseHeaders"`
			} `yaml:"forwardAuth"`
		} `yaml:"middlewares"`
		Services map[string]struct {
			LoadBalancer struct {
				Servers []struct {
					URL string `yaml:"url"`
				} `yaml:"servers"`
			} `yaml:"loadBalancer"`
		} `yaml:"services"`
	} `yaml:"http"`
}

func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func testTraefik(t *testing.T, f *fixture) {
	var cfg traefikDynamic
	decodeStrict(t, "testdata/traefik/dynamic.yml", &cfg)
	h := cfg.HTTP

	// The ForwardAuth middleware.
	var faName string
	for name, m := range h.Middlewares {
		if m.ForwardAuth != nil {
			if faName != "" {
				t.Fatalf("two forwardAuth middlewares: %s and %s", faName, name)
			}
			faName = name
		}
	}
	if faName == "" {
		t.Fatal("no forwardAuth middleware")
	}
	fa := h.Middlewares[faName].ForwardAuth
	if fa.TrustForwardHeader == nil || *fa.TrustForwardHeader {
		t.Errorf("trustForwardHeader must be set to false (a client's X-Forwarded-Method would be believed)")
	}
	if !sameSet(fa.AuthResponseHeaders, identityHeaders) {
		t.Errorf("authResponseHeaders %v, want %v", fa.AuthResponseHeaders, identityHeaders)
	}
	addr, err := url.Parse(fa.Address)
	if err != nil || addr.Path != "/v1/verify" || addr.RawQuery != "" {
		t.Fatalf("forwardAuth address %q: want Gatehouse's /v1/verify", fa.Address)
	}
	gatehouseService := ""
	for name, s := range h.Services {
		for _, srv := range s.LoadBalancer.Servers {
			if u, err := url.Parse(srv.URL); err == nil && u.Host == addr.Host {
				gatehouseService = name
			}
		}
	}
	if gatehouseService == "" {
		t.Fatalf("no service has Gatehouse's address %s", addr.Host)
	}

	// Every router to anything but Gatehouse strips the client's identity
	// headers, then asks Gatehouse.
	authed := 0
	for name, r := range h.Routers {
		if r.Service == gatehouseService {
			if !strings.Contains(r.Rule, "PathPrefix(`/v1/`)") || !strings.Contains(r.Rule, "PathPrefix(`/.well-known/`)") {
				t.Errorf("router %s: Gatehouse should get /v1/ and /.well-known/ of the app's host: %s", name, r.Rule)
			}
			continue
		}
		i := slices.Index(r.Middlewares, faName)
		if i < 0 {
			t.Errorf("router %s to %s does not use %s", name, r.Service, faName)
			continue
		}
		authed++
		stripped := map[string]bool{}
		for _, mw := range r.Middlewares[:i] {
			if hm := h.Middlewares[mw].Headers; hm != nil {
				for k, v := range hm.CustomRequestHeaders {
					if v == "" {
						stripped[http.CanonicalHeaderKey(k)] = true
					}
				}
			}
		}
		for _, hd := range identityHeaders {
			for _, spelling := range []string{hd, underscored(hd)} {
				if !stripped[http.CanonicalHeaderKey(spelling)] {
					t.Errorf("router %s: no headers middleware before %s removes a client's %s", name, faName, spelling)
				}
			}
		}
	}
	if authed == 0 {
		t.Error("no router uses the forwardAuth middleware")
	}

	// Gatehouse at the address's path answers the way Traefik needs: a GET
	// with the client's headers and Traefik's X-Forwarded-*.
	type want struct {
		status int
		mode   string
	}
	cases := []struct {
		name   string
		cred   credKind
		method string // X-Forwarded-Method
		csrf   string
		want   want
	}{
		{name: "no credential", cred: credNone, method: "GET", want: want{status: 401}},
		{name: "malformed bearer token", cred: credMalformedBearer, method: "GET", want: want{status: 401}},
		{name: "session GET", cred: credSession, method: "GET", want: want{200, "session"}},
		{name: "bearer GET", cred: credBearer, method: "GET", want: want{200, "token"}},
		{name: "session POST without CSRF token", cred: credSession, method: "POST", want: want{status: 403}},
		{name: "session POST with the CSRF token", cred: credSession, method: "POST", csrf: "valid", want: want{200, "session"}},
		{name: "bearer POST", cred: credBearer, method: "POST", want: want{200, "token"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := spoofHeaders()
			hdr.Set("X-Forwarded-Method", tc.method)
			hdr.Set("X-Forwarded-Proto", "https")
			hdr.Set("X-Forwarded-Host", "app.example.com")
			hdr.Set("X-Forwarded-Uri", "/some/page?x=1")
			rq := f.credentialed(t, request{method: "GET", path: addr.Path, header: hdr}, tc.cred, tc.csrf)
			r := send(t, f.c, f.gh.url, rq)
			if r.status != tc.want.status {
				t.Fatalf("%s: %s, want %d", addr.Path, r, tc.want.status)
			}
			var got []string
			for k := range r.header {
				if strings.HasPrefix(strings.ToLower(k), "x-gatehouse") || strings.HasPrefix(strings.ToLower(k), "x_gatehouse") {
					got = append(got, k)
				}
			}
			if r.status != http.StatusOK {
				if len(got) != 0 {
					t.Errorf("a %d carries identity headers %v", r.status, got)
				}
				if r.status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without a Bearer challenge: %q", r.header.Get("WWW-Authenticate"))
				}
				return
			}
			// Exactly the headers Traefik copies, with Gatehouse's values.
			if !sameSet(got, fa.AuthResponseHeaders) {
				t.Errorf("Gatehouse answered identity headers %v, authResponseHeaders lists %v", got, fa.AuthResponseHeaders)
			}
			e := &echoed{Identity: map[string][]string{}}
			for _, k := range got {
				e.Identity[k] = r.header.Values(k)
			}
			f.wantIdentity(t, e, tc.want.mode)
		})
	}
}

// sameSet reports whether a and b hold the same header names.
func sameSet(a, b []string) bool {
	canon := func(s []string) []string {
		out := make([]string, len(s))
		for i, v := range s {
			out[i] = http.CanonicalHeaderKey(v)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(canon(a), canon(b)) && len(a) == len(b)
}

// node walks a decoded YAML document: string steps index maps, int steps
// index lists. It fails the test when the path does not exist.
func node(t *testing.T, v any, path ...any) any {
	t.Helper()
	for i, step := range path {
		switch s := step.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a map at %v", path[:i+1], path[:i])
			}
			if v, ok = m[s]; !ok {
				t.Fatalf("%v: missing", path[:i+1])
			}
		case int:
			l, ok := v.([]any)
			if !ok || s >= len(l) {
				t.Fatalf("%v: not a list of more than %d items", path[:i+1], s)
			}
			v = l[s]
		}
	}
	return v
}

func str(t *testing.T, v any, path ...any) string {
	t.Helper()
	s, ok := node(t, v, path...).(string)
	if !ok {
		t.Fatalf("%v: not a string", path)
	}
	return s
}

func list(t *testing.T, v any, path ...any) []any {
	t.Helper()
	l, ok := node(t, v, path...).([]any)
	if !ok {
		t.Fatalf("%v: not a list", path)
	}
	return l
}

func testEnvoy(t *testing.T, f *fixture, issuer, jwksURI string, discAlgs []string) {
	b, err := os.ReadFile("testdata/envoy/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("envoy.yaml: %v", err)
	}

	// The clusters by name.
	clusters := map[string]any{}
	for _, cl := range list(t, doc, "static_resources", "clusters") {
		clusters[str(t, cl, "name")] = cl
	}

	// The HTTP filters of every listener: header_mutation, then
	// jwt_authn, then the router, last.
	listeners := list(t, doc, "static_resources", "listeners")
	if len(listeners) == 0 {
		t.Fatal("no listener")
	}
	for li, l := range listeners {
		for fi, fc := range list(t, l, "filter_chains") {
			for _, nf := range list(t, fc, "filters") {
				if str(t, nf, "name") != "envoy.filters.network.http_connection_manager" {
					continue
				}
				filters := list(t, nf, "typed_config", "http_filters")
				idx := map[string]int{}
				for i, hf := range filters {
					idx[str(t, hf, "name")] = i
				}
				hm, okHM := idx["envoy.filters.http.header_mutation"]
				ja, okJA := idx["envoy.filters.http.jwt_authn"]
				rt, okRT := idx["envoy.filters.http.router"]
				if !okHM || !okJA || !okRT || hm > ja || rt != len(filters)-1 {
					t.Fatalf("listener %d chain %d: http_filters %v; want header_mutation, then jwt_authn, then router last", li, fi, idx)
				}
				removed := map[string]bool{}
				for _, m := range list(t, filters[hm], "typed_config", "mutations", "request_mutations") {
					if r, ok := m.(map[string]any)["remove"].(string); ok {
						removed[strings.ToLower(r)] = true
					}
				}
				for _, hd := range identityHeaders {
					for _, spelling := range []string{hd, underscored(hd)} {
						if !removed[strings.ToLower(spelling)] {
							t.Errorf("header_mutation does not remove a client's %s", strings.ToLower(spelling))
						}
					}
				}
				checkJWTAuthn(t, f, node(t, filters[ja], "typed_config"), clusters, issuer, jwksURI, discAlgs)
			}
		}
	}
}

func checkJWTAuthn(t *testing.T, f *fixture, ja any, clusters map[string]any, issuer, jwksURI string, discAlgs []string) {
	providers, ok := node(t, ja, "providers").(map[string]any)
	if !ok || len(providers) != 1 {
		t.Fatalf("jwt_authn providers: want exactly one, got %v", providers)
	}
	for name, p := range providers {
		pm := p.(map[string]any)
		if got := str(t, p, "issuer"); got != issuer {
			t.Errorf("provider %s: issuer %q, the discovery document says %q", name, got, issuer)
		}

		// The JWKS: the discovery's jwks_uri, served by Gatehouse with
		// algorithms Envoy verifies, fetched over verified TLS.
		uri := str(t, p, "remote_jwks", "http_uri", "uri")
		if uri != jwksURI {
			t.Errorf("provider %s: JWKS %q, the discovery document says %q", name, uri, jwksURI)
		}
		ju, err := url.Parse(uri)
		if err != nil {
			t.Fatalf("JWKS URI %q: %v", uri, err)
		}
		var jwks struct {
			Keys []struct {
				Kid, Alg, Use string
			}
		}
		r := send(t, f.c, f.gh.url, request{method: "GET", path: ju.Path})
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %s", ju.Path, r)
		}
		r.json(t, &jwks)
		if len(jwks.Keys) == 0 {
			t.Fatalf("GET %s: no keys", ju.Path)
		}
		var kids []string
		for _, k := range jwks.Keys {
			if !slices.Contains(envoyAlgs, k.Alg) || k.Use != "sig" || k.Kid == "" {
				t.Errorf("JWKS key %+v: Envoy needs a kid, use sig and one of %v", k, envoyAlgs)
			}
			kids = append(kids, k.Kid)
		}
		for _, a := range discAlgs {
			if !slices.Contains(envoyAlgs, a) {
				t.Errorf("discovery algorithm %s is not one Envoy verifies", a)
			}
		}
		cache, err := time.ParseDuration(str(t, p, "remote_jwks", "cache_duration"))
		if err != nil || cache <= 0 || cache > 5*time.Minute {
			t.Errorf("cache_duration %v: want at most Gatehouse's default key publish delay, 5m", node(t, p, "remote_jwks", "cache_duration"))
		}
		clName := str(t, p, "remote_jwks", "http_uri", "cluster")
		cl, ok := clusters[clName]
		if !ok {
			t.Fatalf("provider %s: JWKS cluster %q is not defined", name, clName)
		}
		ep := node(t, cl, "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint", "address", "socket_address")
		port := fmt.Sprint(node(t, ep, "port_value"))
		wantPort := ju.Port()
		if wantPort == "" {
			wantPort = map[string]string{"https": "443", "http": "80"}[ju.Scheme]
		}
		if str(t, ep, "address") != ju.Hostname() || port != wantPort {
			t.Errorf("JWKS cluster %s reaches %v:%s, the URI names %s:%s", clName, node(t, ep, "address"), port, ju.Hostname(), wantPort)
		}
		if ju.Scheme == "https" {
			ts := node(t, cl, "transport_socket")
			if str(t, ts, "name") != "envoy.transport_sockets.tls" || str(t, ts, "typed_config", "sni") != ju.Hostname() {
				t.Errorf("JWKS cluster %s: want TLS with SNI %s", clName, ju.Hostname())
			}
			vc := node(t, ts, "typed_config", "common_tls_context", "validation_context")
			node(t, vc, "trusted_ca")
			if san := str(t, vc, "match_typed_subject_alt_names", 0, "matcher", "exact"); san != ju.Hostname() {
				t.Errorf("JWKS cluster %s checks the certificate name %q, want %q", clName, san, ju.Hostname())
			}
		}

		// Tokens come from the Authorization header only, never a query.
		fh := list(t, p, "from_headers")
		if len(fh) != 1 || str(t, fh[0], "name") != "Authorization" || str(t, fh[0], "value_prefix") != "Bearer " {
			t.Errorf("from_headers %v: want only Authorization with prefix %q", fh, "Bearer ")
		}
		if _, ok := pm["from_params"]; ok {
			t.Error("from_params is set: tokens are never accepted in a URL query")
		}
		if _, ok := pm["from_cookies"]; ok {
			t.Error("from_cookies is set: cookie credentials need the CSRF check of forward-auth")
		}
		if pm["require_expiration"] != true {
			t.Error("require_expiration must be true")
		}
		if skew, ok := pm["clock_skew_seconds"].(int); !ok || skew < 0 || skew > 60 {
			t.Errorf("clock_skew_seconds %v: Gatehouse allows at most 60", pm["clock_skew_seconds"])
		}

		// A real access token passes iss, aud and key; a forward token,
		// meant for upstreams, does not.
		header, claims := jwtParts(t, f.token)
		auds := list(t, p, "audiences")
		accepted := func(claims map[string]any) bool {
			for _, a := range audiences(claims) {
				if slices.Contains(auds, any(a)) {
					return true
				}
			}
			return false
		}
		if !accepted(claims) || claims["iss"] != issuer {
			t.Errorf("provider %s (audiences %v) would refuse an access token with iss %v, aud %v", name, auds, claims["iss"], claims["aud"])
		}
		if !slices.Contains(envoyAlgs, fmt.Sprint(header["alg"])) || !slices.Contains(kids, fmt.Sprint(header["kid"])) {
			t.Errorf("access token header %v: not verifiable with the JWKS", header)
		}
		r = send(t, f.c, f.gh.url, request{method: "GET", path: "/v1/verify", bearer: f.token})
		if r.status != http.StatusOK || r.header.Get("X-Gatehouse-Token") == "" {
			t.Fatalf("/v1/verify: %s", r)
		}
		if _, fwd := jwtParts(t, r.header.Get("X-Gatehouse-Token")); accepted(fwd) {
			t.Errorf("provider %s accepts the forward token's audience %v: upstream tokens must not open the API", name, fwd["aud"])
		}

		// The identity headers Envoy writes are Gatehouse's names, from
		// claims the token has.
		for _, ch := range list(t, p, "claim_to_headers") {
			hn, cn := str(t, ch, "header_name"), str(t, ch, "claim_name")
			if !slices.Contains(identityHeaders, http.CanonicalHeaderKey(hn)) {
				t.Errorf("claim_to_headers writes %s, not a Gatehouse identity header", hn)
			}
			if _, ok := claims[cn]; !ok {
				t.Errorf("claim_to_headers reads claim %s, which access tokens lack", cn)
			}
			if strings.EqualFold(hn, "X-Gatehouse-User-Id") && (cn != "sub" || claims["sub"] != f.user.id) {
				t.Errorf("x-gatehouse-user-id comes from claim %s = %v, want sub = %s", cn, claims[cn], f.user.id)
			}
		}
		if h, ok := pm["forward_payload_header"].(string); ok && slices.Contains(identityHeaders, http.CanonicalHeaderKey(h)) {
			t.Errorf("forward_payload_header %s overwrites an identity header", h)
		}
	}

	// Every rule requires the provider: no allow_missing.
	rules := list(t, ja, "rules")
	root := false
	for _, rule := range rules {
		if str(t, rule, "requires", "provider_name") == "" {
			t.Errorf("rule %v does not require a provider", rule)
		}
		if p, ok := node(t, rule, "match").(map[string]any)["prefix"]; ok && p == "/" {
			root = true
		}
	}
	if !root {
		t.Error(`no jwt_authn rule matches prefix "/"`)
	}
}

// docSite is the deployment docs/gateways.md shows for nginx and Caddy.
var docSite = siteData{
	Listen:       "80",
	Site:         "app.example.com",
	Gatehouse:    "127.0.0.1:8080",
	App:          "127.0.0.1:3000",
	ForwardToken: true,
}

// TestDocsShowTheTestedConfigs: docs/gateways.md holds, verbatim, the
// nginx and Caddy sites these tests run (rendered for docSite) and the
// Traefik and Envoy files these tests check.
func TestDocsShowTheTestedConfigs(t *testing.T) {
	b, err := os.ReadFile("../docs/gateways.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, c := range []struct{ name, text string }{
		{"nginx site", renderTemplate(t, "testdata/nginx/site.conf.tmpl", docSite)},
		{"Caddy site", renderTemplate(t, "testdata/caddy/site.caddyfile.tmpl", docSite)},
		{"Traefik dynamic configuration", read("testdata/traefik/dynamic.yml")},
		{"Envoy bootstrap", read("testdata/envoy/envoy.yaml")},
	} {
		if !strings.Contains(doc, c.text) {
			t.Errorf("docs/gateways.md does not show the tested %s verbatim; it should contain:\n%s", c.name, c.text)
		}
	}
}

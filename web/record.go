package web

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-auth/gatehouse/csrf"
)

// mask shows a secret partly: its first 6 and last 4 characters, never the
// whole. A value too short for that to hide most of it is hidden entirely.
func mask(s string) string {
	if s == "" {
		return ""
	}
	n := utf8.RuneCountInString(s)
	if n < 20 {
		return "…(" + strconv.Itoa(n) + " characters hidden)"
	}
	r := []rune(s)
	return string(r[:6]) + "…" + string(r[n-4:])
}

// secretFields are the body members and form fields whose values the lab
// masks.
var secretFields = map[string]bool{
	"access_token": true, "refresh_token": true, "id_token": true, "token": true,
	"csrf_token": true, "password": true, "current_password": true, "new_password": true,
}

// passwordFields are the secret fields shown with no character at all: a
// passphrase's first and last characters say too much.
var passwordFields = map[string]bool{"password": true, "current_password": true, "new_password": true}

// maskField masks the value of the secret member or form field name.
func maskField(name, v string) string {
	if passwordFields[name] {
		return "…(" + strconv.Itoa(utf8.RuneCountInString(v)) + " characters hidden)"
	}
	return mask(v)
}

// secretHeaders are headers whose whole value is a secret.
var secretHeaders = map[string]bool{
	http.CanonicalHeaderKey(csrf.HeaderName): true,
	"X-Gatehouse-Token":                      true,
}

// maxShownBody bounds a body in a record.
const maxShownBody = 8 << 10

// exchange is one HTTP exchange with the API as the lab shows it: every
// secret masked.
type exchange struct {
	Purpose  string   `json:"purpose"`
	Request  reqView  `json:"request"`
	Response respView `json:"response"`
	Bytes    wireSize `json:"bytes"`
	Micros   int64    `json:"duration_us"`
}

type headerView struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type cookieView struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Path  string `json:"path,omitempty"`
}

type setCookieView struct {
	Name       string `json:"name"`
	Value      string `json:"value"`
	Attributes string `json:"attributes"`
	Cleared    bool   `json:"cleared"`
}

type reqView struct {
	Method  string       `json:"method"`
	Path    string       `json:"path"`
	Headers []headerView `json:"headers"`
	Cookies []cookieView `json:"cookies"`
	Body    string       `json:"body,omitempty"`
}

type respView struct {
	Status     int             `json:"status"`
	StatusText string          `json:"status_text"`
	Headers    []headerView    `json:"headers"`
	SetCookies []setCookieView `json:"set_cookies"`
	Body       string          `json:"body,omitempty"`
}

// wireSize is what a request weighs on the wire, as HTTP/1.1 would send it:
// the credential's header line (Cookie or Authorization) and the whole
// request (request line, headers, body).
type wireSize struct {
	CredentialHeader string `json:"credential_header,omitempty"`
	Credential       int    `json:"credential"`
	Request          int    `json:"request"`
}

// recordExchange builds the masked view of one in-process exchange.
func recordExchange(purpose string, body []byte, res *apiResponse) exchange {
	req := res.sent
	ex := exchange{Purpose: purpose, Micros: res.took.Microseconds(), Bytes: measureRequest(req, body)}
	ex.Request = reqView{Method: req.Method, Path: req.URL.RequestURI(), Headers: []headerView{{"Host", req.Host}}, Cookies: []cookieView{}}
	for _, k := range sortedKeys(req.Header) {
		for _, v := range req.Header[k] {
			switch {
			case k == "Cookie":
				continue
			case k == "Authorization":
				v = maskAuthorization(v)
			case secretHeaders[k]:
				v = mask(v)
			}
			ex.Request.Headers = append(ex.Request.Headers, headerView{k, v})
		}
	}
	for _, c := range req.Cookies() {
		ex.Request.Cookies = append(ex.Request.Cookies, cookieView{Name: c.Name, Value: mask(c.Value)})
	}
	ex.Request.Body = maskBody(req.Header.Get("Content-Type"), body)

	ex.Response = respView{Status: res.status, StatusText: http.StatusText(res.status), Headers: []headerView{}, SetCookies: []setCookieView{}}
	for _, k := range sortedKeys(res.header) {
		if k == "Set-Cookie" {
			continue
		}
		for _, v := range res.header[k] {
			if secretHeaders[k] {
				v = mask(v)
			}
			ex.Response.Headers = append(ex.Response.Headers, headerView{k, v})
		}
	}
	for _, c := range res.setCookies() {
		ex.Response.SetCookies = append(ex.Response.SetCookies, setCookieView{
			Name: c.Name, Value: mask(c.Value), Attributes: cookieAttributes(c), Cleared: c.MaxAge < 0,
		})
	}
	ex.Response.Body = maskBody(res.header.Get("Content-Type"), res.body)
	return ex
}

func sortedKeys(h http.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// maskAuthorization masks the credential of an Authorization header and
// keeps its scheme.
func maskAuthorization(v string) string {
	scheme, cred, ok := strings.Cut(v, " ")
	if !ok {
		return mask(v)
	}
	return scheme + " " + mask(cred)
}

// cookieAttributes is the attribute part of a Set-Cookie line.
func cookieAttributes(c *http.Cookie) string {
	var parts []string
	if c.Path != "" {
		parts = append(parts, "Path="+c.Path)
	}
	if c.Domain != "" {
		parts = append(parts, "Domain="+c.Domain)
	}
	switch {
	case c.MaxAge < 0:
		parts = append(parts, "Max-Age=0")
	case c.MaxAge > 0:
		parts = append(parts, "Max-Age="+strconv.Itoa(c.MaxAge))
	}
	if c.Secure {
		parts = append(parts, "Secure")
	}
	if c.HttpOnly {
		parts = append(parts, "HttpOnly")
	}
	switch c.SameSite {
	case http.SameSiteLaxMode:
		parts = append(parts, "SameSite=Lax")
	case http.SameSiteStrictMode:
		parts = append(parts, "SameSite=Strict")
	case http.SameSiteNoneMode:
		parts = append(parts, "SameSite=None")
	}
	return strings.Join(parts, "; ")
}

// maskBody returns a body for display with every secret member or field
// masked: JSON is re-indented, a form is shown field by field, anything
// else is shown as text, cut to maxShownBody.
func maskBody(contentType string, body []byte) string {
	if len(body) == 0 {
		return ""
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mt == "application/x-www-form-urlencoded":
		return maskForm(string(body))
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		if s, ok := maskJSON(body); ok {
			return s
		}
		return "(a JSON body that does not parse; not shown)"
	}
	if !utf8.Valid(body) {
		return "(" + strconv.Itoa(len(body)) + " bytes of binary data)"
	}
	return cutShown(string(body))
}

// cutShown cuts s to maxShownBody bytes on a rune boundary.
func cutShown(s string) string {
	if len(s) <= maxShownBody {
		return s
	}
	s = s[:maxShownBody]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

func maskForm(s string) string {
	var out []string
	for _, kv := range strings.Split(s, "&") {
		k, v, _ := strings.Cut(kv, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return "(a form body that does not parse; not shown)"
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return "(a form body that does not parse; not shown)"
		}
		if secretFields[name] {
			val = maskField(name, val)
		}
		out = append(out, name+"="+val)
	}
	return cutShown(strings.ToValidUTF8(strings.Join(out, "&"), "\uFFFD"))
}

func maskJSON(body []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", false
	}
	v = maskValue(v, false)
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", false
	}
	return cutShown(string(b)), true
}

// maskValue masks the string values of secret members, at any depth.
func maskValue(v any, secret bool) any {
	return maskMember(v, secret, "")
}

func maskMember(v any, secret bool, name string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = maskMember(e, secretFields[k], k)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = maskMember(e, secret, name)
		}
		return x
	case string:
		if secret {
			return maskField(name, x)
		}
	}
	return v
}

// measureRequest computes the wire size of req with body as HTTP/1.1 would
// send it.
func measureRequest(req *http.Request, body []byte) wireSize {
	var ws wireSize
	line := func(name, value string) int { return len(name) + 2 + len(value) + 2 }
	n := len(req.Method) + 1 + len(req.URL.RequestURI()) + len(" HTTP/1.1\r\n")
	n += line("Host", req.Host)
	for k, vs := range req.Header {
		for _, v := range vs {
			l := line(k, v)
			n += l
			if k == "Authorization" || (k == "Cookie" && v != "") {
				if ws.CredentialHeader != "" {
					ws.CredentialHeader += " + "
				}
				ws.CredentialHeader += k
				ws.Credential += l
			}
		}
	}
	if len(body) > 0 {
		n += line("Content-Length", strconv.Itoa(len(body)))
	}
	n += 2 + len(body)
	ws.Request = n
	return ws
}

// jwtView is an access token as the lab shows it: decoded header and
// claims, and what two verifiers say of it.
type jwtView struct {
	Pane string `json:"pane"`
	// Where says how the client holds it.
	Where string `json:"where"`
	// Token is the masked token; Bytes its length.
	Token  string         `json:"token"`
	Bytes  int            `json:"bytes"`
	Header map[string]any `json:"header"`
	Claims map[string]any `json:"claims"`
	// ExpiresAt and RemainingSeconds (on the lab clock) come from exp.
	ExpiresAt        time.Time `json:"expires_at"`
	RemainingSeconds float64   `json:"remaining_seconds"`
	// Gatehouse is the verdict of Gatehouse's full verifier (with
	// revocation), seen through GET /v1/me; nil when not asked in this
	// action.
	Gatehouse *verdict `json:"gatehouse,omitempty"`
	// JWKSOnly is the verdict of a verifier holding only the public keys.
	JWKSOnly verdict `json:"jwks_only"`
}

// verdict is one verifier's answer about a token.
type verdict struct {
	Accepted bool   `json:"accepted"`
	Detail   string `json:"detail"`
	Status   int    `json:"status,omitempty"`
}

// decodeJWT decodes the header and claims of a compact JWS without
// verifying anything: the verdicts say whether it is valid.
func decodeJWT(raw string) (header, claims map[string]any, ok bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, nil, false
	}
	dec := func(s string) (map[string]any, bool) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return nil, false
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var m map[string]any
		if d.Decode(&m) != nil || m == nil {
			return nil, false
		}
		return m, true
	}
	header, ok1 := dec(parts[0])
	claims, ok2 := dec(parts[1])
	return header, claims, ok1 && ok2
}

// claimTime reads a NumericDate claim.
func claimTime(claims map[string]any, name string) (time.Time, bool) {
	n, ok := claims[name].(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0).UTC(), true
}

func claimString(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return s
}

package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// question is one question of the decision guide.
type question struct {
	Name, Text, Help string
	// Value is the visitor's answer: "yes", "no" or "".
	Value string
}

var questions = []question{
	{Name: "domains", Text: "Will the login be used on several domains, or by native apps and other devices?",
		Help: "Cookies belong to one site; a token can be carried anywhere."},
	{Name: "services", Text: "Will several servers or services need to check who the caller is?",
		Help: "Think of separate APIs, workers or a gateway in front of them."},
	{Name: "instant", Text: "Must a logout, or an admin's forced logout, take effect at once everywhere?",
		Help: "For example after a stolen laptop or a fired employee."},
	{Name: "browser", Text: "Are all clients web pages in a browser, on one site?",
		Help: "No mobile app, no command-line client, no other company's server."},
}

// decision is the guide's answer.
type decision struct {
	Mode    string
	Title   string
	Reasons []string
}

type compareRow struct {
	Mode, State      string
	CredentialHeader string
	CredentialBytes  int
	RequestBytes     int
	Gatehouse        string
	Accepted         string
	JWKSOnly         string
	Logout           string
}

type benchRow struct {
	Key, Value string
}

type comparePage struct {
	Measurement *measurement
	Rows        []compareRow
	Observation *observation
	HasBench    bool
	Bench       []benchRow
	BenchCut    bool
	Questions   []question
	Decision    *decision
	Missing     bool
}

// modeState says where each mode keeps its state.
var modeState = map[string]string{
	modeSession: "on the server (session store)",
	modeToken:   "on the client (signed JWT, Bearer header)",
	modeHybrid:  "on the client (signed JWT, HttpOnly cookie)",
}

func (l *lab) comparePage(w http.ResponseWriter, r *http.Request, v *visitor) {
	p := comparePage{Measurement: v.measurement, Observation: v.observation}
	if m := v.measurement; m != nil {
		for _, row := range m.Rows {
			cr := compareRow{Mode: row.Mode, State: modeState[row.Mode], CredentialHeader: row.CredentialHeader,
				CredentialBytes: row.CredentialBytes, RequestBytes: row.RequestBytes,
				Gatehouse: fmt.Sprintf("%.1f", row.GatehouseMicros), Accepted: fmt.Sprintf("%d/%d", row.Accepted, m.Calls), JWKSOnly: "n/a (nothing to verify without the store)"}
			if row.HasJWKSOnly {
				cr.JWKSOnly = fmt.Sprintf("%.1f", row.JWKSOnlyMicros)
			}
			cr.Logout = observedLogout(v.observation, row.Mode)
			p.Rows = append(p.Rows, cr)
		}
	}
	if l.cfg.LatestBench != nil {
		if b := l.cfg.LatestBench(); b != nil {
			p.HasBench = true
			p.Bench, p.BenchCut = flattenJSON(b, maxBenchRows)
		}
	}
	q := r.URL.Query()
	answered := 0
	for _, qu := range questions {
		qu.Value = q.Get(qu.Name)
		if qu.Value != "yes" && qu.Value != "no" {
			qu.Value = ""
		} else {
			answered++
		}
		p.Questions = append(p.Questions, qu)
	}
	if q.Has("decide") {
		if answered == len(questions) {
			d := decide(answers(p.Questions), v.measurement, v.observation)
			p.Decision = &d
		} else {
			p.Missing = true
		}
	}
	l.h.render(w, http.StatusOK, "compare", pageData{Title: "Compare the modes", Page: p})
}

// compareMeasure runs the measurement for the visitor, then shows the table.
func (l *lab) compareMeasure(w http.ResponseWriter, r *http.Request, v *visitor) {
	ans := l.run(r, v, "lab", "measure", (*act).measure)
	if ans.status != http.StatusOK {
		msg := "The measurement failed."
		if m, ok := ans.body.(map[string]string); ok {
			msg = m["error"]
		}
		l.h.renderError(w, ans.status, msg)
		return
	}
	seeOther(w, r, "/lab/compare#table")
}

func observedLogout(o *observation, mode string) string {
	if o == nil {
		return "not observed yet: run a forced logout in the lab"
	}
	for _, p := range o.Panes {
		if p.Mode != mode {
			continue
		}
		s := "Gatehouse: "
		if p.GatehouseAccepted {
			s += "still accepted"
		} else {
			s += "refused at once"
		}
		if p.HasToken {
			if p.JWKSOnlyAccepted {
				s += fmt.Sprintf("; JWKS-only: accepted for %s more, until exp", roundDuration(time.Duration(p.RemainingSeconds*float64(time.Second))))
			} else {
				s += "; JWKS-only: refused"
			}
		}
		return s + " (observed at " + o.At.Format("15:04:05 UTC") + ")"
	}
	return "this pane was not logged in at the last forced logout"
}

func answers(qs []question) map[string]bool {
	a := map[string]bool{}
	for _, q := range qs {
		a[q.Name] = q.Value == "yes"
	}
	return a
}

func rowOf(m *measurement, mode string) *measureRow {
	if m == nil {
		return nil
	}
	for i := range m.Rows {
		if m.Rows[i].Mode == mode {
			return &m.Rows[i]
		}
	}
	return nil
}

// jwksLeft is how long a JWKS-only verifier kept accepting a token after the
// last forced logout, "" when not observed.
func jwksLeft(o *observation) string {
	if o == nil {
		return ""
	}
	for _, p := range o.Panes {
		if p.HasToken && p.JWKSOnlyAccepted {
			return roundDuration(time.Duration(p.RemainingSeconds * float64(time.Second)))
		}
	}
	return ""
}

// decide recommends a mode for the answers, with reasons drawn from the
// live measurements where there are some.
func decide(a map[string]bool, m *measurement, o *observation) decision {
	sess, tok, hyb := rowOf(m, modeSession), rowOf(m, modeToken), rowOf(m, modeHybrid)
	var d decision
	switch {
	case !a["browser"] || a["domains"]:
		d = decision{Mode: modeToken, Title: "Token mode: access and refresh tokens"}
		d.Reasons = append(d.Reasons, "Cookies belong to one site. Apps on other domains, native apps and other devices carry the access token as an Authorization: Bearer header, and renew it with the rotating refresh token.")
		if a["instant"] {
			r := "Logout must be instant, so every service should verify through Gatehouse (forward-auth with GET /v1/verify, or the verify package with its revocation feed), not with the public keys alone: a JWKS-only verifier accepts a revoked token until it expires."
			if left := jwksLeft(o); left != "" {
				r += " In the lab, one still accepted a token for " + left + " after the forced logout."
			}
			d.Reasons = append(d.Reasons, r)
		} else if tok != nil && tok.HasJWKSOnly {
			d.Reasons = append(d.Reasons, fmt.Sprintf("Services may verify with the public keys alone (%.1f µs per token measured here, with no call to Gatehouse); a revoked token then lives until its exp, at most the access-token lifetime.", tok.JWKSOnlyMicros))
		} else {
			d.Reasons = append(d.Reasons, "Services may verify with the public keys alone, with no call to Gatehouse; a revoked token then lives until its exp, at most the access-token lifetime.")
		}
		if a["browser"] {
			d.Reasons = append(d.Reasons, "For pages on Gatehouse's own site, hybrid mode keeps the token in an HttpOnly cookie, out of the reach of scripts.")
		}
		if tok != nil && sess != nil {
			d.Reasons = append(d.Reasons, fmt.Sprintf("The price on the wire: %d bytes of credential header per request, against %d for a session cookie (measured).", tok.CredentialBytes, sess.CredentialBytes))
		}
	case a["services"] && !a["instant"]:
		d = decision{Mode: modeHybrid, Title: "Hybrid mode: the JWT in an HttpOnly cookie"}
		r := "Several services can check the JWT from the cookie themselves, with the public keys, without a shared session store"
		if hyb != nil && hyb.HasJWKSOnly {
			r += fmt.Sprintf(" (%.1f µs per token measured here)", hyb.JWKSOnlyMicros)
		}
		d.Reasons = append(d.Reasons, r+".")
		d.Reasons = append(d.Reasons, "The browser keeps the token in an HttpOnly cookie that scripts cannot read, and every unsafe request carries a CSRF token.")
		r = "The price: a logout reaches a JWKS-only service only when the token expires; Gatehouse's own verifiers refuse it at once."
		if left := jwksLeft(o); left != "" {
			r += " In the lab, a JWKS-only verifier accepted a token for " + left + " after the forced logout."
		}
		d.Reasons = append(d.Reasons, r)
	default:
		d = decision{Mode: modeSession, Title: "Session mode: a session cookie"}
		r := "Logout and forced logout take effect at once: the server deletes the session."
		if o != nil {
			for _, p := range o.Panes {
				if p.Mode == modeSession && !p.GatehouseAccepted {
					r += " In the lab, the session pane was refused right after the forced logout."
				}
			}
		}
		d.Reasons = append(d.Reasons, r)
		if sess != nil && tok != nil {
			d.Reasons = append(d.Reasons, fmt.Sprintf("The cookie is the smallest credential: %d bytes of header per request, against %d for a Bearer JWT (measured).", sess.CredentialBytes, tok.CredentialBytes))
		}
		if sess != nil {
			d.Reasons = append(d.Reasons, fmt.Sprintf("Each request costs a session lookup: %.1f µs per verification measured here.", sess.GatehouseMicros))
		}
		if a["services"] {
			d.Reasons = append(d.Reasons, "With several servers, they share the session store (Redis), or ask Gatehouse through forward-auth (GET /v1/verify) from the gateway.")
		}
	}
	return d
}

// maxBenchRows bounds the bench results shown.
const maxBenchRows = 300

// flattenJSON lists the scalar values of v's JSON form by path.
func flattenJSON(v any, limit int) ([]benchRow, bool) {
	b, err := json.Marshal(v)
	if err != nil {
		return []benchRow{{Key: "(error)", Value: "the bench results could not be encoded"}}, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return []benchRow{{Key: "(error)", Value: "the bench results could not be decoded"}}, false
	}
	var rows []benchRow
	cut := false
	var walk func(prefix string, x any)
	walk = func(prefix string, x any) {
		if len(rows) >= limit {
			cut = true
			return
		}
		switch t := x.(type) {
		case map[string]any:
			for _, k := range sortedMapKeys(t) {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, t[k])
			}
		case []any:
			for i, e := range t {
				walk(prefix+"["+strconv.Itoa(i)+"]", e)
			}
		case nil:
			rows = append(rows, benchRow{prefix, "null"})
		default:
			rows = append(rows, benchRow{prefix, fmt.Sprint(t)})
		}
	}
	walk("", x)
	return rows, cut
}

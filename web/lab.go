package web

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
)

// Lab limits. The lab keeps its visitors' panes in memory: a bounded number
// of visitors, each forgotten after an hour without a request, each with a
// bounded history.
const (
	labScript    = "lab.js"
	maxVisitors  = 32
	visitorIdle  = time.Hour
	maxRecords   = 40
	maxSeen      = 64
	maxLabBody   = 4 << 10
	measureCalls = 200
)

// The three panes.
const (
	modeSession = "session"
	modeToken   = "token"
	modeHybrid  = "hybrid"
)

var paneModes = []string{modeSession, modeToken, modeHybrid}

// advanceChoices are the amounts of time the lab lets pass.
var advanceChoices = []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute, time.Hour}

// lab serves /lab: per visitor, three clients (one per mode) that run on the
// server and talk to the API in-process.
type lab struct {
	h   *Handler
	cfg LabConfig
	// cop guards the lab's own unsafe requests: they act with the
	// visitor's panes, the admin key and the server's clock.
	cop        *http.CrossOriginProtection
	cookieName string
	secure     bool
	// cookies are the API's cookie names.
	sessionCookie, accessCookie, refreshCookie string
	// wall expires idle visitors: real time, not the lab clock, which
	// visitors push ahead.
	wall clock.Clock

	mu       sync.Mutex
	visitors map[string]*visitor // by SHA-256 of the lab id

	// caught counts secrets found whole in a lab answer by the last-resort
	// filter; the structured masking should leave it at zero.
	caught atomic.Int64
}

func newLab(h *Handler, cfg *LabConfig) (*lab, error) {
	if cfg.Now == nil || cfg.Advance == nil || cfg.JWKSOnly == nil || cfg.Snapshot == nil {
		return nil, errors.New("web: LabConfig needs Now, Advance, JWKSOnly and Snapshot")
	}
	l := &lab{
		h: h, cfg: *cfg, cop: http.NewCrossOriginProtection(),
		cookieName: "__Host-gh_lab", secure: true,
		sessionCookie: "__Host-gh_session", accessCookie: "__Host-gh_access", refreshCookie: "__Secure-gh_refresh",
		wall: clock.System{}, visitors: map[string]*visitor{},
	}
	if h.cfg.Dev {
		l.cookieName, l.secure = "gh_lab", false
		l.sessionCookie, l.accessCookie, l.refreshCookie = "gh_session", "gh_access", "gh_refresh"
	}
	return l, nil
}

func (l *lab) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /lab", l.page(l.labPage))
	mux.HandleFunc("GET /lab/compare", l.page(l.comparePage))
	mux.HandleFunc("POST /lab/compare", l.page(l.compareMeasure))
	mux.HandleFunc("GET /lab/static/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != labScript {
			http.NotFound(w, r)
			return
		}
		l.h.writeStatic(w, r, labScript)
	})
	mux.HandleFunc("GET /lab/api/state", l.api(l.state))
	mux.HandleFunc("GET /lab/api/records/{id}", l.api(l.getRecord))
	mux.HandleFunc("POST /lab/api/setup", l.api(l.setup))
	mux.HandleFunc("POST /lab/api/reset", l.api(l.reset))
	mux.HandleFunc("POST /lab/api/panes/{mode}/{action}", l.api(l.paneAction))
	mux.HandleFunc("POST /lab/api/probe", l.api(l.probe))
	mux.HandleFunc("POST /lab/api/force-logout", l.api(l.forceLogout))
	mux.HandleFunc("POST /lab/api/rotate-keys", l.api(l.rotateKeys))
	mux.HandleFunc("POST /lab/api/advance", l.api(l.advance))
	mux.HandleFunc("POST /lab/api/measure", l.api(l.measure))
}

// visitor is one lab visitor: a user, three panes and a history.
type visitor struct {
	mu       sync.Mutex // held for each request of the visitor
	lastUsed time.Time  // under lab.mu

	user        *labUser
	panes       map[string]*pane
	records     []*record
	nextID      int
	seenIDs     []string // session and family ids seen, for the snapshot
	seenJTIs    []string
	measurement *measurement
	observation *observation
}

// labUser is the account the panes log in as. The password stays in
// memory, for the panes' logins, and is shown only masked.
type labUser struct {
	ID, Username, Password string
	// Demo is true when the lab created the account.
	Demo bool
}

func newVisitor() *visitor {
	v := &visitor{panes: map[string]*pane{}}
	for _, m := range paneModes {
		v.panes[m] = &pane{mode: m}
	}
	return v
}

// clear forgets the visitor's user, panes and history.
func (v *visitor) clear() {
	fresh := newVisitor()
	v.user, v.panes, v.records, v.nextID = nil, fresh.panes, nil, 0
	v.seenIDs, v.seenJTIs, v.measurement, v.observation = nil, nil, nil, nil
}

func (v *visitor) seeID(id string) { v.seenIDs = remember(v.seenIDs, id) }

func (v *visitor) seeJTI(jti string) { v.seenJTIs = remember(v.seenJTIs, jti) }

// remember appends s to a bounded list of distinct values.
func remember(list []string, s string) []string {
	if s == "" {
		return list
	}
	for _, x := range list {
		if x == s {
			return list
		}
	}
	list = append(list, s)
	if len(list) > maxSeen {
		list = list[len(list)-maxSeen:]
	}
	return list
}

// secrets are the full secret values the visitor's state holds: no lab
// answer may contain any of them whole.
func (v *visitor) secrets(adminKey string) []string {
	var out []string
	add := func(s string) {
		if len(s) >= 8 {
			out = append(out, s)
		}
	}
	add(adminKey)
	if v.user != nil {
		add(v.user.Password)
	}
	for _, p := range v.panes {
		add(p.csrf)
		add(p.access)
		add(p.refresh)
		for _, c := range p.jar.all() {
			add(c.value)
		}
	}
	return out
}

func hashID(id string) string {
	s := sha256.Sum256([]byte(id))
	return hex.EncodeToString(s[:])
}

// visitorFor returns the visitor of r's lab cookie, creating one (and
// setting the cookie) when there is none or it has been forgotten.
func (l *lab) visitorFor(w http.ResponseWriter, r *http.Request) *visitor {
	now := l.wall.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, err := r.Cookie(l.cookieName); err == nil {
		if v := l.visitors[hashID(c.Value)]; v != nil && now.Sub(v.lastUsed) < visitorIdle {
			v.lastUsed = now
			return v
		}
	}
	// Forget idle visitors; at the bound, the least recently seen one.
	var oldest string
	for k, v := range l.visitors {
		if now.Sub(v.lastUsed) >= visitorIdle {
			delete(l.visitors, k)
			continue
		}
		if oldest == "" || v.lastUsed.Before(l.visitors[oldest].lastUsed) {
			oldest = k
		}
	}
	if len(l.visitors) >= maxVisitors {
		delete(l.visitors, oldest)
	}
	id := rand.Text()
	v := newVisitor()
	v.lastUsed = now
	l.visitors[hashID(id)] = v
	http.SetCookie(w, &http.Cookie{Name: l.cookieName, Value: id, Path: "/", Secure: l.secure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return v
}

// page wraps a server-rendered lab page.
func (l *lab) page(fn func(w http.ResponseWriter, r *http.Request, v *visitor)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := l.cop.Check(r); err != nil {
				l.h.renderError(w, http.StatusForbidden, "Cross-origin request refused.")
				return
			}
		}
		v := l.visitorFor(w, r)
		v.mu.Lock()
		defer v.mu.Unlock()
		fn(w, r, v)
	}
}

// labAnswer is what a lab API handler returns: a status and a body to
// encode as JSON.
type labAnswer struct {
	status int
	body   any
}

func labErr(status int, msg string) labAnswer {
	return labAnswer{status, map[string]string{"error": msg}}
}

// api wraps a lab API endpoint: security headers, the cross-origin check
// and a JSON body on unsafe requests, the visitor's lock, and the
// last-resort filter on the answer.
func (l *lab) api(fn func(r *http.Request, v *visitor, body []byte) labAnswer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		var body []byte
		if r.Method == http.MethodPost {
			if err := l.cop.Check(r); err != nil {
				writeLabJSON(w, http.StatusForbidden, map[string]string{"error": "Cross-origin request refused."})
				return
			}
			if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
				writeLabJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "Send application/json."})
				return
			}
			b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLabBody))
			if err != nil {
				writeLabJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "The body is too large."})
				return
			}
			body = b
		}
		v := l.visitorFor(w, r)
		v.mu.Lock()
		ans := fn(r, v, body)
		out, err := json.Marshal(ans.body)
		if err == nil {
			out = l.scrub(out, v.secrets(l.cfg.AdminKey))
		}
		v.mu.Unlock()
		if err != nil {
			l.h.log.ErrorContext(r.Context(), "encode lab answer", "route", r.Pattern, "error", err)
			writeLabJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ans.status)
		_, _ = w.Write(out)
	}
}

func writeLabJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// scrub is the last resort: it masks any secret of the visitor found whole
// in out. The records are masked as they are built; this only guards
// against a secret in a place nobody thought of (a new API field).
func (l *lab) scrub(out []byte, secrets []string) []byte {
	for _, s := range secrets {
		forms := [][]byte{[]byte(s)}
		if enc, err := json.Marshal(s); err == nil {
			forms = append(forms, enc[1:len(enc)-1])
		}
		for _, f := range forms {
			if bytes.Contains(out, f) {
				l.caught.Add(1)
				m, _ := json.Marshal(mask(s))
				out = bytes.ReplaceAll(out, f, m[1:len(m)-1])
			}
		}
	}
	return out
}

// decodeLabBody decodes an optional JSON object body into v.
func decodeLabBody(body []byte, v any) bool {
	if len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v) == nil
}

func (l *lab) state(r *http.Request, v *visitor, _ []byte) labAnswer {
	return labAnswer{http.StatusOK, l.stateView(r, v)}
}

func (l *lab) getRecord(r *http.Request, v *visitor, _ []byte) labAnswer {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		return labErr(http.StatusNotFound, "No such record.")
	}
	for _, rec := range v.records {
		if rec.ID == id {
			return labAnswer{http.StatusOK, rec}
		}
	}
	return labErr(http.StatusNotFound, "No such record (the lab keeps the last 40).")
}

func (l *lab) reset(r *http.Request, v *visitor, _ []byte) labAnswer {
	v.clear()
	return labAnswer{http.StatusOK, map[string]any{"state": l.stateView(r, v)}}
}

type labPage struct {
	Admin   bool
	Signup  bool
	Advance []advanceChoice
	Panes   []paneInfo
}

// paneInfo introduces a pane on the lab page.
type paneInfo struct {
	Mode, Title, What string
	Refresh           bool
}

var paneInfos = []paneInfo{
	{modeSession, "Session mode", "The state lives on the server. The browser holds a random secret in an HttpOnly cookie; the server keeps the session.", false},
	{modeToken, "Token mode", "The state lives on the client. An app holds a signed JWT and a refresh token, and sends the JWT as a Bearer header.", true},
	{modeHybrid, "Hybrid mode", "The JWT travels in an HttpOnly cookie, with a CSRF token: a browser's safety, a token's statelessness.", true},
}

type advanceChoice struct {
	Seconds int
	Label   string
}

func advanceLabel(d time.Duration) string {
	if d >= time.Hour {
		return strconv.Itoa(int(d/time.Hour)) + " h"
	}
	return strconv.Itoa(int(d/time.Minute)) + " min"
}

func (l *lab) labPage(w http.ResponseWriter, r *http.Request, v *visitor) {
	p := labPage{Admin: l.cfg.AdminKey != "", Signup: l.h.cfg.Signup, Panes: paneInfos}
	for _, d := range advanceChoices {
		p.Advance = append(p.Advance, advanceChoice{int(d / time.Second), advanceLabel(d)})
	}
	w.Header().Set("Content-Security-Policy", labContentSecurityPolicy)
	l.h.render(w, http.StatusOK, "lab", pageData{Title: "Lab", Script: "/lab/static/" + labScript, Page: p})
}

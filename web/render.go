package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"login", "signup", "account", "password", "error", "lab", "compare"}

var templateFuncs = template.FuncMap{
	"when":   formatTime,
	"device": deviceName,
	"join":   strings.Join,
}

func parsePages() (map[string]*template.Template, error) {
	out := make(map[string]*template.Template, len(pageNames))
	for _, n := range pageNames {
		t, err := template.New("layout.html").Funcs(templateFuncs).ParseFS(assets, "templates/layout.html", "templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("web: parse template %s: %w", n, err)
		}
		out[n] = t
	}
	return out, nil
}

// pageData is what every page template receives.
type pageData struct {
	Title string
	// Script is the path of the page's script, "" for none.
	Script string
	// Signup and Lab show their links; LoggedIn shows the logout button.
	Signup, Lab, LoggedIn bool
	// CSRF is the session's CSRF token, for the forms of a logged-in page.
	CSRF string
	// Notice and Error are messages at the top of the page.
	Notice, Error string
	// Page is the page's own data.
	Page any
}

// render writes the page name with status.
func (h *Handler) render(w http.ResponseWriter, status int, name string, d pageData) {
	d.Signup = h.cfg.Signup
	d.Lab = h.lab != nil
	var buf bytes.Buffer
	if err := h.pages[name].Execute(&buf, d); err != nil {
		h.log.Error("render page", "page", name, "error", err)
		http.Error(w, "The page could not be rendered.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows a page with one message and a way back.
func (h *Handler) renderError(w http.ResponseWriter, status int, msg string) {
	h.render(w, status, "error", pageData{Title: http.StatusText(status), Error: msg})
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// deviceName is a short, readable name for a User-Agent: browser and
// system where they are recognised, else the start of the string.
func deviceName(ua string) string {
	if ua == "" {
		return "Unknown device"
	}
	browser := ""
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chromium/", "Chromium"},
		{"Chrome/", "Chrome"}, {"Safari/", "Safari"}, {"curl/", "curl"}, {"Go-http-client", "Go client"},
		{"gatehouse-lab", "Gatehouse lab"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	system := ""
	for _, s := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, s.token) {
			system = s.name
			break
		}
	}
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case system != "":
		return system
	}
	if r := []rune(ua); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return ua
}

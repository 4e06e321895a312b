package web

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// jar is the cookie store of one lab pane: what a browser would keep of the
// cookies the API sets, by name and path, with their expiry on the lab
// clock. A cookie is sent to a path under its own, as a browser does.
type jar struct {
	cookies []jarCookie
}

type jarCookie struct {
	name, value, path string
	expires           time.Time // zero: until the pane logs out
}

// update applies the Set-Cookie answers of a response received at now.
func (j *jar) update(set []*http.Cookie, now time.Time) {
	for _, c := range set {
		p := c.Path
		if p == "" || p[0] != '/' {
			p = "/"
		}
		j.remove(c.Name, p)
		var exp time.Time
		switch {
		case c.MaxAge < 0:
			continue
		case c.MaxAge > 0:
			exp = now.Add(time.Duration(c.MaxAge) * time.Second)
		case !c.Expires.IsZero():
			if !now.Before(c.Expires) {
				continue
			}
			exp = c.Expires
		}
		j.cookies = append(j.cookies, jarCookie{name: c.Name, value: c.Value, path: p, expires: exp})
	}
}

func (j *jar) remove(name, path string) {
	out := j.cookies[:0]
	for _, c := range j.cookies {
		if c.name != name || c.path != path {
			out = append(out, c)
		}
	}
	j.cookies = out
}

// forPath returns the live cookies a browser would send to path at now,
// the longer paths first (RFC 6265 §5.4).
func (j *jar) forPath(path string, now time.Time) []*http.Cookie {
	var live []jarCookie
	for _, c := range j.cookies {
		if (c.expires.IsZero() || now.Before(c.expires)) && pathMatch(path, c.path) {
			live = append(live, c)
		}
	}
	slices.SortStableFunc(live, func(a, b jarCookie) int { return len(b.path) - len(a.path) })
	out := make([]*http.Cookie, len(live))
	for i, c := range live {
		out[i] = &http.Cookie{Name: c.name, Value: c.value}
	}
	return out
}

// value returns the live cookie name (any path) at now.
func (j *jar) value(name string, now time.Time) (string, bool) {
	for _, c := range j.cookies {
		if c.name == name && (c.expires.IsZero() || now.Before(c.expires)) {
			return c.value, true
		}
	}
	return "", false
}

// all returns every cookie held, live or not, for display.
func (j *jar) all() []jarCookie { return j.cookies }

// pathMatch is the path-match rule of RFC 6265 §5.1.4.
func pathMatch(reqPath, cookiePath string) bool {
	if reqPath == cookiePath {
		return true
	}
	if !strings.HasPrefix(reqPath, cookiePath) {
		return false
	}
	return strings.HasSuffix(cookiePath, "/") || reqPath[len(cookiePath)] == '/'
}

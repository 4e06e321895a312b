package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Bounds of single exchanges.
const (
	requestTimeout = 10 * time.Second
	dialTimeout    = 5 * time.Second
	// maxBody bounds what is read of a response body.
	maxBody = 1 << 20
	// userAgent is sent on every request.
	userAgent = "gatehouse-bench/1"
)

// byteCounter adds up the bytes read and written on connections.
type byteCounter struct {
	read, written atomic.Int64
}

func (c *byteCounter) reset() {
	c.read.Store(0)
	c.written.Store(0)
}

// countingConn counts what goes through a connection.
type countingConn struct {
	net.Conn
	c *byteCounter
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.c.read.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.c.written.Add(int64(n))
	return n, err
}

// newClient returns a keep-alive HTTP/1.1 client with up to conns
// connections, counting their bytes in counter when it is not nil. It
// ignores the environment's proxy settings and follows no redirect: every
// request goes to the URL it names, and nowhere else.
func newClient(conns int, counter *byteCounter) *http.Client {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil || counter == nil {
				return c, err
			}
			return &countingConn{Conn: c, c: counter}, nil
		},
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       conns,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   dialTimeout,
		ResponseHeaderTimeout: requestTimeout,
		// No Accept-Encoding: the request is what a gateway sends.
		DisableCompression: true,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// closeClient closes the idle connections of a client made by newClient.
func closeClient(c *http.Client) { c.CloseIdleConnections() }

// reply is a response read in full.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// cookie returns the cookie set by the response under a name ending in
// suffix with a non-empty value ("gh_session" finds "__Host-gh_session" as
// well), or nil.
func (r reply) cookie(suffix string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if strings.HasSuffix(c.Name, suffix) && c.Value != "" {
			return c
		}
	}
	return nil
}

// problem describes an error response for a message: its status and the
// problem's or the OAuth error's code and detail, never the whole body
// (which could echo something the bench sent).
func (r reply) problem() string {
	var p struct {
		Type        string `json:"type"`
		Detail      string `json:"detail"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	s := fmt.Sprintf("status %d", r.status)
	if json.Unmarshal(r.body, &p) != nil {
		return s
	}
	if i := strings.LastIndexByte(p.Type, '/'); i >= 0 {
		p.Type = p.Type[i+1:]
	}
	for _, part := range []string{p.Type, p.Error, p.Detail, p.Description} {
		if part != "" {
			s += ": " + clip(part, 200)
		}
	}
	return s
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// exchange is one request of the setup or revocation steps.
type exchange struct {
	method, path string
	json         any        // body encoded as JSON, when not nil
	form         url.Values // body encoded as a form, when not nil
	header       http.Header
}

// do sends e to the target and reads the whole answer.
func (b *bencher) do(ctx context.Context, c *http.Client, e exchange) (reply, error) {
	var body io.Reader
	contentType := ""
	switch {
	case e.json != nil:
		j, err := json.Marshal(e.json)
		if err != nil {
			return reply{}, fmt.Errorf("%s %s: encode body: %w", e.method, e.path, err)
		}
		body, contentType = strings.NewReader(string(j)), "application/json"
	case e.form != nil:
		body, contentType = strings.NewReader(e.form.Encode()), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(ctx, e.method, b.base+e.path, body)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", e.method, e.path, err)
	}
	for k, v := range e.header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", e.method, e.path, stripURL(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: read answer: %w", e.method, e.path, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// stripURL drops the *url.Error wrapper, whose message repeats the method
// and URL the caller already names.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// credential is one logged-in credential of the bench user.
type credential struct {
	// mode is the X-Gatehouse-Auth-Mode it authenticates as.
	mode string
	// header and value carry it: "Cookie", "gh_session=…" or
	// "Authorization", "Bearer …".
	header, value string
	// csrf is the CSRF token bound to it (session and hybrid modes).
	csrf string
	// access is the raw access token (token and hybrid modes).
	access string
	// refresh is the refresh token (token and hybrid modes).
	refresh string
	// userID is the user's id, when the login answer tells it.
	userID string
}

// wireBytes is the size of the header line that carries the credential in
// an HTTP/1.1 request.
func (c credential) wireBytes() int {
	return len(c.header) + len(": ") + len(c.value) + len("\r\n")
}

// apply puts the credential on req.
func (c credential) apply(h http.Header) { h.Set(c.header, c.value) }

package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/revocation"
)

// The revocation feed (docs/feed.md): GET /v1/revocations?cursor=&wait=,
// a long poll behind the service key, for verifiers that follow the
// revocations of this server without sharing its store.
const (
	// feedDefaultWait is how long a poll waits for news when wait is absent.
	feedDefaultWait = 25 * time.Second
	// feedMaxWait bounds the wait parameter.
	feedMaxWait = 60 * time.Second
	// feedBatch bounds the entries of one incremental answer; a snapshot
	// is sent whole.
	feedBatch = 1000
	// feedWriteGrace is added to a poll's wait for its write deadline.
	feedWriteGrace = 10 * time.Second
	// feedShutdownCheck is how often a waiting poll looks whether the server
	// is shutting down, so that it answers before the server stops.
	feedShutdownCheck = time.Second
)

// feedEntry is one entry of the feed's answer.
type feedEntry struct {
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Before string `json:"before,omitempty"`
	Until  string `json:"until"`
}

// feedBody is the feed's answer.
type feedBody struct {
	Cursor  string      `json:"cursor"`
	Reset   bool        `json:"reset"`
	Entries []feedEntry `json:"entries"`
}

// feedKinds are the wire names of the entry kinds.
var feedKinds = map[revocation.Kind]string{
	revocation.KindToken: "jti",
	revocation.KindSID:   "sid",
	revocation.KindUser:  "user",
}

// revocationFeed is GET /v1/revocations: the changes of the revocation index
// after cursor, waiting up to wait for one when there is none yet.
func (s *Server) revocationFeed(w http.ResponseWriter, r *http.Request) error {
	if !s.isServiceKey(r) {
		return errUnauthenticated()
	}
	cursor, wait, err := feedParams(r.URL.RawQuery)
	if err != nil {
		return err
	}
	idx := s.cfg.Tokens.Revocations
	ch, err := idx.Since(cursor, feedBatch)
	if errors.Is(err, revocation.ErrCursor) {
		return badRequest(`Parameter "cursor" is not a cursor of this feed.`)
	}
	if err != nil {
		return err
	}
	if !ch.Reset && ch.Cursor == cursor && wait > 0 {
		s.awaitRevocations(w, r, cursor, wait)
		if ch, err = idx.Since(cursor, feedBatch); err != nil {
			return err
		}
	}
	body := feedBody{Cursor: ch.Cursor, Reset: ch.Reset, Entries: make([]feedEntry, 0, len(ch.Entries))}
	for _, e := range ch.Entries {
		fe := feedEntry{Kind: feedKinds[e.Kind], ID: e.ID, Until: e.Until.UTC().Format(time.RFC3339Nano)}
		if e.Kind == revocation.KindUser {
			// Full precision: the revoke-all rule rounds before up to the
			// second, so truncating it would accept a token it refuses.
			fe.Before = e.Before.UTC().Format(time.RFC3339Nano)
		}
		body.Entries = append(body.Entries, fe)
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// awaitRevocations waits until the index has news for cursor, wait has
// passed, the client has gone, or the server is shutting down. A poll may
// wait longer than the request timeout and the server's write timeout, so
// its write deadline is pushed back and its wait is not bound to the
// request's deadline; it is still bound by wait.
func (s *Server) awaitRevocations(w http.ResponseWriter, r *http.Request, cursor string, wait time.Duration) {
	// Deadlines are wall-clock times for the connection, not domain time.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + feedWriteGrace))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), wait)
	defer cancel()
	stop := context.AfterFunc(r.Context(), func() {
		// The client went away (not the request timeout, which the wait
		// may outlast).
		if errors.Is(r.Context().Err(), context.Canceled) {
			cancel()
		}
	})
	defer stop()
	done := make(chan struct{})
	go func() {
		_ = s.cfg.Tokens.Revocations.Wait(ctx, cursor)
		close(done)
	}()
	tick := time.NewTicker(feedShutdownCheck)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			if s.shutting.Load() {
				cancel()
				<-done
				return
			}
		}
	}
}

// feedParams reads the query: cursor (optional) and wait (optional, seconds
// from 0 to 60 with up to three decimals), each at most once, nothing else.
func feedParams(rawQuery string) (cursor string, wait time.Duration, err error) {
	q, perr := url.ParseQuery(rawQuery)
	if perr != nil {
		return "", 0, badRequest("The query string is malformed.")
	}
	wait = feedDefaultWait
	for name, vals := range q {
		if len(vals) != 1 {
			return "", 0, badRequest("Parameter %q appears more than once.", name)
		}
		switch name {
		case "cursor":
			cursor = vals[0]
		case "wait":
			d, ok := parseWait(vals[0])
			if !ok {
				return "", 0, badRequest(`Parameter "wait" must be a number of seconds from 0 to 60.`)
			}
			wait = d
		default:
			return "", 0, badRequest("Unknown parameter %q.", name)
		}
	}
	return cursor, wait, nil
}

// parseWait reads "S", "S.f", "S.ff" or "S.fff" seconds (S of one or two
// digits), at most feedMaxWait.
func parseWait(v string) (time.Duration, bool) {
	whole, frac, hasFrac := strings.Cut(v, ".")
	if len(whole) < 1 || len(whole) > 2 || hasFrac && (len(frac) < 1 || len(frac) > 3) {
		return 0, false
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, false
			}
		}
	}
	sec, _ := strconv.Atoi(whole)
	ms := 0
	if hasFrac {
		ms, _ = strconv.Atoi(frac + strings.Repeat("0", 3-len(frac)))
	}
	d := time.Duration(sec)*time.Second + time.Duration(ms)*time.Millisecond
	if d > feedMaxWait {
		return 0, false
	}
	return d, true
}

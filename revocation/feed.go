package revocation

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strconv"
)

// FeedSize is how many changes an Index's change log keeps: a follower whose
// cursor is older than that is sent a full snapshot instead.
const FeedSize = 10_000

// ErrCursor is returned by Since and Wait for a cursor that is not of the
// form they hand out. A well-formed cursor of another process (another
// epoch) or one too old for the log is not an error: it gets a reset.
var ErrCursor = errors.New("revocation: malformed cursor")

// Changes is what Since returns: entries to apply, in order, and the cursor
// to ask for the next ones with.
type Changes struct {
	// Entries are the changes after the cursor or, when Reset is set, every
	// live entry of the Index. Each is the entry's whole state after the
	// change, to be merged the way Apply merges.
	Entries []Entry
	// Cursor names the position after Entries, for the next Since or Wait.
	// It is opaque.
	Cursor string
	// Reset is set when Entries is a full snapshot that replaces what the
	// follower holds: the cursor was empty, of another process, or older
	// than the log.
	Reset bool
}

// feed is the change log of an Index: the last FeedSize changes, each with
// a sequence number, in a ring, under the Index's lock. Every change of the
// memory index (local writes and Apply alike) is appended by merge.
//
// A cursor is "<epoch>.<seq>": the epoch is a random id chosen when the
// Index is created, so that a cursor of another process, or of this one
// before a restart, is recognised; seq is the number of the last change the
// cursor's holder has seen (0: none).
type feed struct {
	epoch  string
	seq    uint64        // number of the last change appended; 0 when none
	ring   []Entry       // change n is ring[(n-1)%FeedSize]; grows up to FeedSize
	notify chan struct{} // closed and replaced at each append
}

// epochLen is the length of an epoch: 128 random bits in unpadded base32.
const epochLen = 26

func newFeed() feed {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return feed{epoch: base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]), notify: make(chan struct{})}
}

// append records a change and wakes the waiters. The caller holds the
// Index's write lock.
func (f *feed) append(e Entry) {
	f.seq++
	if len(f.ring) < FeedSize {
		f.ring = append(f.ring, e)
	} else {
		f.ring[(f.seq-1)%FeedSize] = e
	}
	close(f.notify)
	f.notify = make(chan struct{})
}

// cursor returns the cursor after change seq.
func (f *feed) cursor(seq uint64) string {
	return f.epoch + "." + strconv.FormatUint(seq, 10)
}

// incremental reports whether the changes after a parsed cursor are all in
// the log; when they are not, a snapshot is due.
func (f *feed) incremental(epoch string, seq uint64) bool {
	return epoch == f.epoch && seq <= f.seq && f.seq-seq <= uint64(len(f.ring))
}

// maxCursorLen bounds the cursors parseCursor reads.
const maxCursorLen = 64

// parseCursor splits a cursor. The empty cursor is valid: it asks for a
// snapshot. An epoch is 26 characters of the base32 alphabet; a seq is a decimal uint64 without a sign or leading zeros.
func parseCursor(c string) (epoch string, seq uint64, err error) {
	if c == "" {
		return "", 0, nil
	}
	if len(c) > maxCursorLen {
		return "", 0, ErrCursor
	}
	if len(c) < epochLen+2 || c[epochLen] != '.' {
		return "", 0, ErrCursor
	}
	epoch, num := c[:epochLen], c[epochLen+1:]
	for i := 0; i < len(epoch); i++ {
		if b := epoch[i]; !('A' <= b && b <= 'Z' || '2' <= b && b <= '7') {
			return "", 0, ErrCursor
		}
	}
	if num[0] == '0' && len(num) > 1 {
		return "", 0, ErrCursor
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return "", 0, ErrCursor
		}
	}
	seq, err = strconv.ParseUint(num, 10, 64)
	if err != nil {
		return "", 0, ErrCursor
	}
	return epoch, seq, nil
}

// Since returns the changes after cursor, at most limit of them (limit <= 0:
// no bound), or a full snapshot of the live entries (Reset) when the cursor
// is empty, of another epoch, or older than the log; a snapshot is never cut
// by limit. Entries whose Until has passed are left out. A follower applies
// the entries (replacing its state first on Reset) and asks again with the
// returned cursor; it then holds every change the Index has seen, whether
// written here or applied from elsewhere.
func (x *Index) Since(cursor string, limit int) (Changes, error) {
	epoch, seq, err := parseCursor(cursor)
	if err != nil {
		return Changes{}, fmt.Errorf("since %q: %w", cursor, err)
	}
	now := x.clock.Now()
	x.mu.RLock()
	defer x.mu.RUnlock()
	f := &x.feed
	if cursor == "" || !f.incremental(epoch, seq) {
		out := make([]Entry, 0, len(x.tokens)+len(x.sids)+len(x.users))
		for id, until := range x.tokens {
			if now.Before(until) {
				out = append(out, Entry{Kind: KindToken, ID: id, Until: until})
			}
		}
		for id, until := range x.sids {
			if now.Before(until) {
				out = append(out, Entry{Kind: KindSID, ID: id, Until: until})
			}
		}
		for id, u := range x.users {
			if now.Before(u.until) {
				out = append(out, Entry{Kind: KindUser, ID: id, Before: u.before, Until: u.until})
			}
		}
		return Changes{Entries: out, Cursor: f.cursor(f.seq), Reset: true}, nil
	}
	n := f.seq - seq
	if limit > 0 && n > uint64(limit) {
		n = uint64(limit)
	}
	out := make([]Entry, 0, n)
	for s := seq + 1; s <= seq+n; s++ {
		if e := f.ring[(s-1)%FeedSize]; now.Before(e.Until) {
			out = append(out, e)
		}
	}
	return Changes{Entries: out, Cursor: f.cursor(seq + n)}, nil
}

// Wait returns nil as soon as Since(cursor) has something to say: a change
// after the cursor, or a reset. It returns ctx's error when ctx ends first,
// and ErrCursor for a malformed cursor.
func (x *Index) Wait(ctx context.Context, cursor string) error {
	epoch, seq, err := parseCursor(cursor)
	if err != nil {
		return fmt.Errorf("wait %q: %w", cursor, err)
	}
	for {
		x.mu.RLock()
		f := &x.feed
		ready := cursor == "" || !f.incremental(epoch, seq) || f.seq > seq
		ch := f.notify
		x.mu.RUnlock()
		if ready {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

package revocation_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/store/memory"
)

func since(t testing.TB, x *revocation.Index, cursor string, limit int) revocation.Changes {
	t.Helper()
	ch, err := x.Since(cursor, limit)
	must(t, "Since", err)
	return ch
}

// sortedEntries returns es in a stable order, for comparing snapshots.
func sortedEntries(es []revocation.Entry) string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("%s/%s/%s/%s", e.Kind, e.ID, e.Before.UTC().Format(time.RFC3339Nano), e.Until.UTC().Format(time.RFC3339Nano))
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func TestFeedSnapshotThenChanges(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(noon)
	s := memory.NewRevocations(c)
	exp := noon.Add(10 * time.Minute)
	until := exp.Add(revocation.Retention)
	must(t, "preload", s.DenyToken(ctx, "stored-jti", until))
	x := newIndex(t, s, c)

	first := since(t, x, "", 0)
	if !first.Reset || first.Cursor == "" {
		t.Fatalf("empty cursor: reset %v cursor %q", first.Reset, first.Cursor)
	}
	if want := []revocation.Entry{{Kind: revocation.KindToken, ID: "stored-jti", Until: until}}; sortedEntries(first.Entries) != sortedEntries(want) {
		t.Fatalf("snapshot %v, want %v", first.Entries, want)
	}
	if again := since(t, x, first.Cursor, 0); again.Reset || len(again.Entries) != 0 || again.Cursor != first.Cursor {
		t.Fatalf("nothing new: %+v", again)
	}

	must(t, "DenyToken", x.DenyToken(ctx, "jti", exp))
	must(t, "RevokeSID", x.RevokeSID(ctx, "sid", exp))
	must(t, "RevokeUser", x.RevokeUser(ctx, "user", noon, exp))
	must(t, "Apply", x.Apply(revocation.Entry{Kind: revocation.KindToken, ID: "from-elsewhere", Until: until}))
	// Writes that change nothing are not changes.
	must(t, "DenyToken again", x.DenyToken(ctx, "jti", exp.Add(-time.Minute)))
	must(t, "Apply again", x.Apply(revocation.Entry{Kind: revocation.KindToken, ID: "from-elsewhere", Until: until}))
	// A user entry moves by its later time; the change carries the merged
	// state, the later before with the later until.
	must(t, "RevokeUser earlier, longer", x.RevokeUser(ctx, "user", noon.Add(-time.Hour), exp.Add(time.Minute)))

	got := since(t, x, first.Cursor, 0)
	want := []revocation.Entry{
		{Kind: revocation.KindToken, ID: "jti", Until: until},
		{Kind: revocation.KindSID, ID: "sid", Until: until},
		{Kind: revocation.KindUser, ID: "user", Before: noon, Until: until},
		{Kind: revocation.KindToken, ID: "from-elsewhere", Until: until},
		{Kind: revocation.KindUser, ID: "user", Before: noon, Until: until.Add(time.Minute)},
	}
	if got.Reset || fmt.Sprint(got.Entries) != fmt.Sprint(want) {
		t.Fatalf("changes (reset %v):\n%v\nwant\n%v", got.Reset, got.Entries, want)
	}
	if got.Cursor == first.Cursor {
		t.Fatal("the cursor did not move")
	}
	if again := since(t, x, got.Cursor, 0); again.Reset || len(again.Entries) != 0 || again.Cursor != got.Cursor {
		t.Fatalf("after the changes: %+v", again)
	}
	// The snapshot holds each entry once, in its latest state.
	snap := since(t, x, "", 0)
	wantSnap := []revocation.Entry{
		{Kind: revocation.KindToken, ID: "stored-jti", Until: until},
		want[0], want[1], want[3], want[4],
	}
	if !snap.Reset || snap.Cursor != got.Cursor || sortedEntries(snap.Entries) != sortedEntries(wantSnap) {
		t.Fatalf("snapshot %+v, want %v at %s", snap, wantSnap, got.Cursor)
	}
}

func TestFeedLimit(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(noon)
	x := newIndex(t, memory.NewRevocations(c), c)
	cur := since(t, x, "", 0).Cursor
	for i := range 5 {
		must(t, "DenyToken", x.DenyToken(ctx, fmt.Sprint("jti-", i), noon.Add(time.Hour)))
	}
	var ids []string
	for _, wantN := range []int{2, 2, 1, 0} {
		ch := since(t, x, cur, 2)
		if ch.Reset || len(ch.Entries) != wantN {
			t.Fatalf("batch of %d entries (reset %v), want %d", len(ch.Entries), ch.Reset, wantN)
		}
		for _, e := range ch.Entries {
			ids = append(ids, e.ID)
		}
		cur = ch.Cursor
	}
	if fmt.Sprint(ids) != "[jti-0 jti-1 jti-2 jti-3 jti-4]" {
		t.Fatalf("paged changes %v", ids)
	}
}

func TestFeedReset(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(noon)
	x := newIndex(t, memory.NewRevocations(c), c)
	other := newIndex(t, memory.NewRevocations(c), c)
	must(t, "DenyToken", x.DenyToken(ctx, "jti", noon.Add(time.Hour)))
	start := since(t, x, "", 0).Cursor
	epoch, _, _ := strings.Cut(start, ".")
	must(t, "RevokeSID", x.RevokeSID(ctx, "sid", noon.Add(time.Hour)))
	fresh := since(t, x, start, 0).Cursor

	// A cursor written FeedSize changes ago is the oldest still served.
	y := newIndex(t, memory.NewRevocations(c), c)
	oldest := since(t, y, "", 0).Cursor
	for i := range revocation.FeedSize {
		must(t, "DenyToken", y.DenyToken(ctx, fmt.Sprint("y-", i), noon.Add(time.Hour)))
	}
	if ch := since(t, y, oldest, 0); ch.Reset || len(ch.Entries) != revocation.FeedSize {
		t.Fatalf("a cursor FeedSize changes old: reset %v, %d entries", ch.Reset, len(ch.Entries))
	}
	must(t, "DenyToken", y.DenyToken(ctx, "one-more", noon.Add(time.Hour)))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	tests := []struct {
		name   string
		x      *revocation.Index
		cursor string
		reset  bool
	}{
		{"empty cursor", x, "", true},
		{"cursor of another index", x, since(t, other, "", 0).Cursor, true},
		{"well-formed foreign epoch", x, strings.Repeat("A", 26) + ".1", true},
		{"sequence ahead of the log", x, epoch + ".99", true},
		{"older than the log", y, oldest, true},
		{"current cursor", x, fresh, false},
		{"one change behind", x, start, false},
		{"sequence zero of this epoch", x, epoch + ".0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := since(t, tt.x, tt.cursor, 0)
			if ch.Reset != tt.reset {
				t.Fatalf("reset %v, want %v", ch.Reset, tt.reset)
			}
			if tt.reset {
				if len(ch.Entries) == 0 {
					t.Fatal("a reset without the snapshot")
				}
				if tt.x == x && sortedEntries(ch.Entries) != sortedEntries(since(t, x, "", 0).Entries) {
					t.Fatalf("reset entries %v differ from the snapshot", ch.Entries)
				}
				if tt.x == y && len(ch.Entries) != revocation.FeedSize+1 {
					t.Fatalf("reset of y has %d entries", len(ch.Entries))
				}
			}
			// On a cancelled context, Wait returns nil only when there is
			// news.
			err := tt.x.Wait(cancelled, tt.cursor)
			if tt.cursor == fresh && !errors.Is(err, context.Canceled) || tt.cursor != fresh && err != nil {
				t.Fatalf("Wait: %v", err)
			}
		})
	}
}

func TestFeedMalformedCursor(t *testing.T) {
	c := clock.NewFake(noon)
	x := newIndex(t, memory.NewRevocations(c), c)
	good := since(t, x, "", 0).Cursor
	epoch, _, _ := strings.Cut(good, ".")
	for _, tc := range []struct{ name, cursor string }{
		{"garbage", "x"},
		{"short epoch", "ABC.1"},
		{"no sequence", epoch + "."},
		{"no dot", epoch + "1"},
		{"leading zero", epoch + ".01"},
		{"negative", epoch + ".-1"},
		{"plus sign", epoch + ".+1"},
		{"letter in sequence", epoch + ".1a"},
		{"lower-case epoch", strings.ToLower(epoch) + ".1"},
		{"epoch outside base32", strings.Repeat("1", 26) + ".1"},
		{"overflowing sequence", epoch + ".99999999999999999999"},
		{"too long", epoch + "." + strings.Repeat("1", 40)},
		{"blank", " "},
		{"trailing blank", good + " "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := x.Since(tc.cursor, 0); !errors.Is(err, revocation.ErrCursor) {
				t.Errorf("Since: %v, want ErrCursor", err)
			}
			if err := x.Wait(context.Background(), tc.cursor); !errors.Is(err, revocation.ErrCursor) {
				t.Errorf("Wait: %v, want ErrCursor", err)
			}
		})
	}
}

func TestFeedLeavesOutExpired(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(noon)
	x := newIndex(t, memory.NewRevocations(c), c)
	cur := since(t, x, "", 0).Cursor
	must(t, "DenyToken short", x.DenyToken(ctx, "short", noon.Add(time.Minute)))
	must(t, "DenyToken long", x.DenyToken(ctx, "long", noon.Add(time.Hour)))
	c.Advance(time.Minute + revocation.Retention)
	ch := since(t, x, cur, 0)
	if len(ch.Entries) != 1 || ch.Entries[0].ID != "long" || ch.Cursor == cur {
		t.Fatalf("changes after expiry %+v", ch)
	}
	if snap := since(t, x, "", 0); len(snap.Entries) != 1 || snap.Entries[0].ID != "long" {
		t.Fatalf("snapshot after expiry %+v", snap)
	}
}

func TestFeedWait(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(noon)
	x := newIndex(t, memory.NewRevocations(c), c)
	cur := since(t, x, "", 0).Cursor

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := x.Wait(cancelled, cur); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait without news on a cancelled context: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if err := x.Wait(short, cur); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait without news: %v", err)
	}

	// A change wakes a waiter.
	woken := make(chan error, 1)
	waitCtx, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	go func() { woken <- x.Wait(waitCtx, cur) }()
	must(t, "DenyToken", x.DenyToken(ctx, "jti", noon.Add(time.Hour)))
	bound := time.NewTimer(5 * time.Second)
	defer bound.Stop()
	select {
	case err := <-woken:
		if err != nil {
			t.Fatalf("woken Wait: %v", err)
		}
	case <-bound.C:
		t.Fatal("Wait was not woken by a change within 5 s")
	}
	if err := x.Wait(cancelled, cur); err != nil {
		t.Fatalf("Wait with a change already there: %v", err)
	}
}

// TestFeedFollowers replays the feed of a busy index into followers, which
// must end up refusing exactly what the index refuses.
func TestFeedFollowers(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(noon)
	x := newIndex(t, memory.NewRevocations(c), c)
	const writers, each, followers = 3, 300, 3
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("%d-%d", w, i)
				must(t, "DenyToken", x.DenyToken(ctx, "jti-"+id, noon.Add(time.Hour)))
				must(t, "RevokeUser", x.RevokeUser(ctx, fmt.Sprint("user-", w), noon.Add(time.Duration(i)*time.Second), noon.Add(time.Hour)))
			}
		})
	}
	done := make(chan struct{})
	results := make([]*revocation.Index, followers)
	var fg sync.WaitGroup
	for f := range followers {
		fg.Go(func() {
			mine := newIndex(t, memory.NewRevocations(c), c)
			cursor := ""
			for {
				ch, err := x.Since(cursor, 50)
				if err != nil {
					t.Error(err)
					return
				}
				for _, e := range ch.Entries {
					if err := mine.Apply(e); err != nil {
						t.Error(err)
						return
					}
				}
				cursor = ch.Cursor
				if len(ch.Entries) > 0 {
					continue
				}
				select {
				case <-done:
					// One last round after the writers stopped.
					if ch, _ := x.Since(cursor, 0); len(ch.Entries) == 0 {
						results[f] = mine
						return
					}
				default:
					wctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
					_ = x.Wait(wctx, cursor)
					cancel()
				}
			}
		})
	}
	wg.Wait()
	close(done)
	fg.Wait()
	for f, mine := range results {
		if mine == nil {
			t.Fatalf("follower %d did not finish", f)
		}
		if got, want := sortedEntries(since(t, mine, "", 0).Entries), sortedEntries(since(t, x, "", 0).Entries); got != want {
			t.Fatalf("follower %d holds a different state", f)
		}
		last := noon.Add((each - 1) * time.Second)
		if !revoked(t, mine, "jti-2-299", "", "", noon) || !revoked(t, mine, "", "", "user-1", iat(last)) ||
			revoked(t, mine, "", "", "user-1", iat(last.Add(time.Second))) {
			t.Fatalf("follower %d does not refuse what the index refuses", f)
		}
	}
}

// FuzzFeedCursor: no cursor makes Since or Wait panic, and every cursor
// they accept is one they hand out again.
func FuzzFeedCursor(f *testing.F) {
	c := clock.NewFake(noon)
	x := newIndex(f, memory.NewRevocations(c), c)
	must(f, "DenyToken", x.DenyToken(context.Background(), "jti", noon.Add(time.Hour)))
	good := since(f, x, "", 0).Cursor
	for _, seed := range []string{"", good, good + "0", "A.1", strings.Repeat("A", 26) + ".18446744073709551615", strings.Repeat("A", 26) + ".18446744073709551616", "\x00", "ÿ.1"} {
		f.Add(seed)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	f.Fuzz(func(t *testing.T, cursor string) {
		ch, err := x.Since(cursor, 10)
		werr := x.Wait(cancelled, cursor)
		if err != nil {
			if !errors.Is(err, revocation.ErrCursor) || !errors.Is(werr, revocation.ErrCursor) {
				t.Fatalf("Since: %v, Wait: %v", err, werr)
			}
			return
		}
		if werr != nil && !errors.Is(werr, context.Canceled) {
			t.Fatalf("Wait: %v", werr)
		}
		if _, err := x.Since(ch.Cursor, 10); err != nil {
			t.Fatalf("the returned cursor %q is refused: %v", ch.Cursor, err)
		}
	})
}

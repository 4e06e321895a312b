package revocation_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/store/memory"
)

// noon is a forced-logout time with a fractional second.
var noon = time.Date(2030, time.March, 4, 12, 0, 0, 700_000_000, time.UTC)

func newIndex(t testing.TB, s revocation.Store, c clock.Clock) *revocation.Index {
	t.Helper()
	x, err := revocation.New(context.Background(), s, c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return x
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func revoked(t testing.TB, x *revocation.Index, jti, sid, userID string, iat time.Time) bool {
	t.Helper()
	r, err := x.Revoked(context.Background(), jti, sid, userID, iat)
	must(t, "Revoked", err)
	return r
}

// iat returns the issued-at time of a JWT issued at t: whole seconds.
func iat(t time.Time) time.Time { return time.Unix(t.Unix(), 0) }

func TestRevocationRevoked(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(noon)
	x := newIndex(t, memory.NewRevocations(c), c)
	must(t, "DenyToken", x.DenyToken(ctx, "jti-denied", noon.Add(10*time.Minute)))
	must(t, "RevokeSID", x.RevokeSID(ctx, "sid-ended", noon.Add(10*time.Minute)))
	must(t, "RevokeUser", x.RevokeUser(ctx, "user-forced", noon, noon.Add(10*time.Minute)))
	fresh := iat(noon.Add(time.Minute))

	tests := []struct {
		name             string
		jti, sid, userID string
		issuedAt         time.Time
		want             bool
	}{
		{"clean token", "jti-1", "sid-1", "user-1", fresh, false},
		{"denylisted jti", "jti-denied", "sid-1", "user-1", fresh, true},
		{"revoked sid", "jti-1", "sid-ended", "user-1", fresh, true},
		{"issued a minute before a forced logout", "jti-1", "sid-1", "user-forced", iat(noon.Add(-time.Minute)), true},
		{"issued earlier in the second of a forced logout", "jti-1", "sid-1", "user-forced", iat(noon.Add(-400 * time.Millisecond)), true},
		{"issued later in the second of a forced logout", "jti-1", "sid-1", "user-forced", iat(noon.Add(200 * time.Millisecond)), true},
		{"issued in the next second", "jti-1", "sid-1", "user-forced", iat(noon.Add(300 * time.Millisecond)), false},
		{"issued after a forced logout", "jti-1", "sid-1", "user-forced", fresh, false},
		{"another user's forced logout", "jti-1", "sid-1", "user-1", iat(noon.Add(-time.Minute)), false},
		{"no iat for a forced-out user", "jti-1", "sid-1", "user-forced", time.Time{}, true},
		{"jti equal to a revoked sid", "sid-ended", "sid-1", "user-1", fresh, false},
		{"sid equal to a denylisted jti", "jti-1", "jti-denied", "user-1", fresh, false},
		{"user id equal to a revoked sid", "jti-1", "sid-1", "sid-ended", iat(noon.Add(-time.Minute)), false},
		{"empty ids", "", "", "", time.Time{}, false},
		{"jti of another case", "JTI-DENIED", "sid-1", "user-1", fresh, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := revoked(t, x, tt.jti, tt.sid, tt.userID, tt.issuedAt); got != tt.want {
				t.Errorf("Revoked(%q, %q, %q, %v) = %v, want %v", tt.jti, tt.sid, tt.userID, tt.issuedAt, got, tt.want)
			}
		})
	}
}

// TestRevokedBefore pins the one-second rule of the package documentation:
// refused ⇔ floor(issuedAt) < ceil(before).
func TestRevocationRevokedBefore(t *testing.T) {
	whole := time.Date(2030, time.March, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		before   time.Time
		issuedAt time.Time
		want     bool
	}{
		{"whole second, iat a second before", whole, whole.Add(-time.Second), true},
		{"whole second, iat equal", whole, whole, false},
		{"whole second, iat after", whole, whole.Add(time.Second), false},
		{"fraction, iat of the same second", whole.Add(700 * time.Millisecond), whole, true},
		{"fraction, iat of the next second", whole.Add(700 * time.Millisecond), whole.Add(time.Second), false},
		{"one nanosecond past, iat of the same second", whole.Add(time.Nanosecond), whole, true},
		{"last nanosecond, iat of the next second", whole.Add(time.Second - time.Nanosecond), whole.Add(time.Second), false},
		{"sub-second issuedAt before, same second", whole.Add(700 * time.Millisecond), whole.Add(300 * time.Millisecond), true},
		{"sub-second issuedAt after, same second", whole.Add(700 * time.Millisecond), whole.Add(900 * time.Millisecond), true},
		{"sub-second issuedAt in the next second", whole.Add(700 * time.Millisecond), whole.Add(1100 * time.Millisecond), false},
		{"before in another zone", whole.In(time.FixedZone("X", -7*3600)), whole.Add(-time.Second), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clock.NewFake(whole)
			x := newIndex(t, memory.NewRevocations(c), c)
			must(t, "RevokeUser", x.RevokeUser(context.Background(), "u", tt.before, whole.Add(time.Hour)))
			if got := revoked(t, x, "", "", "u", tt.issuedAt); got != tt.want {
				t.Errorf("before %v, issuedAt %v: Revoked = %v, want %v", tt.before, tt.issuedAt, got, tt.want)
			}
		})
	}
}

func TestRevocationRevokeUserNeverMovesBackwards(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(noon)
	s := memory.NewRevocations(c)
	x := newIndex(t, s, c)
	must(t, "RevokeUser", x.RevokeUser(ctx, "u", noon, noon.Add(time.Hour)))
	must(t, "RevokeUser earlier", x.RevokeUser(ctx, "u", noon.Add(-time.Hour), noon.Add(2*time.Hour)))
	must(t, "Apply earlier", x.Apply(revocation.Entry{Kind: revocation.KindUser, ID: "u", Before: noon.Add(-2 * time.Hour), Until: noon.Add(3 * time.Hour)}))
	if !revoked(t, x, "", "", "u", iat(noon.Add(-time.Minute))) {
		t.Error("an earlier revoke-all time moved the index backwards")
	}
	if !revoked(t, newIndex(t, s, c), "", "", "u", iat(noon.Add(-time.Minute))) {
		t.Error("an earlier revoke-all time moved the store backwards")
	}
	must(t, "RevokeUser later", x.RevokeUser(ctx, "u", noon.Add(time.Minute), noon.Add(time.Hour)))
	if !revoked(t, x, "", "", "u", iat(noon.Add(30*time.Second))) {
		t.Error("a later revoke-all time was not taken")
	}
}

func TestRevocationLoadAtStart(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(noon)
	s := memory.NewRevocations(c)
	first := newIndex(t, s, c)
	must(t, "DenyToken", first.DenyToken(ctx, "jti", noon.Add(10*time.Minute)))
	must(t, "RevokeSID", first.RevokeSID(ctx, "sid", noon.Add(20*time.Minute)))
	must(t, "RevokeUser", first.RevokeUser(ctx, "user", noon, noon.Add(30*time.Minute)))

	second := newIndex(t, s, c)
	old := iat(noon.Add(-time.Minute))
	fresh := iat(noon.Add(time.Minute))
	for _, tc := range []struct {
		name             string
		jti, sid, userID string
		issuedAt         time.Time
	}{
		{"jti", "jti", "", "", fresh},
		{"sid", "", "sid", "", fresh},
		{"user", "", "", "user", old},
	} {
		if !revoked(t, second, tc.jti, tc.sid, tc.userID, tc.issuedAt) {
			t.Errorf("a new Index does not see the earlier %s revocation", tc.name)
		}
	}
	if revoked(t, second, "", "", "user", fresh) {
		t.Error("a new Index refuses a token issued after the forced logout")
	}

	// Entries past their time (plus Retention) are not loaded.
	c.Set(noon.Add(20*time.Minute + revocation.Retention))
	third := newIndex(t, s, c)
	if revoked(t, third, "jti", "", "", fresh) || revoked(t, third, "", "sid", "", fresh) {
		t.Error("a new Index loaded entries past their time")
	}
	if !revoked(t, third, "", "", "user", old) {
		t.Error("a new Index lost a live entry")
	}
}

func TestRevocationPurge(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(noon)
	s := memory.NewRevocations(c)
	x := newIndex(t, s, c)
	exp := noon.Add(10 * time.Minute)
	must(t, "DenyToken", x.DenyToken(ctx, "jti", exp))
	must(t, "RevokeSID", x.RevokeSID(ctx, "sid", exp))
	must(t, "RevokeUser", x.RevokeUser(ctx, "user", noon, exp))
	must(t, "DenyToken", x.DenyToken(ctx, "jti-long", exp.Add(time.Hour)))
	old := iat(noon.Add(-time.Minute))

	tests := []struct {
		name    string
		at      time.Time
		purged  int
		revoked bool
	}{
		{"at exp: a verifier's leeway still accepts the token", exp, 0, true},
		{"just before exp plus Retention", exp.Add(revocation.Retention - time.Nanosecond), 0, true},
		{"at exp plus Retention", exp.Add(revocation.Retention), 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Set(tt.at)
			n, err := x.Purge(ctx)
			must(t, "Purge", err)
			if n != tt.purged {
				t.Errorf("Purge = %d, want %d", n, tt.purged)
			}
			for _, got := range []bool{
				revoked(t, x, "jti", "", "", old),
				revoked(t, x, "", "sid", "", old),
				revoked(t, x, "", "", "user", old),
			} {
				if got != tt.revoked {
					t.Errorf("Revoked after Purge = %v, want %v", got, tt.revoked)
				}
			}
			if !revoked(t, x, "jti-long", "", "", old) {
				t.Error("Purge dropped a live entry")
			}
		})
	}
}

func TestRevocationFailedWriteChangesNothing(t *testing.T) {
	c := clock.NewFake(noon)
	s := memory.NewRevocations(c)
	x := newIndex(t, s, c)
	var changes []revocation.Entry
	x.OnChange = func(e revocation.Entry) { changes = append(changes, e) }
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	old := iat(noon.Add(-time.Minute))
	tests := []struct {
		name  string
		write func() error
	}{
		{"DenyToken", func() error { return x.DenyToken(cancelled, "jti", noon.Add(time.Hour)) }},
		{"RevokeSID", func() error { return x.RevokeSID(cancelled, "sid", noon.Add(time.Hour)) }},
		{"RevokeUser", func() error { return x.RevokeUser(cancelled, "user", noon, noon.Add(time.Hour)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.write(); !errors.Is(err, context.Canceled) {
				t.Errorf("error %v, want context.Canceled", err)
			}
		})
	}
	if revoked(t, x, "jti", "sid", "user", old) {
		t.Error("a failed write changed the index")
	}
	if len(changes) != 0 {
		t.Errorf("OnChange called for failed writes: %v", changes)
	}
	es, err := s.Load(context.Background())
	if err != nil || len(es) != 0 {
		t.Errorf("store after failed writes: %v, %v", es, err)
	}
}

func TestRevocationInvalidEntries(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(noon)
	s := memory.NewRevocations(c)
	x := newIndex(t, s, c)
	until := noon.Add(time.Hour)
	tests := []struct {
		name  string
		write func() error
	}{
		{"empty jti", func() error { return x.DenyToken(ctx, "", until) }},
		{"overlong jti", func() error { return x.DenyToken(ctx, strings.Repeat("j", 257), until) }},
		{"zero token expiry", func() error { return x.DenyToken(ctx, "jti", time.Time{}) }},
		{"empty sid", func() error { return x.RevokeSID(ctx, "", until) }},
		{"zero sid until", func() error { return x.RevokeSID(ctx, "sid", time.Time{}) }},
		{"empty user", func() error { return x.RevokeUser(ctx, "", noon, until) }},
		{"zero before", func() error { return x.RevokeUser(ctx, "user", time.Time{}, until) }},
		{"zero user until", func() error { return x.RevokeUser(ctx, "user", noon, time.Time{}) }},
		{"apply unknown kind", func() error { return x.Apply(revocation.Entry{Kind: 9, ID: "x", Until: until}) }},
		{"apply zero kind", func() error { return x.Apply(revocation.Entry{ID: "x", Until: until}) }},
		{"apply user without before", func() error {
			return x.Apply(revocation.Entry{Kind: revocation.KindUser, ID: "user", Until: until})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.write(); !errors.Is(err, revocation.ErrInvalidEntry) {
				t.Errorf("error %v, want ErrInvalidEntry", err)
			}
		})
	}
	if es, err := s.Load(ctx); err != nil || len(es) != 0 {
		t.Errorf("store after invalid writes: %v, %v", es, err)
	}
	if revoked(t, x, "jti", "sid", "user", time.Time{}) {
		t.Error("an invalid entry reached the index")
	}
	must(t, "a 256-byte jti", x.DenyToken(ctx, strings.Repeat("j", 256), until))
}

// TestApplyAndOnChange wires two instances, each with its own store, the way
// a notification channel would: what one writes, the other applies.
func TestRevocationApplyAndOnChange(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(noon)
	storeA, storeB := memory.NewRevocations(c), memory.NewRevocations(c)
	a, b := newIndex(t, storeA, c), newIndex(t, storeB, c)
	var sent []revocation.Entry
	a.OnChange = func(e revocation.Entry) {
		sent = append(sent, e)
		if err := b.Apply(e); err != nil {
			t.Errorf("Apply: %v", err)
		}
	}
	b.OnChange = func(e revocation.Entry) { t.Errorf("Apply called OnChange with %v", e) }

	exp := noon.Add(10 * time.Minute)
	must(t, "DenyToken", a.DenyToken(ctx, "jti", exp))
	must(t, "RevokeSID", a.RevokeSID(ctx, "sid", exp))
	must(t, "RevokeUser", a.RevokeUser(ctx, "user", noon, exp))
	want := []revocation.Entry{
		{Kind: revocation.KindToken, ID: "jti", Until: exp.Add(revocation.Retention)},
		{Kind: revocation.KindSID, ID: "sid", Until: exp.Add(revocation.Retention)},
		{Kind: revocation.KindUser, ID: "user", Before: noon, Until: exp.Add(revocation.Retention)},
	}
	if fmt.Sprint(sent) != fmt.Sprint(want) {
		t.Errorf("OnChange got %v, want %v", sent, want)
	}
	old := iat(noon.Add(-time.Minute))
	for _, got := range []bool{
		revoked(t, b, "jti", "", "", old),
		revoked(t, b, "", "sid", "", old),
		revoked(t, b, "", "", "user", old),
	} {
		if !got {
			t.Error("instance b does not refuse what instance a revoked")
		}
	}
	if es, err := storeB.Load(ctx); err != nil || len(es) != 0 {
		t.Errorf("Apply wrote to the store: %v, %v", es, err)
	}
	// b purges applied entries by their time like its own.
	c.Set(exp.Add(revocation.Retention))
	if _, err := b.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if revoked(t, b, "jti", "sid", "user", old) {
		t.Error("applied entries survived their time")
	}
}

func TestRevocationConcurrent(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(noon)
	s := memory.NewRevocations(c)
	x := newIndex(t, s, c)
	var mu sync.Mutex
	changes := 0
	x.OnChange = func(revocation.Entry) { mu.Lock(); changes++; mu.Unlock() }
	const writers, readers, each = 4, 4, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("%d-%d", w, i)
				for _, err := range []error{
					x.DenyToken(ctx, "jti-"+id, noon.Add(time.Hour)),
					x.RevokeSID(ctx, "sid-"+id, noon.Add(time.Hour)),
					x.RevokeUser(ctx, "user", noon.Add(time.Duration(i)*time.Second), noon.Add(time.Hour)),
					x.Apply(revocation.Entry{Kind: revocation.KindToken, ID: "applied-" + id, Until: noon.Add(time.Hour)}),
				} {
					if err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	for r := range readers {
		wg.Go(func() {
			for i := range each {
				if _, err := x.Revoked(ctx, fmt.Sprintf("jti-%d-%d", r, i), "sid-0-0", "user", noon); err != nil {
					t.Error(err)
				}
				if i%50 == 0 {
					if _, err := x.Purge(ctx); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if changes != 3*writers*each {
		t.Errorf("OnChange called %d times, want %d", changes, 3*writers*each)
	}
	fresh := newIndex(t, s, c)
	for w := range writers {
		for i := range each {
			id := fmt.Sprintf("%d-%d", w, i)
			if !revoked(t, x, "jti-"+id, "", "", noon) || !revoked(t, x, "", "sid-"+id, "", noon) ||
				!revoked(t, x, "applied-"+id, "", "", noon) || !revoked(t, fresh, "jti-"+id, "", "", noon) {
				t.Fatalf("entry %s lost", id)
			}
		}
	}
	last := noon.Add((each - 1) * time.Second)
	if !revoked(t, x, "", "", "user", iat(last)) || revoked(t, x, "", "", "user", iat(last.Add(time.Second))) {
		t.Error("the user's revoke-all time is not the latest written")
	}
}

func TestRevocationNewErrors(t *testing.T) {
	if _, err := revocation.New(context.Background(), nil, nil); err == nil {
		t.Error("New(nil store) succeeded")
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := revocation.New(cancelled, memory.NewRevocations(nil), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("New with a failing Load: %v, want context.Canceled", err)
	}
}

// BenchmarkRevoked measures the verifier's hot path on an index of 30,000
// entries: a token that is not revoked, the common case, checks all three
// maps.
func BenchmarkRevoked(b *testing.B) {
	ctx := context.Background()
	c := clock.NewFake(noon)
	x := newIndex(b, memory.NewRevocations(c), c)
	for i := range 10_000 {
		id := fmt.Sprintf("%08d", i)
		must(b, "DenyToken", x.DenyToken(ctx, "jti-"+id, noon.Add(time.Hour)))
		must(b, "RevokeSID", x.RevokeSID(ctx, "sid-"+id, noon.Add(time.Hour)))
		must(b, "RevokeUser", x.RevokeUser(ctx, "user-"+id, noon, noon.Add(time.Hour)))
	}
	jti, sid, user, issued := "8f1c2b3a-jti-not-revoked", "sid-not-revoked", "user-00000042", iat(noon.Add(time.Minute))
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if r, _ := x.Revoked(ctx, jti, sid, user, issued); r {
				b.Fatal("revoked")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if r, _ := x.Revoked(ctx, jti, sid, user, issued); r {
					b.Fatal("revoked")
				}
			}
		})
	})
}

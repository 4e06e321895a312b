package storetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/refresh"
	"github.com/gatehouse-auth/gatehouse/store"
)

// Lifetimes and limits of the refresh families the suite creates.
const (
	rfIdle        = time.Hour
	rfAbsolute    = 10 * time.Hour
	rfGrace       = 10 * time.Second
	rfMaxSiblings = 32
)

// TestRefresh runs the conformance suite for refresh.Store. open must return
// a new, empty store that uses c as its clock.
func TestRefresh(t *testing.T, open func(t *testing.T, c clock.Clock) refresh.Store) {
	t.Helper()
	tests := []struct {
		name string
		f    func(t *testing.T, s refresh.Store, c *clock.Fake)
	}{
		{"NotFound", testRefreshNotFound},
		{"RoundTrip", testRefreshRoundTrip},
		{"Conflict", testRefreshConflict},
		{"RotateChain", testRefreshRotateChain},
		{"RotateDecisions", testRefreshRotateDecisions},
		{"RotateConflict", testRefreshRotateConflict},
		{"IdleCappedAtExpiry", testRefreshIdleCap},
		{"FamiliesByUser", testRefreshFamiliesByUser},
		{"RevokeFamily", testRefreshRevokeFamily},
		{"RevokeUserFamilies", testRefreshRevokeUserFamilies},
		{"Purge", testRefreshPurge},
		{"Copies", testRefreshCopies},
		{"ConcurrentGrace", testRefreshConcurrentGrace},
		{"ConcurrentReuse", testRefreshConcurrentReuse},
		{"SiblingRotationRetiresBranches", testRefreshRetireSiblings},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			tt.f(t, open(t, c), c)
		})
	}
}

// rfNewFamily returns a family of userID created now, with the lifetimes
// above, and its first token; times are given in another zone than UTC.
func rfNewFamily(t testing.TB, c clock.Clock, userID string) (*refresh.Family, *refresh.Token) {
	t.Helper()
	now := c.Now().In(elsewhere)
	f := &refresh.Family{
		ID:            newID(t, "fam"),
		UserID:        userID,
		CreatedAt:     now,
		LastUsedAt:    now,
		IdleExpiresAt: now.Add(rfIdle),
		ExpiresAt:     now.Add(rfAbsolute),
		Delivery:      refresh.DeliveryCookie,
		UserAgent:     "Mozilla/5.0 (conformance)",
		IP:            "192.0.2.7",
	}
	tok := &refresh.Token{
		Hash:          newHash(t),
		FamilyID:      f.ID,
		Generation:    1,
		CreatedAt:     now,
		IdleExpiresAt: now.Add(rfIdle),
	}
	return f, tok
}

func rfMustCreate(t testing.TB, s refresh.Store, f *refresh.Family, tok *refresh.Token) {
	t.Helper()
	wantErr(t, "CreateFamily", s.CreateFamily(context.Background(), f, tok), nil)
}

// rfRequest returns a rotation of presented at the clock's now.
func rfRequest(t testing.TB, c clock.Clock, presented []byte, grace time.Duration, siblings int) refresh.RotateRequest {
	now := c.Now()
	return refresh.RotateRequest{
		Presented:     presented,
		NextHash:      newHash(t),
		Now:           now,
		IdleExpiresAt: now.Add(rfIdle),
		Grace:         grace,
		MaxSiblings:   siblings,
	}
}

// rfRotate rotates presented with the suite's grace and sibling limit and
// fails the test on an error.
func rfRotate(t testing.TB, s refresh.Store, c clock.Clock, presented []byte) refresh.RotateResult {
	t.Helper()
	res, err := s.Rotate(context.Background(), rfRequest(t, c, presented, rfGrace, rfMaxSiblings))
	wantErr(t, "Rotate", err, nil)
	return res
}

func rfCheckFamily(t testing.TB, what string, got, want *refresh.Family) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.Delivery != want.Delivery ||
		got.UserAgent != want.UserAgent || got.IP != want.IP {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
	checkTime(t, what+".CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, what+".LastUsedAt", got.LastUsedAt, want.LastUsedAt)
	checkTime(t, what+".IdleExpiresAt", got.IdleExpiresAt, want.IdleExpiresAt)
	checkTime(t, what+".ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	checkTime(t, what+".RevokedAt", got.RevokedAt, want.RevokedAt)
}

func rfCheckToken(t testing.TB, what string, got, want *refresh.Token) {
	t.Helper()
	if !bytes.Equal(got.Hash, want.Hash) || got.FamilyID != want.FamilyID || got.Generation != want.Generation ||
		!bytes.Equal(got.ParentHash, want.ParentHash) || got.Children != want.Children {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
	checkTime(t, what+".CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, what+".IdleExpiresAt", got.IdleExpiresAt, want.IdleExpiresAt)
	checkTime(t, what+".RotatedAt", got.RotatedAt, want.RotatedAt)
}

func rfFamilyIDs(fs []*refresh.Family) []string {
	ids := make([]string, len(fs))
	for i, f := range fs {
		ids[i] = f.ID
	}
	return ids
}

func rfMustFamily(t testing.TB, s refresh.Store, id string) *refresh.Family {
	t.Helper()
	f, err := s.Family(context.Background(), id)
	wantErr(t, "Family", err, nil)
	return f
}

func rfMustFamilies(t testing.TB, s refresh.Store, userID string) []*refresh.Family {
	t.Helper()
	fs, err := s.FamiliesByUser(context.Background(), userID)
	wantErr(t, "FamiliesByUser", err, nil)
	return fs
}

func testRefreshNotFound(t *testing.T, s refresh.Store, c *clock.Fake) {
	ctx := context.Background()
	_, err := s.Family(ctx, "fam-missing")
	wantErr(t, "Family", err, store.ErrNotFound)
	_, err = s.FamilyByTokenHash(ctx, newHash(t))
	wantErr(t, "FamilyByTokenHash", err, store.ErrNotFound)
	_, err = s.Rotate(ctx, rfRequest(t, c, newHash(t), rfGrace, rfMaxSiblings))
	wantErr(t, "Rotate", err, store.ErrNotFound)
	_, err = s.RevokeFamily(ctx, "fam-missing", c.Now())
	wantErr(t, "RevokeFamily", err, store.ErrNotFound)
	checkStrings(t, "FamiliesByUser", rfFamilyIDs(rfMustFamilies(t, s, "alice")), nil)
	fs, err := s.RevokeUserFamilies(ctx, "alice", c.Now())
	wantErr(t, "RevokeUserFamilies", err, nil)
	checkStrings(t, "RevokeUserFamilies", rfFamilyIDs(fs), nil)
	n, err := s.Purge(ctx)
	wantErr(t, "Purge", err, nil)
	if n != 0 {
		t.Errorf("Purge of an empty store = %d, want 0", n)
	}
}

func testRefreshRoundTrip(t *testing.T, s refresh.Store, c *clock.Fake) {
	f, tok := rfNewFamily(t, c, "alice")
	rfMustCreate(t, s, f, tok)
	rfCheckFamily(t, "Family", rfMustFamily(t, s, f.ID), f)
	got, err := s.FamilyByTokenHash(context.Background(), tok.Hash)
	wantErr(t, "FamilyByTokenHash", err, nil)
	rfCheckFamily(t, "FamilyByTokenHash", got, f)
	fs := rfMustFamilies(t, s, "alice")
	checkStrings(t, "FamiliesByUser", rfFamilyIDs(fs), []string{f.ID})
	rfCheckFamily(t, "FamiliesByUser[0]", fs[0], f)
	checkStrings(t, "FamiliesByUser(bob)", rfFamilyIDs(rfMustFamilies(t, s, "bob")), nil)
}

func testRefreshConflict(t *testing.T, s refresh.Store, c *clock.Fake) {
	ctx := context.Background()
	f, tok := rfNewFamily(t, c, "alice")
	rfMustCreate(t, s, f, tok)

	sameID, tok2 := rfNewFamily(t, c, "bob")
	sameID.ID, tok2.FamilyID = f.ID, f.ID
	wantErr(t, "CreateFamily with a taken id", s.CreateFamily(ctx, sameID, tok2), store.ErrConflict)
	_, err := s.FamilyByTokenHash(ctx, tok2.Hash)
	wantErr(t, "token of the refused family", err, store.ErrNotFound)

	other, sameHash := rfNewFamily(t, c, "bob")
	sameHash.Hash = bytes.Clone(tok.Hash)
	wantErr(t, "CreateFamily with a taken token hash", s.CreateFamily(ctx, other, sameHash), store.ErrConflict)
	_, err = s.Family(ctx, other.ID)
	wantErr(t, "refused family", err, store.ErrNotFound)
	checkStrings(t, "FamiliesByUser(bob)", rfFamilyIDs(rfMustFamilies(t, s, "bob")), nil)
	rfCheckFamily(t, "first family", rfMustFamily(t, s, f.ID), f)
}

func testRefreshRotateChain(t *testing.T, s refresh.Store, c *clock.Fake) {
	f, tok := rfNewFamily(t, c, "alice")
	rfMustCreate(t, s, f, tok)
	presented := tok
	for gen := 2; gen <= 5; gen++ {
		c.Advance(time.Minute)
		req := rfRequest(t, c, presented.Hash, rfGrace, rfMaxSiblings)
		res, err := s.Rotate(context.Background(), req)
		wantErr(t, fmt.Sprintf("Rotate to generation %d", gen), err, nil)
		if res.Outcome != refresh.OutcomeRotated {
			t.Fatalf("Rotate to generation %d: outcome %v, want rotated", gen, res.Outcome)
		}
		wantPresented := *presented
		wantPresented.RotatedAt = req.Now
		wantPresented.Children = 1
		rfCheckToken(t, "Presented", &res.Presented, &wantPresented)
		minted := refresh.Token{
			Hash:          req.NextHash,
			FamilyID:      f.ID,
			Generation:    gen,
			ParentHash:    presented.Hash,
			CreatedAt:     req.Now,
			IdleExpiresAt: req.IdleExpiresAt,
		}
		rfCheckToken(t, "Minted", &res.Minted, &minted)
		wantFam := *f
		wantFam.LastUsedAt = req.Now
		wantFam.IdleExpiresAt = req.IdleExpiresAt
		rfCheckFamily(t, "Family", &res.Family, &wantFam)
		rfCheckFamily(t, "stored family", rfMustFamily(t, s, f.ID), &wantFam)
		got, err := s.FamilyByTokenHash(context.Background(), minted.Hash)
		wantErr(t, "FamilyByTokenHash(minted)", err, nil)
		if got.ID != f.ID {
			t.Errorf("FamilyByTokenHash(minted) = %s, want %s", got.ID, f.ID)
		}
		presented = &minted
	}
}

// testRefreshRotateDecisions walks every branch of the rotation decisions,
// one named case per branch and boundary.
func testRefreshRotateDecisions(t *testing.T, s refresh.Store, c *clock.Fake) {
	type setup struct {
		fam       *refresh.Family
		current   *refresh.Token // never presented
		rotated   *refresh.Token // rotated once, at rotatedAt
		rotatedAt time.Time
	}
	// newSetup creates a family whose first token is rotated at the clock's
	// now (its child is current); edit adjusts the family and first token
	// before they are stored.
	newSetup := func(t *testing.T, edit func(f *refresh.Family, tok *refresh.Token)) setup {
		f, tok := rfNewFamily(t, c, "user-"+newID(t, "u"))
		if edit != nil {
			edit(f, tok)
		}
		rfMustCreate(t, s, f, tok)
		res := rfRotate(t, s, c, tok.Hash)
		if res.Outcome != refresh.OutcomeRotated {
			t.Fatalf("setup rotation: outcome %v", res.Outcome)
		}
		return setup{fam: f, current: &res.Minted, rotated: tok, rotatedAt: c.Now()}
	}
	tests := []struct {
		name     string
		edit     func(f *refresh.Family, tok *refresh.Token)
		before   func(t *testing.T, su setup) // runs after the setup, before the clock moves
		advance  time.Duration
		rotated  bool // present the rotated token, not the current one
		grace    time.Duration
		siblings int
		want     refresh.Outcome
	}{
		{name: "current token rotates", grace: rfGrace, want: refresh.OutcomeRotated},
		{name: "current token just before its idle expiry", advance: rfIdle - time.Nanosecond, grace: rfGrace, want: refresh.OutcomeRotated},
		{name: "current token at its idle expiry", advance: rfIdle, grace: rfGrace, want: refresh.OutcomeExpired},
		{
			name: "current token idle-expired while the family lives",
			// The family's idle expiry is later than the token's, as when
			// a sibling branch was refreshed more recently.
			edit:    func(f *refresh.Family, _ *refresh.Token) { f.IdleExpiresAt = f.ExpiresAt },
			advance: rfIdle + time.Minute, grace: rfGrace, want: refresh.OutcomeExpired,
		},
		{
			name:    "family at its absolute expiry",
			edit:    func(f *refresh.Family, _ *refresh.Token) { f.ExpiresAt = f.CreatedAt.Add(30 * time.Minute) },
			advance: 30 * time.Minute, grace: rfGrace, want: refresh.OutcomeExpired,
		},
		{
			name:    "revoked family, current token",
			before:  func(t *testing.T, su setup) { rfRevoke(t, s, su.fam.ID, c.Now()) },
			advance: time.Second, grace: rfGrace, want: refresh.OutcomeRevoked,
		},
		{
			name:    "revoked family, rotated token",
			before:  func(t *testing.T, su setup) { rfRevoke(t, s, su.fam.ID, c.Now()) },
			advance: time.Hour, rotated: true, grace: rfGrace, want: refresh.OutcomeRevoked,
		},
		{name: "rotated token at once", rotated: true, grace: rfGrace, want: refresh.OutcomeGraceReplay},
		{name: "rotated token just within grace", advance: rfGrace - time.Nanosecond, rotated: true, grace: rfGrace, want: refresh.OutcomeGraceReplay},
		{name: "rotated token at the end of grace", advance: rfGrace, rotated: true, grace: rfGrace, want: refresh.OutcomeReuse},
		{name: "rotated token with grace off", rotated: true, grace: 0, want: refresh.OutcomeReuse},
		{
			name: "rotated token within grace, siblings exhausted",
			before: func(t *testing.T, su setup) {
				for range 2 {
					if res := rfRotateWith(t, s, c, su.rotated.Hash, 2); res.Outcome != refresh.OutcomeGraceReplay {
						t.Fatalf("sibling: outcome %v", res.Outcome)
					}
				}
			},
			rotated: true, grace: rfGrace, siblings: 2, want: refresh.OutcomeReuse,
		},
		{
			name: "rotated token within grace but idle-expired",
			edit: func(f *refresh.Family, tok *refresh.Token) {
				tok.IdleExpiresAt = tok.CreatedAt.Add(time.Second)
			},
			advance: time.Second, rotated: true, grace: rfGrace, want: refresh.OutcomeExpired,
		},
		{
			name:    "rotated token long after, idle-expired, family live",
			edit:    func(f *refresh.Family, _ *refresh.Token) { f.IdleExpiresAt = f.ExpiresAt },
			advance: rfIdle + time.Minute, rotated: true, grace: rfGrace, want: refresh.OutcomeReuse,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Set(start)
			su := newSetup(t, tt.edit)
			if tt.before != nil {
				tt.before(t, su)
			}
			c.Advance(tt.advance)
			presented := su.current
			if tt.rotated {
				presented = su.rotated
			}
			siblings := tt.siblings
			if siblings == 0 {
				siblings = rfMaxSiblings
			}
			famBefore := rfMustFamily(t, s, su.fam.ID)
			req := rfRequest(t, c, presented.Hash, tt.grace, siblings)
			res, err := s.Rotate(context.Background(), req)
			wantErr(t, "Rotate", err, nil)
			if res.Outcome != tt.want {
				t.Fatalf("outcome %v, want %v", res.Outcome, tt.want)
			}
			if res.Family.ID != su.fam.ID || res.Family.UserID != su.fam.UserID {
				t.Errorf("result family %s of %s, want %s of %s", res.Family.ID, res.Family.UserID, su.fam.ID, su.fam.UserID)
			}
			if !bytes.Equal(res.Presented.Hash, presented.Hash) {
				t.Errorf("result presented token is not the presented one")
			}
			_, err = s.FamilyByTokenHash(context.Background(), req.NextHash)
			minted := err == nil
			switch tt.want {
			case refresh.OutcomeRotated, refresh.OutcomeGraceReplay:
				if !minted || !bytes.Equal(res.Minted.Hash, req.NextHash) {
					t.Errorf("the next token was not minted")
				}
				if res.Minted.Generation != presented.Generation+1 || !bytes.Equal(res.Minted.ParentHash, presented.Hash) {
					t.Errorf("minted generation %d parent %x, want %d %x", res.Minted.Generation, res.Minted.ParentHash, presented.Generation+1, presented.Hash)
				}
				if !res.Family.RevokedAt.IsZero() {
					t.Errorf("family revoked at %v", res.Family.RevokedAt)
				}
			default:
				if minted || res.Minted.Hash != nil {
					t.Errorf("a token was minted for outcome %v", res.Outcome)
				}
			}
			after := rfMustFamily(t, s, su.fam.ID)
			switch tt.want {
			case refresh.OutcomeReuse:
				checkTime(t, "RevokedAt after reuse", after.RevokedAt, req.Now)
				checkTime(t, "result RevokedAt", res.Family.RevokedAt, req.Now)
			case refresh.OutcomeExpired, refresh.OutcomeRevoked:
				rfCheckFamily(t, "family after a refusal", after, famBefore)
			}
		})
	}
}

func rfRevoke(t testing.TB, s refresh.Store, id string, at time.Time) {
	t.Helper()
	_, err := s.RevokeFamily(context.Background(), id, at)
	wantErr(t, "RevokeFamily", err, nil)
}

func rfRotateWith(t testing.TB, s refresh.Store, c clock.Clock, presented []byte, siblings int) refresh.RotateResult {
	t.Helper()
	res, err := s.Rotate(context.Background(), rfRequest(t, c, presented, rfGrace, siblings))
	wantErr(t, "Rotate", err, nil)
	return res
}

func testRefreshRotateConflict(t *testing.T, s refresh.Store, c *clock.Fake) {
	f, tok := rfNewFamily(t, c, "alice")
	rfMustCreate(t, s, f, tok)
	other, otherTok := rfNewFamily(t, c, "bob")
	rfMustCreate(t, s, other, otherTok)
	c.Advance(time.Minute)
	req := rfRequest(t, c, tok.Hash, rfGrace, rfMaxSiblings)
	req.NextHash = bytes.Clone(otherTok.Hash)
	_, err := s.Rotate(context.Background(), req)
	wantErr(t, "Rotate to a taken hash", err, store.ErrConflict)
	rfCheckFamily(t, "family after the conflict", rfMustFamily(t, s, f.ID), f)
	// Nothing changed: the presented token is still current.
	if res := rfRotate(t, s, c, tok.Hash); res.Outcome != refresh.OutcomeRotated {
		t.Errorf("Rotate after the conflict: outcome %v, want rotated", res.Outcome)
	}
}

func testRefreshIdleCap(t *testing.T, s refresh.Store, c *clock.Fake) {
	f, tok := rfNewFamily(t, c, "alice")
	f.ExpiresAt = f.CreatedAt.Add(rfIdle / 2)
	f.IdleExpiresAt = f.ExpiresAt
	tok.IdleExpiresAt = f.ExpiresAt
	rfMustCreate(t, s, f, tok)
	c.Advance(time.Minute)
	res := rfRotate(t, s, c, tok.Hash)
	if res.Outcome != refresh.OutcomeRotated {
		t.Fatalf("Rotate: outcome %v, want rotated", res.Outcome)
	}
	checkTime(t, "minted IdleExpiresAt", res.Minted.IdleExpiresAt, f.ExpiresAt)
	checkTime(t, "family IdleExpiresAt", res.Family.IdleExpiresAt, f.ExpiresAt)
}

func testRefreshFamiliesByUser(t *testing.T, s refresh.Store, c *clock.Fake) {
	var alice []*refresh.Family
	for range 3 {
		f, tok := rfNewFamily(t, c, "alice")
		rfMustCreate(t, s, f, tok)
		alice = append(alice, f)
		c.Advance(time.Second)
	}
	bob, bobTok := rfNewFamily(t, c, "bob")
	rfMustCreate(t, s, bob, bobTok)
	short, shortTok := rfNewFamily(t, c, "alice")
	short.IdleExpiresAt = short.CreatedAt.Add(time.Minute)
	shortTok.IdleExpiresAt = short.IdleExpiresAt
	rfMustCreate(t, s, short, shortTok)

	checkStrings(t, "FamiliesByUser(alice)", rfFamilyIDs(rfMustFamilies(t, s, "alice")),
		[]string{short.ID, alice[2].ID, alice[1].ID, alice[0].ID})
	rfRevoke(t, s, alice[1].ID, c.Now())
	c.Advance(time.Minute)
	checkStrings(t, "FamiliesByUser(alice) after a revocation and an idle expiry",
		rfFamilyIDs(rfMustFamilies(t, s, "alice")), []string{alice[2].ID, alice[0].ID})
	checkStrings(t, "FamiliesByUser(bob)", rfFamilyIDs(rfMustFamilies(t, s, "bob")), []string{bob.ID})
	c.Set(alice[0].IdleExpiresAt)
	checkStrings(t, "FamiliesByUser(alice) at the first one's idle expiry",
		rfFamilyIDs(rfMustFamilies(t, s, "alice")), []string{alice[2].ID})
}

func testRefreshRevokeFamily(t *testing.T, s refresh.Store, c *clock.Fake) {
	f, tok := rfNewFamily(t, c, "alice")
	rfMustCreate(t, s, f, tok)
	c.Advance(time.Minute)
	first := c.Now()
	got, err := s.RevokeFamily(context.Background(), f.ID, first)
	wantErr(t, "RevokeFamily", err, nil)
	checkTime(t, "RevokedAt", got.RevokedAt, first)
	c.Advance(time.Minute)
	got, err = s.RevokeFamily(context.Background(), f.ID, c.Now())
	wantErr(t, "RevokeFamily again", err, nil)
	checkTime(t, "RevokedAt after a second revocation", got.RevokedAt, first)
	checkTime(t, "stored RevokedAt", rfMustFamily(t, s, f.ID).RevokedAt, first)
	if res := rfRotate(t, s, c, tok.Hash); res.Outcome != refresh.OutcomeRevoked {
		t.Errorf("Rotate in a revoked family: outcome %v, want revoked", res.Outcome)
	}
	got, err = s.FamilyByTokenHash(context.Background(), tok.Hash)
	wantErr(t, "FamilyByTokenHash of a revoked family", err, nil)
	checkTime(t, "FamilyByTokenHash RevokedAt", got.RevokedAt, first)
}

func testRefreshRevokeUserFamilies(t *testing.T, s refresh.Store, c *clock.Fake) {
	ctx := context.Background()
	a1, t1 := rfNewFamily(t, c, "alice")
	rfMustCreate(t, s, a1, t1)
	c.Advance(time.Second)
	a2, t2 := rfNewFamily(t, c, "alice")
	rfMustCreate(t, s, a2, t2)
	revoked, t3 := rfNewFamily(t, c, "alice")
	rfMustCreate(t, s, revoked, t3)
	rfRevoke(t, s, revoked.ID, c.Now())
	dead, t4 := rfNewFamily(t, c, "alice")
	dead.ExpiresAt = dead.CreatedAt.Add(time.Second)
	rfMustCreate(t, s, dead, t4)
	bob, t5 := rfNewFamily(t, c, "bob")
	rfMustCreate(t, s, bob, t5)

	c.Advance(time.Minute)
	at := c.Now()
	got, err := s.RevokeUserFamilies(ctx, "alice", at)
	wantErr(t, "RevokeUserFamilies", err, nil)
	checkStrings(t, "RevokeUserFamilies", rfFamilyIDs(got), []string{a2.ID, a1.ID})
	for _, f := range got {
		checkTime(t, "returned RevokedAt", f.RevokedAt, at)
		checkTime(t, "stored RevokedAt", rfMustFamily(t, s, f.ID).RevokedAt, at)
	}
	if !rfMustFamily(t, s, dead.ID).RevokedAt.IsZero() {
		t.Errorf("RevokeUserFamilies revoked an expired family")
	}
	checkStrings(t, "FamiliesByUser(alice)", rfFamilyIDs(rfMustFamilies(t, s, "alice")), nil)
	checkStrings(t, "FamiliesByUser(bob)", rfFamilyIDs(rfMustFamilies(t, s, "bob")), []string{bob.ID})
	got, err = s.RevokeUserFamilies(ctx, "alice", c.Now())
	wantErr(t, "RevokeUserFamilies again", err, nil)
	checkStrings(t, "RevokeUserFamilies again", rfFamilyIDs(got), nil)
	for _, tok := range []*refresh.Token{t1, t2} {
		if res := rfRotate(t, s, c, tok.Hash); res.Outcome != refresh.OutcomeRevoked {
			t.Errorf("Rotate after RevokeUserFamilies: outcome %v, want revoked", res.Outcome)
		}
	}
}

func testRefreshPurge(t *testing.T, s refresh.Store, c *clock.Fake) {
	ctx := context.Background()
	live, liveTok := rfNewFamily(t, c, "alice")
	rfMustCreate(t, s, live, liveTok)
	revoked, revokedTok := rfNewFamily(t, c, "alice")
	rfMustCreate(t, s, revoked, revokedTok)
	rfRevoke(t, s, revoked.ID, c.Now())
	idle, idleTok := rfNewFamily(t, c, "alice")
	idle.IdleExpiresAt = idle.CreatedAt.Add(time.Minute)
	idleTok.IdleExpiresAt = idle.IdleExpiresAt
	rfMustCreate(t, s, idle, idleTok)
	abs, absTok := rfNewFamily(t, c, "bob")
	abs.ExpiresAt = abs.CreatedAt.Add(time.Minute)
	rfMustCreate(t, s, abs, absTok)
	// A rotated family: its tokens go with it.
	res := rfRotate(t, s, c, absTok.Hash)
	if res.Outcome != refresh.OutcomeRotated {
		t.Fatalf("Rotate: outcome %v", res.Outcome)
	}

	n, err := s.Purge(ctx)
	wantErr(t, "Purge before any expiry", err, nil)
	if n != 0 {
		t.Errorf("Purge before any expiry = %d, want 0", n)
	}
	c.Advance(time.Minute)
	n, err = s.Purge(ctx)
	wantErr(t, "Purge", err, nil)
	if n != 2 {
		t.Errorf("Purge = %d, want 2", n)
	}
	for _, h := range [][]byte{idleTok.Hash, absTok.Hash, res.Minted.Hash} {
		_, err := s.FamilyByTokenHash(ctx, h)
		wantErr(t, "FamilyByTokenHash of a purged token", err, store.ErrNotFound)
		_, err = s.Rotate(ctx, rfRequest(t, c, h, rfGrace, rfMaxSiblings))
		wantErr(t, "Rotate of a purged token", err, store.ErrNotFound)
	}
	for _, id := range []string{idle.ID, abs.ID} {
		_, err := s.Family(ctx, id)
		wantErr(t, "Family of a purged family", err, store.ErrNotFound)
	}
	rfMustFamily(t, s, live.ID)
	if rfMustFamily(t, s, revoked.ID).RevokedAt.IsZero() {
		t.Errorf("revoked family lost its RevokedAt")
	}
	n, err = s.Purge(ctx)
	wantErr(t, "Purge again", err, nil)
	if n != 0 {
		t.Errorf("Purge again = %d, want 0", n)
	}
	// Purged families are gone for good: their id and hashes are free.
	c.Set(start)
	idle2, _ := rfNewFamily(t, c, "alice")
	idle2.ID = idle.ID
	tok2 := *idleTok
	rfMustCreate(t, s, idle2, &tok2)
}

func testRefreshCopies(t *testing.T, s refresh.Store, c *clock.Fake) {
	f, tok := rfNewFamily(t, c, "alice")
	want := *f
	hash := bytes.Clone(tok.Hash)
	rfMustCreate(t, s, f, tok)
	f.UserAgent = "changed"
	tok.Hash[0] ^= 0xff
	rfCheckFamily(t, "Family after changing the argument", rfMustFamily(t, s, want.ID), &want)
	got, err := s.FamilyByTokenHash(context.Background(), hash)
	wantErr(t, "FamilyByTokenHash after changing the argument's hash", err, nil)
	got.RevokedAt = c.Now()
	got.UserID = "mallory"
	rfCheckFamily(t, "Family after changing a result", rfMustFamily(t, s, want.ID), &want)

	req := rfRequest(t, c, bytes.Clone(hash), rfGrace, rfMaxSiblings)
	next := bytes.Clone(req.NextHash)
	res, err := s.Rotate(context.Background(), req)
	wantErr(t, "Rotate", err, nil)
	req.NextHash[0] ^= 0xff
	req.Presented[0] ^= 0xff
	res.Minted.Hash[0] ^= 0xff
	res.Presented.Hash[0] ^= 0xff
	res.Family.UserID = "mallory"
	if got := rfMustFamily(t, s, want.ID); got.UserID != want.UserID {
		t.Errorf("UserID = %q after changing a rotation's result, want %q", got.UserID, want.UserID)
	}
	if res := rfRotate(t, s, c, hash); res.Outcome != refresh.OutcomeGraceReplay {
		t.Errorf("Rotate of the rotated token: outcome %v, want grace replay", res.Outcome)
	}
	res = rfRotate(t, s, c, next)
	if res.Outcome != refresh.OutcomeRotated {
		t.Errorf("Rotate of the minted token: outcome %v, want rotated", res.Outcome)
	}
	if !bytes.Equal(res.Presented.Hash, next) || !bytes.Equal(res.Presented.ParentHash, hash) {
		t.Errorf("minted token changed through the request or a result: hash %x parent %x, want %x %x",
			res.Presented.Hash, res.Presented.ParentHash, next, hash)
	}
}

// testRefreshConcurrentGrace presents one token from many goroutines at the
// same instant: one rotation, and a sibling for every other request.
func testRefreshConcurrentGrace(t *testing.T, s refresh.Store, c *clock.Fake) {
	const n = 20
	f, tok := rfNewFamily(t, c, "alice")
	rfMustCreate(t, s, f, tok)
	reqs := make([]refresh.RotateRequest, n)
	for g := range reqs {
		reqs[g] = rfRequest(t, c, tok.Hash, rfGrace, rfMaxSiblings)
	}
	results := make([]refresh.RotateResult, n)
	runConcurrently(t, n, func(g int) error {
		res, err := s.Rotate(context.Background(), reqs[g])
		results[g] = res
		return err
	})
	counts := map[refresh.Outcome]int{}
	seen := map[string]bool{}
	maxChildren := 0
	for _, res := range results {
		counts[res.Outcome]++
		seen[string(res.Minted.Hash)] = true
		if res.Minted.Generation != 2 || !bytes.Equal(res.Minted.ParentHash, tok.Hash) {
			t.Errorf("minted generation %d parent %x, want 2 %x", res.Minted.Generation, res.Minted.ParentHash, tok.Hash)
		}
		maxChildren = max(maxChildren, res.Presented.Children)
	}
	if counts[refresh.OutcomeRotated] != 1 || counts[refresh.OutcomeGraceReplay] != n-1 {
		t.Errorf("outcomes %v, want 1 rotated and %d grace replays", counts, n-1)
	}
	if len(seen) != n {
		t.Errorf("%d distinct minted tokens, want %d", len(seen), n)
	}
	if maxChildren != n {
		t.Errorf("presented token has %d children, want %d", maxChildren, n)
	}
	if got := rfMustFamily(t, s, f.ID); !got.Live(c.Now()) {
		t.Errorf("family not live after grace replays: %+v", got)
	}
}

// testRefreshConcurrentReuse presents one token from many goroutines with
// the grace rule off: one rotation, one reuse that revokes the family, and
// the rest find it revoked.
func testRefreshConcurrentReuse(t *testing.T, s refresh.Store, c *clock.Fake) {
	const n = 20
	f, tok := rfNewFamily(t, c, "alice")
	rfMustCreate(t, s, f, tok)
	reqs := make([]refresh.RotateRequest, n)
	for g := range reqs {
		reqs[g] = rfRequest(t, c, tok.Hash, 0, rfMaxSiblings)
	}
	results := make([]refresh.RotateResult, n)
	runConcurrently(t, n, func(g int) error {
		res, err := s.Rotate(context.Background(), reqs[g])
		results[g] = res
		return err
	})
	counts := map[refresh.Outcome]int{}
	for _, res := range results {
		counts[res.Outcome]++
	}
	if counts[refresh.OutcomeRotated] != 1 || counts[refresh.OutcomeReuse] != 1 || counts[refresh.OutcomeRevoked] != n-2 {
		t.Errorf("outcomes %v, want 1 rotated, 1 reuse, %d revoked", counts, n-2)
	}
	if got := rfMustFamily(t, s, f.ID); got.RevokedAt.IsZero() {
		t.Errorf("family not revoked after reuse")
	}
}

// testRefreshRetireSiblings: a grace replay mints a second branch; when
// any branch rotates, every other unrotated token of the family is retired
// (rotated now): within the grace it still answers as a replay, after it is
// reuse and the family dies. A branch minted from a replayed (stolen)
// token cannot live on undetected, even by replaying its retired token
// within the grace again.
func testRefreshRetireSiblings(t *testing.T, s refresh.Store, c *clock.Fake) {
	f, t0 := rfNewFamily(t, c, "u-sib")
	rfMustCreate(t, s, f, t0)
	want := func(what string, res refresh.RotateResult, o refresh.Outcome) refresh.RotateResult {
		t.Helper()
		if res.Outcome != o {
			t.Fatalf("%s: %v, want %v", what, res.Outcome, o)
		}
		return res
	}
	t1 := want("the client rotates T0", rfRotate(t, s, c, t0.Hash), refresh.OutcomeRotated)
	c.Advance(time.Second)
	s1 := want("a replay of T0 within the grace", rfRotate(t, s, c, t0.Hash), refresh.OutcomeGraceReplay)
	c.Advance(rfGrace)
	t2 := want("the client rotates T1 (retiring S1)", rfRotate(t, s, c, t1.Minted.Hash), refresh.OutcomeRotated)
	c.Advance(time.Second)
	s2 := want("the thief replays the retired S1 within the grace", rfRotate(t, s, c, s1.Minted.Hash), refresh.OutcomeGraceReplay)
	c.Advance(rfGrace)
	t3 := want("the client rotates T2 (retiring S2, a token of another parent)", rfRotate(t, s, c, t2.Minted.Hash), refresh.OutcomeRotated)
	c.Advance(rfGrace + time.Second)
	r := want("the thief's S2 after the grace", rfRotate(t, s, c, s2.Minted.Hash), refresh.OutcomeReuse)
	if r.Family.RevokedAt.IsZero() {
		t.Fatal("reuse did not revoke the family")
	}
	want("the client's T3 after the reuse", rfRotate(t, s, c, t3.Minted.Hash), refresh.OutcomeRevoked)
}

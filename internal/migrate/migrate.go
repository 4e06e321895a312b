// Package migrate copies a single-node Gatehouse deployment, one SQLite
// file, to the stores of a deployment of several instances: PostgreSQL for
// users, refresh families and their tokens, signing keys and audit events;
// Redis for sessions and revocation entries. It is the engine of
// `gatehouse migrate`.
//
// Run reads the source through a read-only sqlite.Export (one consistent
// snapshot) and makes three passes over it, kind by kind:
//
//  1. check: every record is looked up in the destination. A record that is
//     there with different data is a conflict, and Run stops before it
//     writes anything (ErrConflict). With Options.DryRun, Run stops here and
//     reports what it would copy.
//  2. copy: every record missing from the destination is written; one that
//     is already there, equal, is counted as present. Re-running after a
//     partial copy therefore duplicates nothing.
//  3. verify: every record is looked up again and compared field by field;
//     each kind's records in the destination are counted. A record missing
//     or different is a mismatch (ErrMismatch).
//
// Dead records are not copied: sessions past their idle or absolute expiry
// and revocation entries past their until, by Options.Clock. Everything else
// is, in whatever state it is: revoked refresh families, retired and
// removed signing keys, users with a revoked-before time. Audit events are
// appended in the order they were appended to the source, so that events of
// the same time keep their order.
//
// The destination's records are written through the stores' own methods
// (CreateUser, CreateSession, CreateSigningKey, AppendEvent, DenyToken,
// RevokeSID, RevokeUser), which keep every field, and through
// postgres.Refresh.ImportFamily for refresh families, whose rotated tokens
// no method of refresh.Store can write.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/store"
	"github.com/gatehouse-auth/gatehouse/store/postgres"
	redisstore "github.com/gatehouse-auth/gatehouse/store/redis"
	"github.com/gatehouse-auth/gatehouse/store/sqlite"
)

// Errors that Run returns with its Report.
var (
	// ErrConflict: the destination holds a record with the same id (or
	// username, or hash) and different data. Nothing was written if the
	// check pass found it.
	ErrConflict = errors.New("migrate: the destination holds different data for the same record")
	// ErrMismatch: after the copy, a record of the source is missing from
	// the destination or differs there.
	ErrMismatch = errors.New("migrate: verification failed")
)

// DefaultWorkers is how many requests per kind Run has in flight at once to
// the destination when Options.Workers is 0.
const DefaultWorkers = 8

// MaxConflicts is how many conflicts a Report lists; it counts them all.
const MaxConflicts = 20

// The kinds of records, as reports name them.
const (
	KindUsers       = "users"
	KindSessions    = "sessions"
	KindFamilies    = "refresh families"
	KindTokens      = "refresh tokens"
	KindKeys        = "signing keys"
	KindRevocations = "revocations"
	KindAudit       = "audit events"
)

// Destination is where Run copies to. Both stores are needed.
type Destination struct {
	Postgres *postgres.DB
	Redis    *redisstore.Store
}

// Options configures Run.
type Options struct {
	// Clock tells which sessions and revocation entries are dead; nil means
	// clock.System{}. The destination stores have clocks of their own,
	// which should agree.
	Clock clock.Clock
	// DryRun stops after the check pass: Run writes nothing and reports
	// what it would copy.
	DryRun bool
	// Workers is how many requests per kind are in flight at once to the
	// destination; 0 means DefaultWorkers.
	Workers int
	// Progress, when set, is called as records are processed, from one
	// goroutine at a time.
	Progress func(Progress)
}

// Phase names a pass over the source.
type Phase string

// The passes of Run, in order.
const (
	PhaseCheck  Phase = "check"
	PhaseCopy   Phase = "copy"
	PhaseVerify Phase = "verify"
)

// Progress is how far one pass over one kind has gone.
type Progress struct {
	Phase Phase
	Kind  string
	// Done is how many of the source's Total records the pass has
	// processed (skipped dead ones included).
	Done, Total int
	// End is set on the last call of the pass, which failed if Done <
	// Total.
	End bool
}

// Count is what Run found and did for one kind of record.
type Count struct {
	Kind string
	// Source is how many records the SQLite file holds, dead ones included.
	Source int
	// Skipped is how many of them are dead and were not copied.
	Skipped int
	// Copied is how many were written (with DryRun or after a conflict:
	// how many would be).
	Copied int
	// Present is how many were already in the destination, equal.
	Present int
	// Conflicts is how many are in the destination with different data.
	Conflicts int
	// Dest is how many records of the kind the destination holds at the
	// end: live sessions of the source's users and live revocation entries
	// in Redis; every row, dead or not, in PostgreSQL.
	Dest int
	// Verified is how many were found in the destination, equal, by the
	// verify pass.
	Verified int
}

// OK reports whether every live record of the kind was verified in the
// destination. It is false for a count of a dry run or of a run stopped by
// a conflict.
func (c Count) OK() bool {
	want := c.Source - c.Skipped
	return c.Conflicts == 0 && c.Verified == want && c.Dest >= want
}

// Conflict is a record that the destination holds with different data.
type Conflict struct {
	Kind string
	// ID names the record: a user id, a session's public id, a family id,
	// a kid, "token:JTI", "sid:SID" or "user:ID", an audit event id.
	ID string
	// Reason says what differs, e.g. "password hash differs" or
	// "username is held by user U".
	Reason string
}

func (c Conflict) String() string {
	return fmt.Sprintf("%s %s: %s", c.Kind, c.ID, c.Reason)
}

// Report is what Run did.
type Report struct {
	// Copied tells whether the copy pass ran: false for a dry run and for
	// a run stopped by a conflict, whose Counts give what would be copied.
	Copied bool
	// Counts holds one Count per kind, in the order of the Kind constants'
	// declaration.
	Counts []Count
	// Conflicts lists the first MaxConflicts conflicts.
	Conflicts []Conflict
}

// OK reports whether the copy ran and every kind was verified.
func (r *Report) OK() bool {
	if !r.Copied {
		return false
	}
	for _, c := range r.Counts {
		if !c.OK() {
			return false
		}
	}
	return true
}

// Run copies src to dst as the package documentation describes. It returns
// the report with a nil error when every live record is in the
// destination; with ErrConflict or ErrMismatch (wrapped) when not; with any
// other error when a store failed, and then the report is nil.
func Run(ctx context.Context, src *sqlite.Export, dst Destination, opts Options) (*Report, error) {
	if dst.Postgres == nil || dst.Redis == nil {
		return nil, errors.New("migrate: the destination needs both PostgreSQL and Redis")
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Progress == nil {
		opts.Progress = func(Progress) {}
	}
	total, err := src.Counts(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	ks := kinds(src, dst)
	m := &migration{opts: opts, total: total}

	check, err := m.passAll(ctx, ks, PhaseCheck)
	if err != nil {
		return nil, err
	}
	rep := &Report{Conflicts: m.conflicts}
	for _, k := range ks {
		rep.Counts = append(rep.Counts, k.counts(check[k.name()], tally{})...)
	}
	if m.nConflicts > 0 || opts.DryRun {
		if err := m.destCounts(ctx, dst, ks, rep); err != nil {
			return nil, err
		}
		if m.nConflicts > 0 {
			return rep, fmt.Errorf("%w: %d records (nothing was written)", ErrConflict, m.nConflicts)
		}
		return rep, nil
	}

	copied, err := m.passAll(ctx, ks, PhaseCopy)
	if err != nil {
		return nil, err
	}
	rep.Copied, rep.Conflicts = true, m.conflicts
	if m.nConflicts > 0 {
		// The destination changed between the check and the copy.
		rep.Counts = nil
		for _, k := range ks {
			rep.Counts = append(rep.Counts, k.counts(copied[k.name()], tally{})...)
		}
		if err := m.destCounts(ctx, dst, ks, rep); err != nil {
			return nil, err
		}
		return rep, fmt.Errorf("%w: %d records, found while copying", ErrConflict, m.nConflicts)
	}

	verified, err := m.passAll(ctx, ks, PhaseVerify)
	if err != nil {
		return nil, err
	}
	rep.Counts, rep.Conflicts = nil, m.conflicts
	for _, k := range ks {
		rep.Counts = append(rep.Counts, k.counts(copied[k.name()], verified[k.name()])...)
	}
	if err := m.destCounts(ctx, dst, ks, rep); err != nil {
		return nil, err
	}
	if !rep.OK() {
		return rep, ErrMismatch
	}
	return rep, nil
}

// migration is the state of one Run.
type migration struct {
	opts  Options
	total sqlite.ExportCounts

	mu         sync.Mutex
	conflicts  []Conflict // the first MaxConflicts of the current pass
	nConflicts int
}

// passAll runs one pass over every kind and returns the tallies by kind.
func (m *migration) passAll(ctx context.Context, ks []runner, p Phase) (map[string]tally, error) {
	m.conflicts, m.nConflicts = nil, 0
	out := make(map[string]tally, len(ks))
	for _, k := range ks {
		t, err := k.pass(ctx, m, p)
		if err != nil {
			return nil, err
		}
		out[k.name()] = t
	}
	return out, nil
}

// conflict records c.
func (m *migration) conflict(c Conflict) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nConflicts++
	if len(m.conflicts) < MaxConflicts {
		m.conflicts = append(m.conflicts, c)
	}
}

// destCounts fills the Dest of every count of rep.
func (m *migration) destCounts(ctx context.Context, dst Destination, ks []runner, rep *Report) error {
	pg, err := dst.Postgres.Counts(ctx)
	if err != nil {
		return fmt.Errorf("migrate: count the destination: %w", err)
	}
	dest := map[string]int{
		KindUsers:    pg.Users,
		KindFamilies: pg.RefreshFamilies,
		KindTokens:   pg.RefreshTokens,
		KindKeys:     pg.SigningKeys,
		KindAudit:    pg.AuditEvents,
	}
	for _, k := range ks {
		n, ok, err := k.destCount(ctx)
		if err != nil {
			return fmt.Errorf("migrate: count the destination's %s: %w", k.name(), err)
		}
		if ok {
			dest[k.name()] = n
		}
	}
	for i := range rep.Counts {
		rep.Counts[i].Dest = dest[rep.Counts[i].Kind]
	}
	return nil
}

// runner is a kind of record, whatever its type.
type runner interface {
	name() string
	pass(ctx context.Context, m *migration, p Phase) (tally, error)
	// counts turns the tallies of the copy (or check) pass and of the
	// verify pass into the kind's counts: one, or two for a kind that
	// carries another (families and their tokens).
	counts(main, verify tally) []Count
	// destCount counts the kind's records in the destination, for the
	// kinds that postgres.DB.Counts does not count (ok false for the
	// others).
	destCount(ctx context.Context) (n int, ok bool, err error)
}

// tally counts the outcomes of one pass over one kind: records, and the
// sub-records they carry (a family's tokens).
type tally struct {
	source, skipped, missing, present, copied, conflicts int
	subSource, subMissing, subPresent, subCopied         int
	subConflicts                                         int
}

// outcome is what a pass did with one record.
type outcome int

const (
	outSkipped  outcome = iota // dead: not copied
	outMissing                 // not in the destination (check, verify)
	outPresent                 // in the destination, equal
	outCopied                  // written
	outConflict                // in the destination, different
)

// result is the outcome for one record; weight is how many sub-records it
// carries.
type result struct {
	out    outcome
	weight int
}

func (t *tally) add(r result) {
	t.source++
	t.subSource += r.weight
	switch r.out {
	case outSkipped:
		t.skipped++
	case outMissing:
		t.missing++
		t.subMissing += r.weight
	case outPresent:
		t.present++
		t.subPresent += r.weight
	case outCopied:
		t.copied++
		t.subCopied += r.weight
	case outConflict:
		t.conflicts++
		t.subConflicts += r.weight
	}
}

// kind is the migration of one type of record.
type kind[T any] struct {
	kindName string
	total    func(sqlite.ExportCounts) int
	// each calls fn with every record of the source.
	each func(ctx context.Context, fn func(T) error) error
	// live reports whether a record is still to be copied at now; nil
	// copies every record.
	live func(rec T, now time.Time) bool
	// id names a record in reports and errors.
	id func(T) string
	// shard picks the worker of a record: records with the same shard are
	// processed one after the other, in the source's order.
	shard func(T) string
	// weight is how many sub-records a record carries; nil is none.
	weight func(T) int
	// prepare runs before each pass (to load what the destination gives
	// only in bulk); nil is nothing.
	prepare func(ctx context.Context) error
	// lookup returns the destination's record for rec (the one with its
	// id, or another that holds one of its unique keys), and whether there
	// is one.
	lookup func(ctx context.Context, rec T) (T, bool, error)
	// write writes rec to the destination; it returns store.ErrConflict
	// when the destination holds a record with one of its unique keys.
	write func(ctx context.Context, rec T) error
	// diff says how dst differs from src (the first field that differs),
	// or returns "" when they are equal.
	diff func(src, dst T) string
	// sub, when set, is the name of the sub-records' kind.
	sub string
	// countDest, when set, counts the kind's records in the destination
	// (for the kinds that are not in PostgreSQL).
	countDest func(ctx context.Context) (int, error)

	// present holds the ids of the records that the check pass found in
	// the destination, equal: the copy pass does not write them again
	// (which would make the destination log a refused write for each).
	mu      sync.Mutex
	present map[string]bool
}

func (k *kind[T]) name() string { return k.kindName }

func (k *kind[T]) counts(main, verify tally) []Count {
	c := Count{Kind: k.kindName, Source: main.source, Skipped: main.skipped,
		Copied: main.copied + main.missing, Present: main.present, Conflicts: main.conflicts,
		Verified: verify.present}
	if verify.source > 0 {
		// A record that died between the passes is skipped by the last.
		c.Skipped = verify.skipped
		c.Conflicts += verify.conflicts
	}
	out := []Count{c}
	if k.sub != "" {
		out = append(out, Count{Kind: k.sub, Source: main.subSource,
			Copied: main.subCopied + main.subMissing, Present: main.subPresent, Conflicts: main.subConflicts + verify.subConflicts,
			Verified: verify.subPresent})
	}
	return out
}

func (k *kind[T]) destCount(ctx context.Context) (int, bool, error) {
	if k.countDest == nil {
		return 0, false, nil
	}
	n, err := k.countDest(ctx)
	return n, true, err
}

// pass processes every record of the kind for phase p: the source is read
// in this goroutine, the destination is reached from m.opts.Workers
// workers, and the results are tallied (and reported to Progress) by one
// more goroutine.
func (k *kind[T]) pass(ctx context.Context, m *migration, p Phase) (tally, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if k.prepare != nil {
		if err := k.prepare(ctx); err != nil {
			return tally{}, fmt.Errorf("migrate %s: %w", k.kindName, err)
		}
	}
	total := k.total(m.total)
	workers := m.opts.Workers
	shards := make([]chan T, workers)
	results := make(chan result, 4*workers)
	var wg sync.WaitGroup
	for i := range shards {
		shards[i] = make(chan T, 16)
		wg.Go(func() {
			for rec := range shards[i] {
				if ctx.Err() != nil {
					continue // drain
				}
				r, err := k.handle(ctx, m, p, rec)
				if err != nil {
					cancel(fmt.Errorf("migrate %s %s: %w", k.kindName, k.id(rec), err))
					continue
				}
				results <- r
			}
		})
	}
	var t tally
	tallied := make(chan struct{})
	go func() {
		defer close(tallied)
		m.opts.Progress(Progress{Phase: p, Kind: k.kindName, Total: total})
		for r := range results {
			t.add(r)
			m.opts.Progress(Progress{Phase: p, Kind: k.kindName, Done: t.source, Total: total})
		}
	}()

	readErr := k.each(ctx, func(rec T) error {
		if k.live != nil && !k.live(rec, m.opts.Clock.Now()) {
			w := 0
			if k.weight != nil {
				w = k.weight(rec)
			}
			select {
			case results <- result{out: outSkipped, weight: w}:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		h := fnv.New64a()
		h.Write([]byte(k.shard(rec)))
		select {
		case shards[h.Sum64()%uint64(workers)] <- rec:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	for _, s := range shards {
		close(s)
	}
	wg.Wait()
	close(results)
	<-tallied
	m.opts.Progress(Progress{Phase: p, Kind: k.kindName, Done: t.source, Total: total, End: true})
	if err := context.Cause(ctx); err != nil {
		return tally{}, err
	}
	if readErr != nil {
		return tally{}, fmt.Errorf("migrate %s: %w", k.kindName, readErr)
	}
	return t, nil
}

// handle processes one record that was live when it was read.
func (k *kind[T]) handle(ctx context.Context, m *migration, p Phase, rec T) (result, error) {
	r := result{}
	if k.weight != nil {
		r.weight = k.weight(rec)
	}
	if p == PhaseCopy {
		k.mu.Lock()
		seen := k.present[k.id(rec)]
		k.mu.Unlock()
		if seen {
			r.out = outPresent
			return r, nil
		}
		err := k.write(ctx, rec)
		if err == nil {
			r.out = outCopied
			return r, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return r, err
		}
		// Something holds one of its keys: the same record, from an
		// earlier run, or a conflict.
	}
	dst, found, err := k.lookup(ctx, rec)
	if err != nil {
		return r, err
	}
	switch {
	case found:
		if f := k.diff(rec, dst); f != "" {
			m.conflict(Conflict{Kind: k.kindName, ID: k.id(rec), Reason: f})
			r.out = outConflict
			return r, nil
		}
		r.out = outPresent
		if p == PhaseCheck {
			k.mu.Lock()
			if k.present == nil {
				k.present = map[string]bool{}
			}
			k.present[k.id(rec)] = true
			k.mu.Unlock()
		}
	case k.live != nil && !k.live(rec, m.opts.Clock.Now()):
		r.out = outSkipped // it died since it was read
	case p == PhaseCopy:
		// The write found a unique key taken, and the lookup no record:
		// another record holds the key (a session id, say).
		m.conflict(Conflict{Kind: k.kindName, ID: k.id(rec), Reason: "a unique key of it is held by another record"})
		r.out = outConflict
	default:
		r.out = outMissing
	}
	return r, nil
}

package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"time"
)

// errClosed is returned by lookups on a closed DB.
var errClosed = errors.New("sqlite: database is closed")

// fastReads runs the point lookups of the hot path (SessionByHash, UserByID:
// one of each per authenticated request) on statements prepared at the
// driver level, on connections of their own. It skips database/sql's row
// machinery (Rows, Scan and their locks and reflection), about a quarter of
// the cost of such a lookup. Everything else goes through database/sql.
//
// Each slot holds one pinned connection, opened on first use; the driver
// connection and its statements are only ever touched inside sql.Conn.Raw,
// while database/sql holds the connection's lock.
type fastReads struct {
	pool  *sql.DB        // query_only connections, as many as slots
	slots chan *fastConn // a nil slot opens its connection when taken
	done  chan struct{}  // closed by close
}

// fastConn is a pinned connection and the statements prepared on it, by
// query text.
type fastConn struct {
	conn  *sql.Conn
	stmts map[string]driver.StmtQueryContext
}

// newFastReads returns a fastReads with n slots on pool.
func newFastReads(pool *sql.DB, n int) *fastReads {
	f := &fastReads{pool: pool, slots: make(chan *fastConn, n), done: make(chan struct{})}
	for range n {
		f.slots <- nil
	}
	return f
}

// queryRow runs query with args and reads its first row into dest; it
// reports whether there was one.
func (f *fastReads) queryRow(ctx context.Context, query string, args []driver.NamedValue, dest []driver.Value) (found bool, err error) {
	select {
	case <-f.done:
		return false, errClosed
	default:
	}
	var fc *fastConn
	select {
	case fc = <-f.slots:
	case <-f.done:
		return false, errClosed
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { f.slots <- fc }()
	if fc == nil {
		c, err := f.pool.Conn(ctx)
		if err != nil {
			return false, err
		}
		fc = &fastConn{conn: c, stmts: make(map[string]driver.StmtQueryContext)}
	}
	err = fc.conn.Raw(func(dc any) error {
		st, err := fc.stmt(ctx, dc, query)
		if err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, args)
		if err != nil {
			return err
		}
		err = rows.Next(dest)
		if cerr := rows.Close(); err == nil || err == io.EOF {
			found = err == nil
			err = cerr
		}
		return err
	})
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		// database/sql has closed the connection: the slot opens a new one
		// next time.
		_ = fc.conn.Close()
		fc = nil
	}
	return found, err
}

// stmt returns the statement for query on dc, the driver connection of fc,
// preparing it the first time.
func (fc *fastConn) stmt(ctx context.Context, dc any, query string) (driver.StmtQueryContext, error) {
	if st, ok := fc.stmts[query]; ok {
		return st, nil
	}
	p, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, errors.New("driver connection cannot prepare with a context")
	}
	s, err := p.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	st, ok := s.(driver.StmtQueryContext)
	if !ok {
		s.Close()
		return nil, errors.New("driver statement cannot query with a context")
	}
	fc.stmts[query] = st
	return st, nil
}

// close waits for the lookups under way, closes every connection and the
// pool. Lookups after close fail with errClosed.
func (f *fastReads) close() error {
	close(f.done)
	var errs []error
	for range cap(f.slots) {
		fc := <-f.slots
		if fc == nil {
			continue
		}
		errs = append(errs, fc.conn.Raw(func(any) error {
			var errs []error
			for _, st := range fc.stmts {
				errs = append(errs, st.(driver.Stmt).Close())
			}
			return errors.Join(errs...)
		}))
		errs = append(errs, fc.conn.Close())
	}
	errs = append(errs, f.pool.Close())
	return errors.Join(errs...)
}

// Decoders of the values the driver returns: string for TEXT, int64 for
// INTEGER, []byte for BLOB, nil for NULL. The tables are STRICT, so any
// other type is a corrupt database.

// textValue returns v as a string.
func textValue(v driver.Value) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	}
	return "", fmt.Errorf("want TEXT, got %T", v)
}

// timeValue returns v, unix nanoseconds or NULL, as a time in UTC.
func timeValue(v driver.Value) (time.Time, error) {
	switch x := v.(type) {
	case nil:
		return time.Time{}, nil
	case int64:
		return time.Unix(0, x).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("want INTEGER or NULL, got %T", v)
}

// decoder decodes driver values in turn, keeping the first error.
type decoder struct {
	vals []driver.Value
	err  error
}

// text decodes the next value as TEXT.
func (d *decoder) text() string {
	s, err := textValue(d.next())
	d.keep(err)
	return s
}

// time decodes the next value as a time.
func (d *decoder) time() time.Time {
	t, err := timeValue(d.next())
	d.keep(err)
	return t
}

func (d *decoder) next() driver.Value {
	v := d.vals[0]
	d.vals = d.vals[1:]
	return v
}

func (d *decoder) keep(err error) {
	if d.err == nil && err != nil {
		d.err = err
	}
}

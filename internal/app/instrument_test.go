package app

import (
	"context"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/metrics"
	"github.com/gatehouse-auth/gatehouse/store/sqlite"
)

// TestStoreLatencyMetrics: the request-path stores report every call's
// latency under their backend and operation.
func TestStoreLatencyMetrics(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "g.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := sqliteStores(db, clock.System{})
	defer st.close()
	m := metrics.New()
	instrument(st, m)
	if _, err := st.sessions.SessionByHash(t.Context(), make([]byte, 32)); err == nil {
		t.Fatal("found a session in an empty store")
	}
	if _, err := st.accounts.UserByID(t.Context(), "nobody"); err == nil {
		t.Fatal("found a user in an empty store")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`gatehouse_store_operation_duration_seconds_count{backend="sqlite",op="session.get"} 1`,
		`gatehouse_store_operation_duration_seconds_count{backend="sqlite",op="user.get"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the metrics lack %s", want)
		}
	}
}

// Package metrics exposes Gatehouse's Prometheus metrics.
//
// A Metrics has its own registry (never the global default one), so that
// several servers can run in one process (tests, the lab) and so that
// nothing registered by a dependency leaks into /metrics. Every label value
// comes from a fixed set or from code (ServeMux patterns, backend and
// operation names), never from a request, so the number of series stays
// bounded; a value outside its set is counted as "other".
//
// A nil *Metrics is valid and does nothing: libraries take one and run the
// same with or without metrics.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// other is the label value of anything outside a label's known set.
const other = "other"

// Label value sets. The index of a value in its slice is its index in the
// arrays of pre-built counters.
var (
	modes                = []string{"session", "token", "cookie-token", other}
	loginOutcomes        = []string{"success", "failure", "throttled", "error", other}
	verificationOutcomes = []string{"ok", "missing", "invalid", "expired", "revoked", "error", other}
)

// maxSeries bounds the label combinations of the metrics whose labels come
// from code (store backends and operations, routes): beyond it, new
// combinations are counted as "other".
const maxSeries = 500

// maxLabelLen bounds a label value that comes from code.
const maxLabelLen = 128

var (
	storeBuckets = []float64{
		10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
		1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1,
	}
	httpBuckets = []float64{
		500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10,
	}
)

// Metrics holds Gatehouse's metrics and the registry that exposes them. It
// is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	logins        [][]prometheus.Counter // [mode][outcome]
	verifications [][]prometheus.Counter // [mode][outcome]

	storeVec *prometheus.HistogramVec
	store    seriesCache[storeKey, prometheus.Observer]

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	http         seriesCache[httpKey, *httpSeries]

	auditWriteErrors prometheus.Counter
	argon2Waiting    prometheus.Gauge
	argon2InFlight   prometheus.Gauge
}

type storeKey struct{ backend, op string }

type httpKey struct {
	route string
	code  int
}

type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// New returns a Metrics with every Gatehouse metric and the Go runtime and
// process collectors registered in a registry of its own.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	logins := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_logins_total",
		Help: "Login attempts by mode (session, token, cookie-token) and outcome (success, failure, throttled, error).",
	}, []string{"mode", "outcome"})
	verifications := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_verifications_total",
		Help: "Credential verifications by mode (session, token, cookie-token) and outcome (ok, missing, invalid, expired, revoked, error).",
	}, []string{"mode", "outcome"})
	m.storeVec = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gatehouse_store_operation_duration_seconds",
		Help:    "Duration of storage operations by backend and operation.",
		Buckets: storeBuckets,
	}, []string{"backend", "op"})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_http_requests_total",
		Help: "HTTP requests by route (the ServeMux pattern) and status code.",
	}, []string{"route", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gatehouse_http_request_duration_seconds",
		Help:    "Duration of HTTP requests by route (the ServeMux pattern).",
		Buckets: httpBuckets,
	}, []string{"route"})
	m.auditWriteErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gatehouse_audit_write_errors_total",
		Help: "Audit events that could not be written to the store (they are still in the log).",
	})
	m.argon2Waiting = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gatehouse_argon2_waiting",
		Help: "Password hashes waiting for a hashing slot.",
	})
	m.argon2InFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gatehouse_argon2_in_flight",
		Help: "Password hashes being computed.",
	})
	m.reg.MustRegister(
		logins, verifications, m.storeVec, m.httpRequests, m.httpDuration,
		m.auditWriteErrors, m.argon2Waiting, m.argon2InFlight,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.logins = children(logins, loginOutcomes)
	m.verifications = children(verifications, verificationOutcomes)
	return m
}

// children builds the counter of every mode and outcome once, so that
// counting is an array lookup and an atomic add, and so that every series
// is exported from the start (at 0) rather than appearing on first use.
func children(vec *prometheus.CounterVec, outcomes []string) [][]prometheus.Counter {
	out := make([][]prometheus.Counter, len(modes))
	for i, mode := range modes {
		out[i] = make([]prometheus.Counter, len(outcomes))
		for j, outcome := range outcomes {
			out[i][j] = vec.WithLabelValues(mode, outcome)
		}
	}
	return out
}

// index returns the position of v in values, or that of "other" (the last).
func index(values []string, v string) int {
	for i, x := range values[:len(values)-1] {
		if x == v {
			return i
		}
	}
	return len(values) - 1
}

// Login counts a login attempt. mode is "session", "token" or
// "cookie-token"; outcome is "success", "failure", "throttled" or "error".
func (m *Metrics) Login(mode, outcome string) {
	if m == nil {
		return
	}
	m.logins[index(modes, mode)][index(loginOutcomes, outcome)].Inc()
}

// Verification counts the verification of a credential on a request. mode
// is "session", "token" or "cookie-token"; outcome is "ok", "missing",
// "invalid", "expired", "revoked" or "error".
func (m *Metrics) Verification(mode, outcome string) {
	if m == nil {
		return
	}
	m.verifications[index(modes, mode)][index(verificationOutcomes, outcome)].Inc()
}

// ObserveStore records the duration of a storage operation: backend is
// "memory", "sqlite", "redis" or "postgres", op a fixed name chosen by the
// backend ("session.get").
func (m *Metrics) ObserveStore(backend, op string, d time.Duration) {
	if m == nil {
		return
	}
	o := m.store.get(storeKey{backend, op}, func(k storeKey, full bool) prometheus.Observer {
		if full {
			k = storeKey{other, other}
		}
		return m.storeVec.WithLabelValues(bound(k.backend), bound(k.op))
	})
	o.Observe(d.Seconds())
}

// HTTP counts a request and records its duration. route must be the
// pattern that matched (http.Request.Pattern, such as "POST /v1/session"),
// never the path, so that a client cannot create series; "" (no pattern
// matched) is counted as "unmatched".
func (m *Metrics) HTTP(route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	s := m.http.get(httpKey{route, code}, func(k httpKey, full bool) *httpSeries {
		route := bound(k.route)
		switch {
		case full:
			route = other
		case route == "":
			route = "unmatched"
		}
		codeLabel := other
		if k.code >= 100 && k.code <= 599 {
			codeLabel = strconv.Itoa(k.code)
		}
		return &httpSeries{
			requests: m.httpRequests.WithLabelValues(route, codeLabel),
			duration: m.httpDuration.WithLabelValues(route),
		}
	})
	s.requests.Inc()
	s.duration.Observe(d.Seconds())
}

// AuditWriteError counts an audit event that the store refused. It fits
// audit.Recorder.OnStoreError.
func (m *Metrics) AuditWriteError() {
	if m == nil {
		return
	}
	m.auditWriteErrors.Inc()
}

// Argon2Waiting adds delta (+1 or -1) to the number of password hashes
// waiting for a hashing slot.
func (m *Metrics) Argon2Waiting(delta int) {
	if m == nil {
		return
	}
	m.argon2Waiting.Add(float64(delta))
}

// Argon2InFlight adds delta (+1 or -1) to the number of password hashes
// being computed.
func (m *Metrics) Argon2InFlight(delta int) {
	if m == nil {
		return
	}
	m.argon2InFlight.Add(float64(delta))
}

// Handler returns the handler of GET /metrics: the Prometheus exposition
// of m's registry. For a nil Metrics it answers 404.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// bound cuts a label value that comes from code to maxLabelLen bytes.
func bound(v string) string {
	if len(v) > maxLabelLen {
		return other
	}
	return v
}

// seriesCache maps label values that come from code to their series, so
// that the hot path skips the hashing of WithLabelValues. It holds at most
// maxSeries entries; beyond, make is told the cache is full and the series
// it returns is not cached.
type seriesCache[K comparable, V any] struct {
	m sync.Map // K → V
	n atomic.Int64
}

// get returns the series of k, building it with make on first use.
func (c *seriesCache[K, V]) get(k K, make func(k K, full bool) V) V {
	if v, ok := c.m.Load(k); ok {
		return v.(V)
	}
	if c.n.Load() >= maxSeries {
		return make(k, true)
	}
	v, loaded := c.m.LoadOrStore(k, make(k, false))
	if !loaded {
		c.n.Add(1)
	}
	return v.(V)
}

package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Names of the files Save writes and Load reads in the output directory.
// DefaultOut is the directory "gatehouse bench" writes to by default; the
// lab (in --dev) looks there, and in <data-dir>/bench, for the latest run.
const DefaultOut = "bench-out"

const (
	JSONFile = "bench.json"
	SVGFile  = "bench.svg"
)

// Result is one run of the benchmark against one deployment. Every figure
// the table and the chart show is a field of it: they are rendered from it
// and from nothing else. Times are in milliseconds rounded to the
// microsecond, throughput in requests per second rounded to a tenth, so
// that the JSON, the table and the chart spell the same numbers.
type Result struct {
	// Timestamp is when the run started, UTC.
	Timestamp time.Time `json:"timestamp"`
	// Target is the deployment's base URL.
	Target string `json:"target"`
	// GoVersion is the Go version of the bench binary.
	GoVersion string `json:"go_version"`
	// Params are the run's parameters.
	Params Params `json:"params"`
	// ElapsedMS is the whole run's wall time.
	ElapsedMS float64 `json:"elapsed_ms"`
	// Verify has one entry per credential mode, in the order session,
	// token, cookie-token.
	Verify []ModeResult `json:"verify"`
	// Revocation has one entry per revocation path.
	Revocation []RevocationResult `json:"revocation"`
	// Notes say what was skipped and why.
	Notes []string `json:"notes,omitempty"`
}

// Params are the parameters of a run.
type Params struct {
	// DurationMS is how long each verify mode was measured.
	DurationMS float64 `json:"duration_ms"`
	// Concurrency is the number of concurrent verify clients.
	Concurrency int `json:"concurrency"`
	// Repeat is the number of revocations measured per path.
	Repeat int `json:"repeat"`
	// RevokeWaitMS bounds how long a revoked credential is polled.
	RevokeWaitMS float64 `json:"revoke_wait_ms"`
	// Username is the bench user's name.
	Username string `json:"username"`
	// CreatedUser is true when the bench created its user through sign-up.
	CreatedUser bool `json:"created_user"`
}

// ModeResult is what GET /v1/verify cost with one kind of credential.
type ModeResult struct {
	// Mode is the credential mode as X-Gatehouse-Auth-Mode names it:
	// "session", "token" or "cookie-token".
	Mode string `json:"mode"`
	// Label describes the credential ("session cookie", …).
	Label string `json:"label"`
	// Requests counts the verify requests answered 200.
	Requests int64 `json:"requests"`
	// Errors counts the requests that failed or got another status.
	Errors int64 `json:"errors"`
	// ElapsedMS is the measurement's wall time, from the first request to
	// the last answer.
	ElapsedMS float64 `json:"elapsed_ms"`
	// RPS is Requests per second of ElapsedMS.
	RPS float64 `json:"rps"`
	// P50MS, P95MS and P99MS are latency percentiles of the 200 answers,
	// from sending the request to reading the whole response.
	P50MS float64 `json:"p50_ms"`
	P95MS float64 `json:"p95_ms"`
	P99MS float64 `json:"p99_ms"`
	// CredentialBytes is the size of the header line that carries the
	// credential ("Cookie: gh_session=…\r\n" or "Authorization: Bearer
	// …\r\n").
	CredentialBytes int `json:"credential_bytes"`
	// RequestBytes and ResponseBytes are the bytes written and read on the
	// connections per request, on average: request line and headers, and
	// status line, headers and body (over TLS, the encrypted records).
	RequestBytes  int `json:"request_bytes"`
	ResponseBytes int `json:"response_bytes"`
}

// How a revocation delay was obtained.
const (
	// MethodPolled: the credential was presented to GET /v1/verify again
	// and again until it was refused.
	MethodPolled = "polled"
	// MethodComputed: computed from the token's exp claim, not measured.
	MethodComputed = "computed"
)

// RevocationResult is how long a revoked credential kept working on one
// path.
type RevocationResult struct {
	// Path names the path: "session-logout", "token-revoke",
	// "forced-logout/session", "forced-logout/token",
	// "forced-logout/cookie-token" or "jwks-only".
	Path string `json:"path"`
	// Label describes it.
	Label string `json:"label"`
	// Method is MethodPolled or MethodComputed.
	Method string `json:"method"`
	// Samples is the number of revocations measured.
	Samples int `json:"samples"`
	// P50MS, P99MS and MaxMS summarise the delays. A polled delay runs
	// from the answer to the revocation request to the first answer that
	// refused the credential, so it includes one verify round trip.
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
	// AcceptedAfter counts the verify answers that still accepted a
	// credential after its revocation had been answered (0 when revocation
	// takes effect at once).
	AcceptedAfter int `json:"accepted_after"`
	// TimedOut counts the credentials still accepted when the wait ran out;
	// their delay is recorded as the wait.
	TimedOut int `json:"timed_out"`
}

// Save writes r as JSONFile and its chart as SVGFile in dir, creating dir
// when needed.
func Save(dir string, r *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: create output directory: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: encode result: %w", err)
	}
	if err := writeFile(filepath.Join(dir, JSONFile), append(b, '\n')); err != nil {
		return err
	}
	svg, err := r.svg()
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, SVGFile), svg)
}

// writeFile replaces path with data through a temporary file, so that a
// reader (the lab) never sees half a file.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	return nil
}

// Load reads the result that Save wrote in dir.
func Load(dir string) (*Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, JSONFile))
	if err != nil {
		return nil, fmt.Errorf("bench: load result: %w", err)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("bench: load result: %w", err)
	}
	return &r, nil
}

// percentile returns the p-th percentile (0 < p ≤ 100) of sorted, by the
// nearest-rank method: the smallest sample that at least p percent of the
// samples do not exceed. It returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// p*n/100 rather than p/100*n: exact whenever the rank is whole.
	rank := int(math.Ceil(p * float64(n) / 100))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// summary is the percentiles of a set of durations.
type summary struct {
	p50, p95, p99, max time.Duration
}

// summarize sorts samples in place and returns their percentiles.
func summarize(samples []time.Duration) summary {
	slices.Sort(samples)
	s := summary{
		p50: percentile(samples, 50),
		p95: percentile(samples, 95),
		p99: percentile(samples, 99),
	}
	if len(samples) > 0 {
		s.max = samples[len(samples)-1]
	}
	return s
}

// ms is d in milliseconds, rounded to the microsecond.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// roundTenth rounds x to one decimal.
func roundTenth(x float64) float64 { return math.Round(x*10) / 10 }

// Formats shared by the table and the chart: a figure is spelled the same
// everywhere.
func fmtMS(v float64) string           { return strconv.FormatFloat(v, 'f', 3, 64) }
func fmtRPS(v float64) string          { return strconv.FormatFloat(v, 'f', 1, 64) }
func fmtInt[T int | int64](v T) string { return strconv.FormatInt(int64(v), 10) }

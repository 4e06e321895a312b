package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func durations(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, v := range ms {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

// TestPercentile checks the nearest-rank percentiles.
func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample, p50", durations(7), 50, 7 * time.Millisecond},
		{"one sample, p99", durations(7), 99, 7 * time.Millisecond},
		{"two samples, p50 is the lower", durations(1, 2), 50, time.Millisecond},
		{"two samples, p51 is the upper", durations(1, 2), 51, 2 * time.Millisecond},
		{"three samples, p50 is the middle", durations(1, 2, 3), 50, 2 * time.Millisecond},
		{"1..100 p50", hundred, 50, 50 * time.Millisecond},
		{"1..100 p95", hundred, 95, 95 * time.Millisecond},
		{"1..100 p99", hundred, 99, 99 * time.Millisecond},
		{"1..100 p100", hundred, 100, 100 * time.Millisecond},
		{"20 samples p99 is the max", durations(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 99, 20 * time.Millisecond},
		{"20 samples p95 is the 19th", durations(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 95, 19 * time.Millisecond},
		{"p0 is the min", durations(4, 5, 6), 0, 4 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

// TestPercentileSummary checks summarize sorts and reads the percentiles.
func TestPercentileSummary(t *testing.T) {
	s := summarize(durations(9, 1, 5, 3, 7))
	want := summary{p50: 5 * time.Millisecond, p95: 9 * time.Millisecond, p99: 9 * time.Millisecond, max: 9 * time.Millisecond}
	if s != want {
		t.Errorf("summarize = %+v, want %+v", s, want)
	}
	if ms(1234567*time.Nanosecond) != 1.235 {
		t.Errorf("ms(1.234567ms) = %v, want 1.235", ms(1234567*time.Nanosecond))
	}
	if roundTenth(1234.56) != 1234.6 {
		t.Errorf("roundTenth(1234.56) = %v", roundTenth(1234.56))
	}
}

// TestBenchProgressTerminal checks the bar redrawn in place.
func TestBenchProgressTerminal(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, true, 5)
	p.begin("verifying session mode")
	p.set(0.5)
	p.end()
	p.begin("x")
	p.close()
	want := "\r[--------------------]   0% verifying session mode" +
		"\r[##------------------]  10% verifying session mode" +
		"\r[####----------------]  20% x                     " +
		"\n"
	if b.String() != want {
		t.Errorf("terminal progress\n got %q\nwant %q", b.String(), want)
	}
}

// TestBenchProgressPlain checks one line per step and nothing in between.
func TestBenchProgressPlain(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, false, 4)
	p.step("creating the bench user")
	for _, s := range []string{"a", "b", "c", "d"} {
		p.begin(s)
		p.set(0.3)
		p.set(0.9)
		p.end()
	}
	p.step("done")
	p.close()
	want := "[--------------------]   0% creating the bench user\n" +
		"[--------------------]   0% a\n" +
		"[#####---------------]  25% b\n" +
		"[##########----------]  50% c\n" +
		"[###############-----]  75% d\n" +
		"[####################] 100% done\n"
	if b.String() != want {
		t.Errorf("plain progress\n got %q\nwant %q", b.String(), want)
	}
}

// TestBenchProgressBounds clamps fractions and steps, and a nil writer
// draws nothing.
func TestBenchProgressBounds(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, true, 2)
	p.set(7)
	if !strings.Contains(b.String(), "[##########----------]  50%") {
		t.Errorf("a fraction above 1 should count as 1: %q", b.String())
	}
	p.end()
	p.end()
	p.end()
	p.set(-3)
	if !strings.HasSuffix(strings.TrimRight(b.String(), " "), "[####################] 100%") {
		t.Errorf("extra ends should stop at 100%%: %q", b.String())
	}
	n := newProgress(nil, true, 3)
	n.begin("x")
	n.set(0.5)
	n.tick(time.Now(), time.Second)()
	n.close()
}

func jwt(payload string) string {
	return "eyJhbGciOiJFZERTQSJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
}

// TestBenchTokenExpiry reads exp from tokens and refuses malformed ones.
func TestBenchTokenExpiry(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want time.Time // zero: an error
	}{
		{"integer exp", jwt(`{"exp":1795309326,"iat":1795308726}`), time.Unix(1795309326, 0).UTC()},
		{"fractional exp", jwt(`{"exp":1795309326.5}`), time.Unix(1795309326, 5e8).UTC()},
		{"no exp", jwt(`{"iat":1}`), time.Time{}},
		{"string exp", jwt(`{"exp":"1795309326"}`), time.Time{}},
		{"zero exp", jwt(`{"exp":0}`), time.Time{}},
		{"negative exp", jwt(`{"exp":-5}`), time.Time{}},
		{"huge exp", jwt(`{"exp":1e300}`), time.Time{}},
		{"not JSON", jwt(`exp`), time.Time{}},
		{"two parts", "a.b", time.Time{}},
		{"four parts", "a.b.c.d", time.Time{}},
		{"padded base64", "a." + base64.URLEncoding.EncodeToString([]byte(`{"exp":179530932}`)) + ".c", time.Time{}},
		{"standard base64 alphabet", "a.eyJleHAiOjE3OTUzMDkzMjYsIng/Ijo+fQ.c", time.Time{}},
		{"empty", "", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tokenExpiry(tt.raw)
			if tt.want.IsZero() {
				if err == nil {
					t.Fatalf("tokenExpiry = %v, want an error", got)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("tokenExpiry = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// FuzzBenchTokenExpiry: any input either fails or gives a time after the
// epoch; nothing panics.
func FuzzBenchTokenExpiry(f *testing.F) {
	f.Add(jwt(`{"exp":1795309326}`))
	f.Add(jwt(`{"exp":1.5}`))
	f.Add(jwt(`{"exp":null}`))
	f.Add(jwt(`{"exp":1}{"exp":2}`))
	f.Add("..")
	f.Add("a.%%%.b")
	f.Add(strings.Repeat(".", 5000))
	f.Fuzz(func(t *testing.T, raw string) {
		exp, err := tokenExpiry(raw)
		if err == nil && !exp.After(time.Unix(0, 0)) {
			t.Fatalf("tokenExpiry(%q) = %v without an error", raw, exp)
		}
	})
}

// TestBenchConfig checks the validation of Config before anything is
// sent.
func TestBenchConfig(t *testing.T) {
	ok := Config{URL: "http://127.0.0.1:8080"}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"https with a path", func(c *Config) { c.URL = "https://auth.example.com/gate/" }, ""},
		{"named user", func(c *Config) { c.Username, c.Password = "alice", "secret-password" }, ""},
		{"ftp", func(c *Config) { c.URL = "ftp://127.0.0.1" }, "scheme"},
		{"no scheme", func(c *Config) { c.URL = "127.0.0.1:8080" }, "url"},
		{"host without scheme", func(c *Config) { c.URL = "localhost" }, "scheme"},
		{"no host", func(c *Config) { c.URL = "http://" }, "no host"},
		{"credentials in URL", func(c *Config) { c.URL = "http://u:p@127.0.0.1" }, "credentials"},
		{"query", func(c *Config) { c.URL = "http://127.0.0.1/?a=b" }, "query"},
		{"username without password", func(c *Config) { c.Username = "alice" }, "both"},
		{"password without username", func(c *Config) { c.Password = "x" }, "both"},
		{"concurrency too high", func(c *Config) { c.Concurrency = 100000 }, "concurrency"},
		{"negative concurrency", func(c *Config) { c.Concurrency = -1 }, "concurrency"},
		{"repeat too high", func(c *Config) { c.Repeat = 1000 }, "repeat"},
		{"duration too short", func(c *Config) { c.Duration = time.Millisecond }, "duration"},
		{"duration too long", func(c *Config) { c.Duration = time.Hour }, "duration"},
		{"revoke wait too long", func(c *Config) { c.RevokeWait = time.Hour }, "revoke wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			_, err := c.check()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("check: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("check = %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
	c := ok
	u, err := c.check()
	if err != nil {
		t.Fatal(err)
	}
	if c.Duration != DefaultDuration || c.Concurrency != DefaultConcurrency || c.Repeat != DefaultRepeat || c.RevokeWait != DefaultRevokeWait {
		t.Errorf("defaults not filled in: %+v", c)
	}
	if u.String() != "http://127.0.0.1:8080" {
		t.Errorf("target %q", u)
	}
	// A refused configuration sends nothing and says why.
	if _, err := Run(context.Background(), Config{URL: "ftp://x"}); err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Errorf("Run with a bad URL = %v", err)
	}
}

// TestBenchIsLoopback decides which targets are on this machine.
func TestBenchIsLoopback(t *testing.T) {
	tests := []struct {
		url  string
		want bool
	}{
		{"http://127.0.0.1:8080", true},
		{"http://127.1.2.3", true},
		{"http://localhost:8080", true},
		{"http://LOCALHOST", true},
		{"http://[::1]:8080", true},
		{"http://10.0.0.1", false},
		{"http://example.com", false},
		{"http://127.0.0.1.example.com", false},
		{"://", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			if got := IsLoopback(tt.url); got != tt.want {
				t.Errorf("IsLoopback(%q) = %v, want %v", tt.url, got, tt.want)
			}
		})
	}
}

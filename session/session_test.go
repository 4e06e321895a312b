package session_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store/memory"
)

func newManager(t *testing.T, cfg session.Config) (*session.Manager, *clock.Fake) {
	t.Helper()
	fc := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg.Clock = fc
	m, err := session.NewManager(memory.New(fc), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m, fc
}

func TestConfigRefused(t *testing.T) {
	cases := []struct {
		name string
		cfg  session.Config
	}{
		{"idle longer than absolute", session.Config{IdleTimeout: 2 * time.Hour, AbsoluteTimeout: time.Hour}},
		{"negative idle", session.Config{IdleTimeout: -time.Minute}},
		{"touch interval over half the idle timeout", session.Config{IdleTimeout: 10 * time.Minute, TouchInterval: 6 * time.Minute}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := session.NewManager(memory.New(nil), tc.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestLifetimes(t *testing.T) {
	cases := []struct {
		name  string
		steps []time.Duration
		live  bool
	}{
		{"fresh", []time.Duration{0}, true},
		{"idle limit minus a second", []time.Duration{30*time.Minute - time.Second}, true},
		{"idle limit", []time.Duration{30 * time.Minute}, false},
		{"kept alive by use", []time.Duration{20 * time.Minute, 20 * time.Minute, 20 * time.Minute, 20 * time.Minute}, true},
		{"absolute limit despite use", append(stepsOf(10*time.Minute, 71), 10*time.Minute), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, fc := newManager(t, session.Config{})
			secret, _, err := m.Create(t.Context(), "u1", session.Meta{})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range tc.steps {
				fc.Advance(d)
				if _, err = m.Lookup(t.Context(), secret); err != nil {
					break
				}
			}
			if live := err == nil; live != tc.live {
				t.Fatalf("live = %v (err %v), want %v", live, err, tc.live)
			}
			if err != nil && !errors.Is(err, session.ErrNoSession) {
				t.Fatalf("error %v is not ErrNoSession", err)
			}
		})
	}
}

func stepsOf(d time.Duration, n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = d
	}
	return s
}

func TestShorterTimeoutAppliesToExistingSessions(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := memory.New(fc)
	long, _ := session.NewManager(st, session.Config{Clock: fc, IdleTimeout: 2 * time.Hour, AbsoluteTimeout: 24 * time.Hour})
	secret, _, err := long.Create(t.Context(), "u1", session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	short, _ := session.NewManager(st, session.Config{Clock: fc, IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour})
	fc.Advance(11 * time.Minute)
	s, err := short.Lookup(t.Context(), secret)
	if !errors.Is(err, session.ErrNoSession) || !errors.Is(err, session.ErrExpired) || s == nil || s.UserID != "u1" {
		t.Fatalf("Lookup under a shorter idle timeout: %+v, %v; want the session with ErrExpired", s, err)
	}
	if _, err := short.Lookup(t.Context(), secret); !errors.Is(err, session.ErrNoSession) || errors.Is(err, session.ErrExpired) {
		t.Fatalf("Lookup after the expired session was deleted: %v", err)
	}
}

func TestParseSecret(t *testing.T) {
	m, _ := newManager(t, session.Config{})
	secret, _, err := m.Create(t.Context(), "u1", session.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	enc := secret.Encode()
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"own encoding", enc, true},
		{"empty", "", false},
		{"short", enc[:42], false},
		{"long", enc + "A", false},
		{"padded", enc + "=", false},
		{"standard alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(enc) + strings.Repeat("+", 0), !strings.ContainsAny(enc, "-_")},
		{"non-canonical last character", enc[:42] + string(enc[42]^1), false},
		{"control character", enc[:42] + "\n", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := session.ParseSecret(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseSecret(%q): err %v, want ok=%v", tc.in, err, tc.ok)
			}
			if err == nil && got.Encode() != tc.in {
				t.Fatal("round trip changed the secret")
			}
		})
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	m, _ := newManager(t, session.Config{})
	secret, _, _ := m.Create(t.Context(), "u1", session.Meta{})
	for _, s := range []string{secret.String(), secret.GoString(), secret.LogValue().String()} {
		if strings.Contains(s, secret.Encode()) {
			t.Fatal("a formatted secret shows its value")
		}
	}
}

func TestRevoke(t *testing.T) {
	m, _ := newManager(t, session.Config{})
	a, sa, _ := m.Create(t.Context(), "u1", session.Meta{})
	b, _, _ := m.Create(t.Context(), "u1", session.Meta{})
	c, sc, _ := m.Create(t.Context(), "u2", session.Meta{})

	if _, err := m.Revoke(t.Context(), "u1", sc.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("revoking another user's session: %v", err)
	}
	if _, err := m.Lookup(t.Context(), c); err != nil {
		t.Fatal("another user's session was affected")
	}
	ended, err := m.RevokeAll(t.Context(), "u1", &a)
	if err != nil || len(ended) != 1 {
		t.Fatalf("RevokeAll keeping a: %v %v", ended, err)
	}
	if _, err := m.Lookup(t.Context(), b); !errors.Is(err, session.ErrNoSession) {
		t.Fatal("b survived")
	}
	if _, err := m.Revoke(t.Context(), "u1", sa.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lookup(t.Context(), a); !errors.Is(err, session.ErrNoSession) {
		t.Fatal("a survived")
	}
	if err := m.Delete(t.Context(), a); err != nil {
		t.Fatal("deleting twice is an error:", err)
	}
}

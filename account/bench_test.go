package account_test

import (
	"context"
	"testing"

	"github.com/gatehouse-auth/gatehouse/account"
)

// BenchmarkHashPassword measures one Argon2id hash with the default params
// (m=19456 KiB, t=2, p=1): the cost of a registration or a password change.
func BenchmarkHashPassword(b *testing.B) {
	f := newFixture(b, account.Config{Params: account.DefaultParams()})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := account.HashPassword(ctx, f.svc, password); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticate measures a login with the default params on the
// memory store: the right password, and an unknown user, which must cost
// the same.
func BenchmarkAuthenticate(b *testing.B) {
	f := newFixture(b, account.Config{Params: account.DefaultParams()})
	mustRegister(b, f.svc, "alice", password)
	ctx := context.Background()
	cases := []struct {
		name, username, password string
		wantErr                  error
	}{
		{"right password", "alice", password, nil},
		{"wrong password", "alice", "wrong password", account.ErrBadCredentials},
		{"unknown user", "mallory", password, account.ErrBadCredentials},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.svc.Authenticate(ctx, c.username, c.password); err != c.wantErr {
					b.Fatalf("Authenticate = %v, want %v", err, c.wantErr)
				}
			}
		})
	}
}

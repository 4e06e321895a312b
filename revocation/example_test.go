package revocation_test

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/store/memory"
)

// A forced logout at 12:00:00.700 refuses a token whose iat is 12:00:00 and
// accepts one issued from 12:00:01 on.
func ExampleIndex_RevokeUser() {
	ctx := context.Background()
	logout := time.Date(2030, 3, 4, 12, 0, 0, 700_000_000, time.UTC)
	c := clock.NewFake(logout)
	x, err := revocation.New(ctx, memory.NewRevocations(c), c)
	if err != nil {
		panic(err)
	}
	accessTTL := 10 * time.Minute
	if err := x.RevokeUser(ctx, "user-1", logout, logout.Add(accessTTL)); err != nil {
		panic(err)
	}
	for _, iat := range []string{"11:59:59", "12:00:00", "12:00:01"} {
		t, _ := time.Parse("2006-01-02 15:04:05", "2030-03-04 "+iat)
		r, _ := x.Revoked(ctx, "some-jti", "some-sid", "user-1", t)
		fmt.Println(iat, "revoked:", r)
	}
	// Output:
	// 11:59:59 revoked: true
	// 12:00:00 revoked: true
	// 12:00:01 revoked: false
}

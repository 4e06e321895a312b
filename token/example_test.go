package token_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/revocation"
	"github.com/gatehouse-auth/gatehouse/store/memory"
	"github.com/gatehouse-auth/gatehouse/token"
)

// setup builds what a server holds: a key ring, an Issuer, a revocation
// index and a Verifier, on memory stores and a fake clock.
func setup() (*clock.Fake, *token.Issuer, *revocation.Index, *token.Verifier) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2030, time.January, 1, 12, 0, 0, 0, time.UTC))
	kek := make([]byte, keys.KEKSize) // in production: keys.ParseKEK(the configured key)
	if _, err := rand.Read(kek); err != nil {
		panic(err)
	}
	ring, err := keys.NewRing(ctx, memory.NewKeys(), keys.RingConfig{KEK: kek, Clock: clk, PublishDelay: keys.DefaultPublishDelay})
	if err != nil {
		panic(err)
	}
	issuer, err := token.NewIssuer(ring, token.IssuerConfig{
		Issuer: "https://auth.example.com", Audience: "api.example.com", Clock: clk,
	})
	if err != nil {
		panic(err)
	}
	revoked, err := revocation.New(ctx, memory.NewRevocations(clk), clk)
	if err != nil {
		panic(err)
	}
	verifier, err := token.NewVerifier(ring, token.VerifierConfig{
		Issuer: "https://auth.example.com", Audience: "api.example.com", Clock: clk, Revocation: revoked,
	})
	if err != nil {
		panic(err)
	}
	return clk, issuer, revoked, verifier
}

func ExampleIssuer_Issue() {
	_, issuer, _, _ := setup()
	raw, claims, err := issuer.Issue(context.Background(), "user-42", "family-7", []string{"admin"}, "read")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("segments:", strings.Count(raw, ".")+1)
	fmt.Println("sub:", claims.Subject, "sid:", claims.SID, "roles:", claims.Roles)
	fmt.Println("lifetime:", claims.ExpiresAt.Sub(claims.IssuedAt))
	// Output:
	// segments: 3
	// sub: user-42 sid: family-7 roles: [admin]
	// lifetime: 10m0s
}

func ExampleVerifier_Verify() {
	ctx := context.Background()
	clk, issuer, revoked, verifier := setup()
	raw, _, _ := issuer.Issue(ctx, "user-42", "family-7", nil, "")

	claims, err := verifier.Verify(ctx, raw)
	fmt.Println("fresh:", claims.Subject, err)

	// Tampered: one character of the signature changed.
	last := raw[len(raw)-1:]
	tampered := raw[:len(raw)-1] + map[bool]string{true: "B", false: "A"}[last == "A"]
	_, err = verifier.Verify(ctx, tampered)
	fmt.Println("tampered:", errors.Is(err, token.ErrInvalidToken))

	// Logout: the token's family is revoked, and the token with it.
	if err := revoked.RevokeSID(ctx, claims.SID, claims.ExpiresAt); err != nil {
		fmt.Println(err)
		return
	}
	_, err = verifier.Verify(ctx, raw)
	fmt.Println("after logout:", errors.Is(err, token.ErrRevoked), token.Reason(err))

	// Another token, after its lifetime and the leeway.
	raw2, _, _ := issuer.Issue(ctx, "user-42", "family-8", nil, "")
	clk.Advance(10*time.Minute + token.DefaultLeeway)
	_, err = verifier.Verify(ctx, raw2)
	fmt.Println("later:", errors.Is(err, token.ErrExpired), token.Reason(err))
	// Output:
	// fresh: user-42 <nil>
	// tampered: true
	// after logout: true revoked
	// later: true exp passed
}

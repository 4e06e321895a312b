package keys_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/keys"
	"github.com/gatehouse-auth/gatehouse/store/memory"
)

func ExampleRing_Rotate() {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2030, time.January, 1, 12, 0, 0, 0, time.UTC))
	kek := make([]byte, keys.KEKSize) // in production: keys.ParseKEK(the configured key)
	if _, err := rand.Read(kek); err != nil {
		panic(err)
	}
	ring, err := keys.NewRing(ctx, memory.NewKeys(), keys.RingConfig{
		KEK: kek, Clock: clk, PublishDelay: keys.DefaultPublishDelay,
	})
	if err != nil {
		panic(err)
	}
	first, _ := ring.Signer(ctx)

	kid, signsFrom, err := ring.Rotate(ctx)
	if err != nil {
		panic(err)
	}
	_, _, published := ring.Public(kid)
	now, _ := ring.Signer(ctx)
	fmt.Println("new key published:", published, "signing:", now.KID() == kid)
	fmt.Println("signs from:", signsFrom.Format(time.Kitchen))

	clk.Set(signsFrom)
	now, _ = ring.Signer(ctx)
	_, _, oldPublished := ring.Public(first.KID())
	fmt.Println("at", signsFrom.Format(time.Kitchen), "signing:", now.KID() == kid, "old key still verifies:", oldPublished)

	clk.Advance(keys.DefaultTokenLifetime + keys.DefaultLeeway)
	_, _, oldPublished = ring.Public(first.KID())
	fmt.Println("after its tokens expired, old key published:", oldPublished)
	// Output:
	// new key published: true signing: false
	// signs from: 12:05PM
	// at 12:05PM signing: true old key still verifies: true
	// after its tokens expired, old key published: false
}

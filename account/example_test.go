package account_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/store/memory"
)

// Register a user, then log in with a variant spelling of the username.
func Example() {
	ctx := context.Background()
	// The zero Config hashes with the OWASP minimum (Argon2id, 19 MiB,
	// 2 passes) and bounds concurrent hashes by the number of CPUs.
	users, err := account.New(memory.New(clock.System{}), account.Config{})
	if err != nil {
		log.Fatal(err)
	}

	u, err := users.Register(ctx, "Alice", "correct horse battery staple")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("registered", u.Username)

	u, err = users.Authenticate(ctx, "ＡＬＩＣＥ", "correct horse battery staple")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("logged in as", u.Username)

	_, err = users.Authenticate(ctx, "alice", "wrong password")
	fmt.Println(errors.Is(err, account.ErrBadCredentials))

	_, err = users.Register(ctx, "bob", "hunter2")
	var policy *account.PolicyError
	if errors.As(err, &policy) {
		fmt.Println("refused: password", policy.Reason)
	}
	// Output:
	// registered alice
	// logged in as alice
	// true
	// refused: password must be at least 8 characters
}

func ExampleNormalizeUsername() {
	for _, in := range []string{"Alice", "ＡＬＩＣＥ", "alice\n"} {
		name, err := account.NormalizeUsername(in)
		fmt.Printf("%q %q %v\n", in, name, err)
	}
	// Output:
	// "Alice" "alice" <nil>
	// "ＡＬＩＣＥ" "alice" <nil>
	// "alice\n" "" account: invalid username: must not contain control characters
}

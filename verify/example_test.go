package verify_test

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/token"
	"github.com/gatehouse-auth/gatehouse/verify"
)

// A service that trusts the Gatehouse server at auth.example.com: New
// discovers its keys and follows its revocations; Close stops that.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := verify.New(ctx, verify.Config{
		Issuer:     "https://auth.example.com",
		Audience:   "https://api.example.com",
		ServiceKey: os.Getenv("GATEHOUSE_SERVICE_KEY"),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	claims, err := v.Verify(context.Background(), os.Getenv("ACCESS_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("user %s, roles %v", claims.Subject, claims.Roles)
}

// Verify in an HTTP handler: a refused token is 401, a token whose
// revocation status is unknown (the feed is cut off) is 503.
func ExampleVerifier_Verify() {
	var v *verify.Verifier // from verify.New
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "credential required", http.StatusUnauthorized)
			return
		}
		claims, err := v.Verify(r.Context(), raw)
		switch {
		case errors.Is(err, verify.ErrStale):
			http.Error(w, "authorization temporarily unavailable", http.StatusServiceUnavailable)
			return
		case errors.Is(err, token.ErrInvalidToken), errors.Is(err, token.ErrExpired), errors.Is(err, token.ErrRevoked):
			log.Printf("token refused: %s", token.Reason(err))
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		case err != nil:
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("hello, " + claims.Subject))
	})
	http.Handle("/api/", handler)
}

// Verification without revocation must be asked for by name: a revoked
// token is then accepted until it expires.
func ExampleConfig_unsafeNoRevocationFeed() {
	v, err := verify.New(context.Background(), verify.Config{
		Issuer:                 "https://auth.example.com",
		Audience:               "https://api.example.com",
		UnsafeNoRevocationFeed: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
}

package account

import "context"

// SetHashHook makes every Argon2id computation of s call f while it holds its
// hashing slot. Tests use it to count and hold computations in flight.
func SetHashHook(s *Service, f func()) { s.hashHook = f }

// HashPassword hashes password with the service's current parameters.
func HashPassword(ctx context.Context, s *Service, password string) (string, error) {
	return s.hashPassword(ctx, password)
}

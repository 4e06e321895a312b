// Package store holds what every storage backend shares: the sentinel errors
// that backends return and domain packages branch on. The interfaces a backend
// implements are declared by the domain packages that use them
// (account.Store, session.Store, audit.Store, ...); the backends live in the
// sub-packages memory and sqlite, and all of them pass the conformance suite
// in storetest.
package store

import "errors"

var (
	// ErrNotFound is returned when a record does not exist or has expired.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict is returned when a record with the same unique key exists.
	ErrConflict = errors.New("store: conflict")
)

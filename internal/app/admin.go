package app

import (
	"context"
	"fmt"

	"github.com/gatehouse-auth/gatehouse/account"
	"github.com/gatehouse-auth/gatehouse/audit"
	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/keys"
)

// AdminStores are the stores the admin commands (user, keys) work on: the
// SQLite file, or PostgreSQL when cfg selects several instances, exactly
// as serve would.
type AdminStores struct {
	Accounts account.Store
	Audit    audit.Store
	Keys     keys.Store
	close    func()
}

// Close closes the stores.
func (a *AdminStores) Close() { a.close() }

// OpenAdminStores opens the stores cfg selects for the admin commands.
func OpenAdminStores(ctx context.Context, cfg *config.Config, c clock.Clock) (*AdminStores, error) {
	st, err := openStores(ctx, cfg, c)
	if err != nil {
		return nil, err
	}
	return &AdminStores{Accounts: st.accounts, Audit: st.audit, Keys: st.keys, close: st.close}, nil
}

// AdminRing opens the signing key ring on the admin stores.
func AdminRing(ctx context.Context, cfg *config.Config, st *AdminStores, c clock.Clock) (*keys.Ring, error) {
	kek, err := LoadKEK(cfg)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	return newRing(ctx, cfg, st.Keys, c, kek)
}

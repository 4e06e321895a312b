package token

import (
	"fmt"
	"testing"
	"time"
)

func TestCacheBounds(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	entry := func(exp time.Time) *cacheEntry {
		return &cacheEntry{claims: Claims{ExpiresAt: exp}, kid: "k", alg: "EdDSA"}
	}
	c := newCache(4)
	for i := range 4 {
		c.put(fmt.Sprint("live-", i), entry(now.Add(time.Hour)), now)
	}
	// Full: a new entry evicts one, the size stays bounded.
	for i := range 20 {
		c.put(fmt.Sprint("more-", i), entry(now.Add(time.Hour)), now)
		if len(c.m) > 4 {
			t.Fatalf("cache grew to %d entries", len(c.m))
		}
	}
	if c.get("more-19") == nil {
		t.Fatal("the newest entry is not cached")
	}
	// Expired entries go first.
	c = newCache(4)
	c.put("expired", entry(now), now)
	for i := range 3 {
		c.put(fmt.Sprint("live-", i), entry(now.Add(time.Hour)), now)
	}
	c.put("new", entry(now.Add(time.Hour)), now)
	if c.get("expired") != nil || c.get("new") == nil || len(c.m) != 4 {
		t.Fatalf("eviction kept the expired entry: %d entries", len(c.m))
	}
	for i := range 3 {
		if c.get(fmt.Sprint("live-", i)) == nil {
			t.Fatalf("live entry %d evicted while an expired one was there", i)
		}
	}
	// A second put of the same token keeps the first entry.
	first := c.get("new")
	c.put("new", entry(now.Add(2*time.Hour)), now)
	if c.get("new") != first {
		t.Fatal("a repeated put replaced the entry")
	}
}

package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-auth/gatehouse/revocation"
)

var _ revocation.Store = (*Revocations)(nil)

// revocationBucketCount is how many hashes hold the revocation entries, so
// that a cluster spreads them over its masters.
const revocationBucketCount = 16

// Revocations is the revocation.Store of a Store: the entries live in 16
// hashes (Prv:0 … Prv:15), a field per entry, so that Load and Purge read
// only the entries and never scan the key space. Redis expires a bucket only
// when all its entries are dead; Purge removes dead entries one by one (the
// server calls it every minute). Every write is published on the channel
// of Subscribe in the same script. It is safe for concurrent use.
type Revocations struct {
	s *Store
}

// Revocations returns the revocation.Store of s.
func (s *Store) Revocations() *Revocations { return &Revocations{s: s} }

// kindChars are the field prefixes of the kinds, indexed by kind-1.
var kindChars = [...]byte{'t', 's', 'u'}

// revocationField returns the hash field of an entry.
func revocationField(k revocation.Kind, id string) string {
	return string([]byte{kindChars[k-1], ':'}) + id
}

// parseRevocationField returns the kind and id of a hash field.
func parseRevocationField(f string) (revocation.Kind, string, bool) {
	if len(f) < 2 || f[1] != ':' {
		return 0, "", false
	}
	for i, c := range kindChars {
		if f[0] == c {
			return revocation.Kind(i + 1), f[2:], true
		}
	}
	return 0, "", false
}

// bucket returns the key of the hash that holds field.
func (r *Revocations) bucket(field string) string {
	h := fnv.New32a()
	h.Write([]byte(field))
	return r.s.revocationBuckets[h.Sum32()%revocationBucketCount]
}

// putRevocationScript merges an entry into its bucket, keeping the later
// until and the later before, and publishes the write.
//
// KEYS: bucket. ARGV: field, until, before ("" for none), the bucket's TTL
// in ms, channel, message.
var putRevocationScript = redis.NewScript(`
local u, b = ARGV[2], ARGV[3]
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
	local ou, ob = string.sub(old, 1, 29), string.sub(old, 30)
	if ou > u then u = ou end
	if ob > b then b = ob end
end
redis.call('HSET', KEYS[1], ARGV[1], u .. b)
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
	redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
`)

// purgeRevocationsScript deletes the dead entries of a bucket and returns
// how many.
//
// KEYS: bucket. ARGV: now.
var purgeRevocationsScript = redis.NewScript(`
local n = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
	if not (ARGV[1] < string.sub(all[i + 1], 1, 29)) then
		redis.call('HDEL', KEYS[1], all[i])
		n = n + 1
	end
end
return n
`)

// DenyToken records the jti until `until`, or later if it already is.
func (r *Revocations) DenyToken(ctx context.Context, jti string, until time.Time) error {
	return r.put(ctx, "deny token", revocation.Entry{Kind: revocation.KindToken, ID: jti, Until: until})
}

// RevokeSID records the sid until `until`, or later if it already is.
func (r *Revocations) RevokeSID(ctx context.Context, sid string, until time.Time) error {
	return r.put(ctx, "revoke sid", revocation.Entry{Kind: revocation.KindSID, ID: sid, Until: until})
}

// RevokeUser records the user's revoke-all time until `until`; the stored
// times only ever move later.
func (r *Revocations) RevokeUser(ctx context.Context, userID string, before, until time.Time) error {
	return r.put(ctx, "revoke user", revocation.Entry{Kind: revocation.KindUser, ID: userID, Before: before, Until: until})
}

// put merges e into its bucket and publishes it.
func (r *Revocations) put(ctx context.Context, what string, e revocation.Entry) error {
	now := r.s.clock.Now()
	field := revocationField(e.Kind, e.ID)
	before := ""
	if e.Kind == revocation.KindUser {
		before = encodeTime(e.Before)
	}
	msg, err := encodeEntry(e)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	err = putRevocationScript.Run(ctx, r.s.client, []string{r.bucket(field)},
		field, encodeTime(e.Until), before, ttl(now, e.Until), r.s.revocationChannel, msg).Err()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// decodeRevocation parses a bucket's field and value.
func decodeRevocation(field, value string) (revocation.Entry, error) {
	kind, id, ok := parseRevocationField(field)
	if !ok {
		return revocation.Entry{}, fmt.Errorf("revocation field %q: unknown kind", field)
	}
	e := revocation.Entry{Kind: kind, ID: id}
	if len(value) != timeLen && len(value) != 2*timeLen {
		return revocation.Entry{}, fmt.Errorf("revocation %q: value of %d bytes", field, len(value))
	}
	var err error
	if e.Until, err = decodeTime(value[:timeLen]); err != nil {
		return revocation.Entry{}, fmt.Errorf("revocation %q: until: %w", field, err)
	}
	if len(value) == 2*timeLen {
		if e.Before, err = decodeTime(value[timeLen:]); err != nil {
			return revocation.Entry{}, fmt.Errorf("revocation %q: before: %w", field, err)
		}
	}
	return e, nil
}

// Load returns every live entry.
func (r *Revocations) Load(ctx context.Context) ([]revocation.Entry, error) {
	now := r.s.clock.Now()
	cmds := make([]*redis.MapStringStringCmd, revocationBucketCount)
	_, err := r.s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, key := range r.s.revocationBuckets {
			cmds[i] = p.HGetAll(ctx, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load revocations: %w", err)
	}
	var out []revocation.Entry
	for _, cmd := range cmds {
		for field, value := range cmd.Val() {
			e, err := decodeRevocation(field, value)
			if err != nil {
				return nil, fmt.Errorf("load revocations: %w", err)
			}
			if now.Before(e.Until) {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// Purge deletes the entries that are no longer live and returns how many
// it deleted.
func (r *Revocations) Purge(ctx context.Context) (int, error) {
	now := encodeTime(r.s.clock.Now())
	cmds := make([]*redis.Cmd, revocationBucketCount)
	_, _ = r.s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, key := range r.s.revocationBuckets {
			cmds[i] = purgeRevocationsScript.Eval(ctx, p, []string{key}, now)
		}
		return nil
	})
	total := 0
	var errs []error
	for _, cmd := range cmds {
		n, err := cmd.Int()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		total += n
	}
	if len(errs) > 0 {
		return total, fmt.Errorf("purge revocations: %w", errors.Join(errs...))
	}
	return total, nil
}

// entryMessage is the JSON of an entry published on the revocation channel.
type entryMessage struct {
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Before string `json:"before,omitempty"`
	Until  string `json:"until"`
}

// encodeEntry returns the message published for e.
func encodeEntry(e revocation.Entry) (string, error) {
	m := entryMessage{Kind: e.Kind.String(), ID: e.ID, Until: e.Until.UTC().Format(time.RFC3339Nano)}
	if e.Kind == revocation.KindUser {
		m.Before = e.Before.UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// decodeEntry parses a message published on the revocation channel.
func decodeEntry(payload string) (revocation.Entry, error) {
	var m entryMessage
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		return revocation.Entry{}, fmt.Errorf("revocation message: %w", err)
	}
	var e revocation.Entry
	switch m.Kind {
	case "token":
		e.Kind = revocation.KindToken
	case "sid":
		e.Kind = revocation.KindSID
	case "user":
		e.Kind = revocation.KindUser
	default:
		return revocation.Entry{}, fmt.Errorf("revocation message: kind %q", m.Kind)
	}
	if m.ID == "" {
		return revocation.Entry{}, errors.New("revocation message: no id")
	}
	e.ID = m.ID
	var err error
	if e.Until, err = time.Parse(time.RFC3339Nano, m.Until); err != nil {
		return revocation.Entry{}, fmt.Errorf("revocation message: until: %w", err)
	}
	e.Until = e.Until.UTC()
	if m.Before != "" {
		if e.Before, err = time.Parse(time.RFC3339Nano, m.Before); err != nil {
			return revocation.Entry{}, fmt.Errorf("revocation message: before: %w", err)
		}
		e.Before = e.Before.UTC()
	}
	return e, nil
}

// Subscribe calls fn with every entry that any Store with the same prefix
// writes, until ctx ends; pass the Apply method of a revocation.Index to
// keep it up to date with the other instances. An error from fn skips the
// entry (Apply refuses only invalid entries). Each time the subscription is established,
// the first time included, fn gets every live entry (Load), so that nothing
// written while it was not subscribed is missed; entries may therefore come
// more than once, which merging makes harmless. fn is called from one
// goroutine at a time and should be quick, since notifications wait for it.
// Messages that are not entries are skipped.
//
// Subscribe blocks: it returns nil when ctx ends, or an error when the Store
// is closed. A lost connection is re-established by itself.
func (r *Revocations) Subscribe(ctx context.Context, fn func(revocation.Entry) error) error {
	return r.s.subscribe(ctx, r.s.revocationChannel,
		func(ctx context.Context) error {
			es, err := r.Load(ctx)
			if err != nil {
				return err
			}
			for _, e := range es {
				_ = fn(e)
			}
			return nil
		},
		func(payload string) {
			if e, err := decodeEntry(payload); err == nil {
				_ = fn(e)
			}
		})
}

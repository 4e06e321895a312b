package redisstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-auth/gatehouse/session"
	"github.com/gatehouse-auth/gatehouse/store"
)

var _ session.Store = (*Store)(nil)

// recordFields are the fields of a session record, in the order the scripts
// return them.
var recordFields = []string{"id", "c", "l", "ie", "e", "ua", "ip"}

// lookupScript reads a session on a single server in one round trip: the
// owner pointer KEYS[1], then the record ARGV[1]..owner..ARGV[2]'s fields,
// answered as {owner, fields...}; nil when there is no pointer. The field
// list must be recordFields.
var lookupScript = redis.NewScript(`
local user = redis.call('GET', KEYS[1])
if not user then return false end
local vals = redis.call('HMGET', ARGV[1] .. user .. ARGV[2], 'id', 'c', 'l', 'ie', 'e', 'ua', 'ip')
local out = {user}
for i = 1, #vals do out[i + 1] = vals[i] end
return out
`)

// userTag returns the hash-tagged part of every key of userID's sessions.
func (s *Store) userTag(userID string) string { return s.prefix + "{u:" + userID + "}" }

// indexKey returns the key of userID's set of session hashes.
func (s *Store) indexKey(userID string) string { return s.userTag(userID) + ":idx" }

// recordPrefix returns the key of userID's session record with the hex hash
// appended.
func (s *Store) recordPrefix(userID string) string { return s.userTag(userID) + ":s:" }

// hashKey returns the key of the pointer from a hex hash to its owner.
func (s *Store) hashKey(hx string) string { return s.prefix + "sh:" + hx }

// idKey returns the key of the pointer from a public id to its hex hash.
func (s *Store) idKey(id string) string { return s.prefix + "sid:" + id }

// live reports whether sess is live at now.
func live(sess *session.Session, now time.Time) bool {
	return now.Before(sess.IdleExpiresAt) && now.Before(sess.ExpiresAt)
}

// earlier returns the earlier of a and b.
func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// newestFirst orders sessions by CreatedAt, newest first, then by id.
func newestFirst(a, b *session.Session) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// decodeSession builds the session of userID with hash hash from the
// values of recordFields.
func decodeSession(userID string, hash []byte, vals []any) (*session.Session, error) {
	if len(vals) != len(recordFields) {
		return nil, fmt.Errorf("session record of %d fields", len(vals))
	}
	var f [7]string
	for i, v := range vals {
		s, ok := str(v)
		if !ok {
			return nil, fmt.Errorf("session record without %q", recordFields[i])
		}
		f[i] = s
	}
	sess := &session.Session{ID: f[0], Hash: bytes.Clone(hash), UserID: userID, UserAgent: f[5], IP: f[6]}
	for i, t := range []*time.Time{&sess.CreatedAt, &sess.LastSeenAt, &sess.IdleExpiresAt, &sess.ExpiresAt} {
		var err error
		if *t, err = decodeTime(f[1+i]); err != nil {
			return nil, fmt.Errorf("session record field %q: %w", recordFields[1+i], err)
		}
	}
	return sess, nil
}

// decodeSessions decodes a script's list of sessions of userID: for each,
// the hex hash and then the values of recordFields.
func decodeSessions(userID string, vals []any) ([]*session.Session, error) {
	const stride = 1 + 7
	if len(vals)%stride != 0 {
		return nil, fmt.Errorf("session list of %d values", len(vals))
	}
	out := make([]*session.Session, 0, len(vals)/stride)
	for i := 0; i < len(vals); i += stride {
		hx, _ := str(vals[i])
		hash, err := hex.DecodeString(hx)
		if err != nil {
			return nil, fmt.Errorf("session index member %q: %w", hx, err)
		}
		sess, err := decodeSession(userID, hash, vals[i+1:i+stride])
		if err != nil {
			return nil, err
		}
		out = append(out, sess)
	}
	return out, nil
}

// createSessionScript writes a session record and adds it to its user's
// index, unless the record exists (0).
//
// KEYS: record, index. ARGV: hex hash, id, created, last seen, idle expiry,
// expiry, user agent, ip, the record's TTL and the index's TTL in ms.
var createSessionScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'c', ARGV[3], 'l', ARGV[4], 'ie', ARGV[5], 'e', ARGV[6], 'ua', ARGV[7], 'ip', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[9])
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[10]) then
	redis.call('PEXPIRE', KEYS[2], ARGV[10])
end
return 1
`)

// touchSessionScript sets the last use and idle expiry of a live session
// (1), or finds none (0).
//
// KEYS: record. ARGV: now, last seen, idle expiry, the record's TTL in ms.
var touchSessionScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'ie', 'e')
if not (r[1] and r[2] and ARGV[1] < r[1] and ARGV[1] < r[2]) then return 0 end
redis.call('HSET', KEYS[1], 'l', ARGV[2], 'ie', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// deleteSessionScript deletes a session record, removes it from its user's
// index and publishes the deletion. It returns {id}, or {} when there was
// no record.
//
// KEYS: record, index. ARGV: hex hash, channel, user id.
var deleteSessionScript = redis.NewScript(`
redis.call('SREM', KEYS[2], ARGV[1])
local id = redis.call('HGET', KEYS[1], 'id')
if not id then return {} end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], cjson.encode({user = ARGV[3], id = id, hash = ARGV[1]}))
return {id}
`)

// deleteUserSessionScript deletes the session record if it has the id and
// is live, and publishes the deletion. It returns the record's fields, or
// {} when it deleted nothing.
//
// KEYS: record, index. ARGV: hex hash, id, now, channel, user id.
var deleteUserSessionScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'id', 'c', 'l', 'ie', 'e', 'ua', 'ip')
if not (r[1] and r[4] and r[5] and r[1] == ARGV[2] and ARGV[3] < r[4] and ARGV[3] < r[5]) then return {} end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[4], cjson.encode({user = ARGV[5], id = r[1], hash = ARGV[1]}))
return r
`)

// listSessionsScript returns every session record of a user's index: the
// hex hash, then the record's fields. Members whose record Redis has
// expired are removed from the index.
//
// KEYS: index. ARGV: the record key prefix.
var listSessionsScript = redis.NewScript(`
local out = {}
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
	local r = redis.call('HMGET', ARGV[1] .. h, 'id', 'c', 'l', 'ie', 'e', 'ua', 'ip')
	if r[1] then
		out[#out + 1] = h
		for i = 1, 7 do out[#out + 1] = r[i] end
	else
		redis.call('SREM', KEYS[1], h)
	end
end
return out
`)

// deleteUserSessionsScript deletes every session of a user but the one
// with the hex hash keep ("" keeps none), publishes each deletion and
// returns the deleted records like listSessionsScript.
//
// KEYS: index. ARGV: the record key prefix, keep, channel, user id.
var deleteUserSessionsScript = redis.NewScript(`
local out = {}
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
	if ARGV[2] == '' or h ~= ARGV[2] then
		local k = ARGV[1] .. h
		local r = redis.call('HMGET', k, 'id', 'c', 'l', 'ie', 'e', 'ua', 'ip')
		redis.call('SREM', KEYS[1], h)
		if r[1] then
			redis.call('DEL', k)
			redis.call('PUBLISH', ARGV[3], cjson.encode({user = ARGV[4], id = r[1], hash = h}))
			out[#out + 1] = h
			for i = 1, 7 do out[#out + 1] = r[i] end
		end
	end
end
return out
`)

// purgeUserScript deletes a user's dead sessions. It returns the earliest
// expiry of the sessions left ("" when none is left), then the hex hash and
// id of each deleted session.
//
// KEYS: index. ARGV: the record key prefix, now.
var purgeUserScript = redis.NewScript(`
local out = {''}
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
	local k = ARGV[1] .. h
	local r = redis.call('HMGET', k, 'id', 'ie', 'e')
	if not (r[1] and r[2] and r[3]) then
		redis.call('SREM', KEYS[1], h)
	elseif ARGV[2] < r[2] and ARGV[2] < r[3] then
		local x = r[2]
		if r[3] < x then x = r[3] end
		if out[1] == '' or x < out[1] then out[1] = x end
	else
		redis.call('DEL', k)
		redis.call('SREM', KEYS[1], h)
		out[#out + 1] = h
		out[#out + 1] = r[1]
	end
end
return out
`)

// scheduleScript schedules a user's visit by Purge no later than a time,
// and keeps the schedule at least as long as a TTL.
//
// KEYS: schedule. ARGV: Unix milliseconds, user id, TTL in ms.
var scheduleScript = redis.NewScript(`
redis.call('ZADD', KEYS[1], 'LT', ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
	redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
`)

// CreateSession inserts sess. A session with the same hash or id, even a
// dead one that Purge has not deleted yet, is store.ErrConflict.
func (s *Store) CreateSession(ctx context.Context, sess *session.Session) error {
	now := s.clock.Now()
	hx := hex.EncodeToString(sess.Hash)
	ends := earlier(sess.IdleExpiresAt, sess.ExpiresAt)
	hk, ik := s.hashKey(hx), s.idKey(sess.ID)
	pointerTTL := time.Duration(ttl(now, sess.ExpiresAt)) * time.Millisecond

	// Claim the hash and the id, which live in other slots than the record.
	var byHash, byID *redis.BoolCmd
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		byHash = p.SetNX(ctx, hk, sess.UserID, pointerTTL)
		byID = p.SetNX(ctx, ik, hx, pointerTTL)
		return nil
	})
	release := func() {
		var keys []string
		if byHash.Err() == nil && byHash.Val() {
			keys = append(keys, hk)
		}
		if byID.Err() == nil && byID.Val() {
			keys = append(keys, ik)
		}
		s.del(context.WithoutCancel(ctx), keys...)
	}
	if err != nil {
		release()
		return fmt.Errorf("create session: %w", err)
	}
	if !byHash.Val() || !byID.Val() {
		release()
		return store.ErrConflict
	}

	created, err := createSessionScript.Run(ctx, s.client,
		[]string{s.recordPrefix(sess.UserID) + hx, s.indexKey(sess.UserID)},
		hx, sess.ID, encodeTime(sess.CreatedAt), encodeTime(sess.LastSeenAt),
		encodeTime(sess.IdleExpiresAt), encodeTime(sess.ExpiresAt), sess.UserAgent, sess.IP,
		ttl(now, ends), ttl(now, sess.ExpiresAt)).Int()
	if err != nil {
		// The script may have run: the pointers stay, and expire with
		// the session it may have written.
		return fmt.Errorf("create session: %w", err)
	}
	if created == 0 {
		release()
		return store.ErrConflict
	}
	// After the record, so that Purge, which unschedules a user before it
	// looks at its sessions, never misses this one (see Purge).
	err = scheduleScript.Run(ctx, s.client, []string{s.scheduleKey},
		ends.UnixMilli(), sess.UserID, ttl(now, sess.ExpiresAt)).Err()
	if err != nil {
		return fmt.Errorf("create session: schedule purge: %w", err)
	}
	return nil
}

// del deletes keys, one command per key so that a cluster may spread them,
// and ignores failures: the keys expire on their own.
func (s *Store) del(ctx context.Context, keys ...string) {
	if len(keys) == 0 {
		return
	}
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, k)
		}
		return nil
	})
}

// owner returns the user id that the pointer of the hex hash hx names, or
// "" and false when there is none.
func (s *Store) owner(ctx context.Context, hx string) (string, bool, error) {
	user, err := s.client.Get(ctx, s.hashKey(hx)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return user, true, nil
}

// SessionByHash returns the live session whose secret hashes to hash.
func (s *Store) SessionByHash(ctx context.Context, hash []byte) (*session.Session, error) {
	now := s.clock.Now()
	hx := hex.EncodeToString(hash)
	var user string
	var vals []any
	if s.cluster == nil {
		// One round trip on a single server: the pointer and the record
		// in one script. (It names the record's key at run time, which
		// Redis Cluster forbids; a cluster takes the two-step path.)
		res, err := lookupScript.Run(ctx, s.client, []string{s.hashKey(hx)},
			s.prefix+"{u:", "}:s:"+hx).Slice()
		if errors.Is(err, redis.Nil) {
			return nil, store.ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("load session: %w", err)
		}
		if len(res) != 1+len(recordFields) {
			return nil, fmt.Errorf("load session: lookup script answered %d values", len(res))
		}
		u, ok := res[0].(string)
		if !ok {
			return nil, errors.New("load session: lookup script answered no owner")
		}
		user, vals = u, res[1:]
	} else {
		u, ok, err := s.owner(ctx, hx)
		if err != nil {
			return nil, fmt.Errorf("load session: %w", err)
		}
		if !ok {
			return nil, store.ErrNotFound
		}
		user = u
		if vals, err = s.client.HMGet(ctx, s.recordPrefix(user)+hx, recordFields...).Result(); err != nil {
			return nil, fmt.Errorf("load session: %w", err)
		}
	}
	if vals[0] == nil {
		return nil, store.ErrNotFound
	}
	sess, err := decodeSession(user, hash, vals)
	if err != nil {
		return nil, fmt.Errorf("load session: %w", err)
	}
	if !live(sess, now) {
		return nil, store.ErrNotFound
	}
	return sess, nil
}

// TouchSession sets LastSeenAt and IdleExpiresAt of the live session with
// that hash.
func (s *Store) TouchSession(ctx context.Context, hash []byte, lastSeen, idleExpires time.Time) error {
	now := s.clock.Now()
	hx := hex.EncodeToString(hash)
	user, ok, err := s.owner(ctx, hx)
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	if !ok {
		return store.ErrNotFound
	}
	n, err := touchSessionScript.Run(ctx, s.client, []string{s.recordPrefix(user) + hx},
		encodeTime(now), encodeTime(lastSeen), encodeTime(idleExpires), ttl(now, idleExpires)).Int()
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// DeleteSession deletes the session with that hash, if any, and publishes
// the deletion.
func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	hx := hex.EncodeToString(hash)
	user, ok, err := s.owner(ctx, hx)
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	if !ok {
		return nil
	}
	res, err := deleteSessionScript.Run(ctx, s.client,
		[]string{s.recordPrefix(user) + hx, s.indexKey(user)}, hx, s.sessionChannel, user).Slice()
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	if len(res) == 0 {
		return nil
	}
	id, _ := str(res[0])
	s.del(ctx, s.hashKey(hx), s.idKey(id))
	return nil
}

// SessionsByUser returns the user's live sessions, newest first.
func (s *Store) SessionsByUser(ctx context.Context, userID string) ([]*session.Session, error) {
	now := s.clock.Now()
	res, err := listSessionsScript.Run(ctx, s.client, []string{s.indexKey(userID)}, s.recordPrefix(userID)).Slice()
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	all, err := decodeSessions(userID, res)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	out := slices.DeleteFunc(all, func(sess *session.Session) bool { return !live(sess, now) })
	slices.SortFunc(out, newestFirst)
	return out, nil
}

// DeleteUserSession deletes the user's live session with public id id,
// publishes the deletion and returns the session.
func (s *Store) DeleteUserSession(ctx context.Context, userID, id string) (*session.Session, error) {
	now := s.clock.Now()
	hx, err := s.client.Get(ctx, s.idKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("delete user session: %w", err)
	}
	hash, err := hex.DecodeString(hx)
	if err != nil {
		return nil, fmt.Errorf("delete user session: id pointer %q: %w", hx, err)
	}
	res, err := deleteUserSessionScript.Run(ctx, s.client,
		[]string{s.recordPrefix(userID) + hx, s.indexKey(userID)},
		hx, id, encodeTime(now), s.sessionChannel, userID).Slice()
	if err != nil {
		return nil, fmt.Errorf("delete user session: %w", err)
	}
	if len(res) == 0 {
		return nil, store.ErrNotFound
	}
	s.del(ctx, s.hashKey(hx), s.idKey(id))
	sess, err := decodeSession(userID, hash, res)
	if err != nil {
		return nil, fmt.Errorf("delete user session: %w", err)
	}
	return sess, nil
}

// DeleteUserSessions deletes every session of the user except the one whose
// hash is keep (nil keeps none), in one atomic step, publishes each deletion
// and returns the live sessions it deleted, newest first.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string, keep []byte) ([]*session.Session, error) {
	now := s.clock.Now()
	res, err := deleteUserSessionsScript.Run(ctx, s.client, []string{s.indexKey(userID)},
		s.recordPrefix(userID), hex.EncodeToString(keep), s.sessionChannel, userID).Slice()
	if err != nil {
		return nil, fmt.Errorf("delete user sessions: %w", err)
	}
	deleted, err := decodeSessions(userID, res)
	if err != nil {
		return nil, fmt.Errorf("delete user sessions: %w", err)
	}
	keys := make([]string, 0, 2*len(deleted))
	for _, sess := range deleted {
		keys = append(keys, s.hashKey(hex.EncodeToString(sess.Hash)), s.idKey(sess.ID))
	}
	s.del(ctx, keys...)
	out := slices.DeleteFunc(deleted, func(sess *session.Session) bool { return !live(sess, now) })
	slices.SortFunc(out, newestFirst)
	return out, nil
}

// Purge limits: users visited per round trip, and rounds per call; what is
// left waits for the next call.
const (
	purgeBatch     = 256
	purgeMaxRounds = 64
)

// Purge deletes the dead sessions and returns how many it deleted. Lookups
// never return dead sessions, and Redis drops their records by itself
// (after the margin), so Purge only frees memory sooner and keeps the
// indexes short.
//
// It visits only the users whose earliest session expiry has passed, from
// the schedule Psx: it removes them from the schedule, deletes their dead
// sessions and schedules them again at the earliest expiry of what is left.
// CreateSession schedules a user after it writes the session, so a session
// created during a visit is either seen by the visit or scheduled again
// after it. A touch does not reschedule: a user is visited at the first
// idle expiry of a session it extends, and rescheduled then. A session that
// dies less than a millisecond after a visit waits for a later one.
func (s *Store) Purge(ctx context.Context) (int, error) {
	now := s.clock.Now()
	nowMs := now.UnixMilli()
	nowEnc := encodeTime(now)
	total := 0
	for range purgeMaxRounds {
		users, err := s.client.ZRangeByScore(ctx, s.scheduleKey, &redis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(nowMs, 10), Count: purgeBatch,
		}).Result()
		if err != nil {
			return total, fmt.Errorf("purge sessions: %w", err)
		}
		if len(users) == 0 {
			break
		}
		members := make([]any, len(users))
		for i, u := range users {
			members[i] = u
		}
		if err := s.client.ZRem(ctx, s.scheduleKey, members...).Err(); err != nil {
			return total, fmt.Errorf("purge sessions: %w", err)
		}
		cmds := make([]*redis.Cmd, len(users))
		_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, u := range users {
				cmds[i] = purgeUserScript.Eval(ctx, p, []string{s.indexKey(u)}, s.recordPrefix(u), nowEnc)
			}
			return nil
		})
		// Every reply is used, even when some failed: the users are
		// already off the schedule.
		var pointers []string
		var next []redis.Z
		var errs []error
		for i, cmd := range cmds {
			n, when, deleted, err := purgeReply(cmd)
			if err != nil {
				errs = append(errs, fmt.Errorf("user %q: %w", users[i], err))
				continue
			}
			if !when.IsZero() {
				next = append(next, redis.Z{Score: float64(max(when.UnixMilli(), nowMs+1)), Member: users[i]})
			}
			for _, k := range deleted {
				pointers = append(pointers, s.hashKey(k[0]), s.idKey(k[1]))
			}
			total += n
		}
		if len(next) > 0 {
			if err := s.client.ZAddLT(ctx, s.scheduleKey, next...).Err(); err != nil {
				return total, fmt.Errorf("purge sessions: reschedule: %w", err)
			}
		}
		s.del(ctx, pointers...)
		if len(errs) > 0 {
			return total, fmt.Errorf("purge sessions: %w", errors.Join(errs...))
		}
	}
	return total, nil
}

// purgeReply decodes a reply of purgeUserScript: how many sessions it
// deleted, the earliest expiry left (zero when none), and the hex hash and
// id of each deleted session.
func purgeReply(cmd *redis.Cmd) (int, time.Time, [][2]string, error) {
	res, err := cmd.Slice()
	if err != nil {
		return 0, time.Time{}, nil, err
	}
	if len(res)%2 != 1 {
		return 0, time.Time{}, nil, fmt.Errorf("purge reply of %d values", len(res))
	}
	var when time.Time
	if enc, _ := str(res[0]); enc != "" {
		if when, err = decodeTime(enc); err != nil {
			return 0, time.Time{}, nil, err
		}
	}
	deleted := make([][2]string, 0, len(res)/2)
	for j := 1; j < len(res); j += 2 {
		hx, _ := str(res[j])
		id, _ := str(res[j+1])
		deleted = append(deleted, [2]string{hx, id})
	}
	return len(deleted), when, deleted, nil
}

// SessionEvent is a notification about sessions, received by
// SubscribeSessions.
type SessionEvent struct {
	// UserID, ID and Hash name a deleted session. They are empty when
	// Resync is set.
	UserID string
	ID     string
	Hash   []byte
	// Resync is set on the event that comes each time the subscription is
	// established, the first time included: notifications sent before it
	// may have been missed, so whatever the subscriber derived from
	// sessions (a cache) must be dropped.
	Resync bool
}

// sessionMessage is the JSON published for a deleted session; the hash is
// in hex.
type sessionMessage struct {
	User string `json:"user"`
	ID   string `json:"id"`
	Hash string `json:"hash"`
}

// decodeSessionEvent parses a message published for a deleted session.
func decodeSessionEvent(payload string) (SessionEvent, error) {
	var m sessionMessage
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		return SessionEvent{}, fmt.Errorf("session event: %w", err)
	}
	hash, err := hex.DecodeString(m.Hash)
	if err != nil {
		return SessionEvent{}, fmt.Errorf("session event: hash: %w", err)
	}
	return SessionEvent{UserID: m.User, ID: m.ID, Hash: hash}, nil
}

// SubscribeSessions calls fn for each session that any Store with the same
// prefix deletes (DeleteSession, DeleteUserSession, DeleteUserSessions; not
// Purge, which deletes only dead sessions), until ctx ends. Each time the
// subscription is established, the first time included, fn gets an event
// with Resync set. fn is called from one goroutine at a time, in order; it
// should be quick, since notifications wait for it. Messages that are not
// session events are skipped.
//
// SubscribeSessions blocks: it returns nil when ctx ends, or an error when
// the Store is closed. A lost connection is re-established by itself.
func (s *Store) SubscribeSessions(ctx context.Context, fn func(SessionEvent)) error {
	return s.subscribe(ctx, s.sessionChannel,
		func(context.Context) error {
			fn(SessionEvent{Resync: true})
			return nil
		},
		func(payload string) {
			if e, err := decodeSessionEvent(payload); err == nil {
				fn(e)
			}
		})
}

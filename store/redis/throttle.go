package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-auth/gatehouse/throttle"
)

var _ throttle.Limiter = (*Limiter)(nil)

// The Limiter follows throttle.Memory exactly: failures are counted per
// slot of Window/slotsPerWindow, ring slots are kept, at most maxInFlight
// attempts are reserved at once, and keys longer than maxKeyLen bytes are
// replaced by their SHA-256 digest.
const (
	slotsPerWindow = 60
	ring           = slotsPerWindow + 1
	maxInFlight    = 64
	maxKeyLen      = 128
)

// maxLimiterSpan bounds Window + AttemptHold: the script computes with
// nanoseconds relative to now in Lua's doubles, exact below 2^53.
const maxLimiterSpan = time.Duration(1 << 52)

// Limiter is a throttle.Limiter whose counts live in Redis, so that every
// instance sees every attempt: the account and address limits hold across
// instances. Its decisions are those of throttle.Memory, to the
// nanosecond, made in one script per call, so that a Check and its
// reservation are atomic across instances too. A key's state is one hash,
// which Redis expires once it no longer matters (Window + AttemptHold +
// the margin after its last change); a Success or Release that leaves
// nothing to remember deletes it.
//
// Get one with Store.Limiter. It is safe for concurrent use.
type Limiter struct {
	s      *Store
	prefix string
	width  int64 // slot width in nanoseconds
	// args are the script's arguments after the operation and the time.
	args []any
}

// Limiter returns the limiter named name that applies p. Limiters of
// different names count separately ("account", "ip"); instances must use
// the same name and policy for the same limit. name may not contain ':',
// '{' or '}'.
func (s *Store) Limiter(name string, p throttle.Policy) (*Limiter, error) {
	if name == "" || strings.ContainsAny(name, ":{}") {
		return nil, fmt.Errorf("redisstore: limiter name %q: want a non-empty name without ':', '{' or '}'", name)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("redisstore: limiter %s: %w", name, err)
	}
	if p.Window+throttle.AttemptHold > maxLimiterSpan {
		return nil, fmt.Errorf("redisstore: limiter %s: window %v is too long", name, p.Window)
	}
	width := (int64(p.Window) + slotsPerWindow - 1) / slotsPerWindow
	keep := time.Duration(ring*width) + throttle.AttemptHold + expiryMargin
	return &Limiter{
		s:      s,
		prefix: s.prefix + "t:" + name + ":",
		width:  width,
		args: []any{
			width, ring, int64(throttle.AttemptHold), p.Max, p.Free,
			int64(p.BaseDelay), int64(p.MaxDelay), maxInFlight, keep.Milliseconds(),
		},
	}, nil
}

// limiterScript applies one operation to a key's state and returns the
// wait in nanoseconds (Check), or 0.
//
// Times are "slot:offset": the slot index (Unix nanoseconds divided by the
// slot width, floored) and the nanoseconds into the slot. Lua computes in
// doubles, exact for integers below 2^53: slot indexes and offsets are, and
// so are the differences between recent times, which rel computes.
//
// The state: h, the newest slot seen; f, "slot:count,…" the failures per
// slot, oldest first; lf, the latest failure; p, "time,…" the attempts in
// flight.
//
// KEYS: state. ARGV: operation (check, failure, success, release), now's
// slot, now's offset, slot width, ring, attempt hold, max, free, base delay,
// max delay, max in flight, TTL in ms.
var limiterScript = redis.NewScript(`
local op = ARGV[1]
local ns, no = tonumber(ARGV[2]), tonumber(ARGV[3])
local width, ringSize, hold = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local cap, free = tonumber(ARGV[7]), tonumber(ARGV[8])
local base, maxDelay, maxInFlight = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local ending = op == 'success' or op == 'release'

local st = redis.call('HMGET', KEYS[1], 'h', 'f', 'lf', 'p')
if ending and not st[1] then return 0 end

-- rel returns the nanoseconds from now to the time t ("slot:offset").
local function rel(t)
	local s, o = string.match(t, '^(%-?%d+):(%d+)$')
	return (tonumber(s) - ns) * width + (tonumber(o) - no)
end

-- Refresh: move the head to now, forget the slots that left the window
-- and the attempts that lapsed.
local head, headStr = ns, ARGV[2]
if st[1] and tonumber(st[1]) > ns then head, headStr = tonumber(st[1]), st[1] end
local slots, failures = {}, 0
if st[2] then
	for k, c in string.gmatch(st[2], '(%-?%d+):(%d+)') do
		local kn = tonumber(k)
		if kn > head - ringSize then
			slots[#slots + 1] = {kn, tonumber(c), k}
			failures = failures + tonumber(c)
		end
	end
	table.sort(slots, function(a, b) return a[1] < b[1] end)
end
local pending = {}
if st[4] then
	for t in string.gmatch(st[4], '[^,]+') do
		local r = rel(t)
		if -r < hold then pending[#pending + 1] = {r, t} end
	end
	table.sort(pending, function(a, b) return a[1] < b[1] end)
end
local lastFail = st[3]

local function save()
	if ending and failures == 0 and #pending == 0 then
		redis.call('DEL', KEYS[1])
		return
	end
	local f, p = {}, {}
	for i, s in ipairs(slots) do f[i] = s[3] .. ':' .. string.format('%d', s[2]) end
	for i, x in ipairs(pending) do p[i] = x[2] end
	redis.call('HSET', KEYS[1], 'h', headStr)
	if #f > 0 then redis.call('HSET', KEYS[1], 'f', table.concat(f, ',')) else redis.call('HDEL', KEYS[1], 'f') end
	if lastFail then redis.call('HSET', KEYS[1], 'lf', lastFail) end
	if #p > 0 then redis.call('HSET', KEYS[1], 'p', table.concat(p, ',')) else redis.call('HDEL', KEYS[1], 'p') end
	redis.call('PEXPIRE', KEYS[1], ARGV[12])
end

if op == 'check' then
	local n = failures + #pending
	if n >= cap then
		-- Wait until enough failures and attempts have left the window.
		local need, p = n - cap + 1, 1
		for _, s in ipairs(slots) do
			local leaves = (s[1] + ringSize - ns) * width - no
			while p <= #pending and pending[p][1] + hold <= leaves do
				need = need - 1
				if need == 0 then return math.max(pending[p][1] + hold, 1) end
				p = p + 1
			end
			need = need - s[2]
			if need <= 0 then return math.max(leaves, 1) end
		end
		while p <= #pending do
			need = need - 1
			if need <= 0 then return math.max(pending[p][1] + hold, 1) end
			p = p + 1
		end
		return ringSize * width
	end
	if #pending >= maxInFlight then
		return math.max(pending[1][1] + hold, 1)
	end
	-- The backoff follows the failures only.
	if lastFail and failures >= free then
		local shift, d = failures - free, maxDelay
		if shift < 62 then d = math.min(base * 2 ^ shift, maxDelay) end
		local w = rel(lastFail) + d
		if w > 0 then return w end
	end
	pending[#pending + 1] = {0, ARGV[2] .. ':' .. ARGV[3]}
	save()
	return 0
end

if #pending > 0 then table.remove(pending, 1) end
if op == 'failure' then
	local last = slots[#slots]
	if last and last[1] == head then
		if last[2] < 4294967295 then
			last[2] = last[2] + 1
			failures = failures + 1
		end
	else
		slots[#slots + 1] = {head, 1, headStr}
		failures = failures + 1
	end
	if not lastFail or rel(lastFail) < 0 then lastFail = ARGV[2] .. ':' .. ARGV[3] end
elseif op == 'success' then
	slots, failures = {}, 0
end
save()
return 0
`)

// errEmptyKey is returned for an empty key.
var errEmptyKey = errors.New("redisstore: limiter: empty key")

// compactKey returns key, or a fixed-size digest of it when it is longer
// than maxKeyLen, as throttle.Memory stores it.
func compactKey(key string) string {
	if len(key) <= maxKeyLen {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// run applies op to key's state and returns the script's answer in
// nanoseconds.
func (l *Limiter) run(ctx context.Context, op, key string) (time.Duration, error) {
	if key == "" {
		return 0, errEmptyKey
	}
	now := l.s.clock.Now().UnixNano()
	slot := now / l.width
	if now%l.width < 0 {
		slot--
	}
	args := make([]any, 0, 3+len(l.args))
	args = append(args, op, slot, now-slot*l.width)
	args = append(args, l.args...)
	n, err := limiterScript.Run(ctx, l.s.client, []string{l.prefix + compactKey(key)}, args...).Int64()
	if err != nil {
		return 0, fmt.Errorf("throttle %s: %w", op, err)
	}
	return time.Duration(n), nil
}

// Check reports whether an attempt for key may proceed now, and reserves
// it when it may.
func (l *Limiter) Check(ctx context.Context, key string) (time.Duration, error) {
	return l.run(ctx, "check", key)
}

// Failure ends an attempt for key as a failure.
func (l *Limiter) Failure(ctx context.Context, key string) error {
	_, err := l.run(ctx, "failure", key)
	return err
}

// Success ends an attempt for key as a success and clears its failures.
func (l *Limiter) Success(ctx context.Context, key string) error {
	_, err := l.run(ctx, "success", key)
	return err
}

// Release ends an attempt for key without counting it.
func (l *Limiter) Release(ctx context.Context, key string) error {
	_, err := l.run(ctx, "release", key)
	return err
}

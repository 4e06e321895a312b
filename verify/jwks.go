package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/internal/jws"
)

// Limits of what the key cache reads from the server.
const (
	// maxDiscoveryBytes bounds the discovery document.
	maxDiscoveryBytes = 64 << 10
	// maxJWKSBytes bounds the JWKS.
	maxJWKSBytes = 1 << 20
	// maxKeys bounds the keys of one JWKS.
	maxKeys = 64
	// maxRSABits bounds the RSA keys accepted, so that a key cannot make
	// each verification arbitrarily slow.
	maxRSABits = 8192
	// jwksPeriod is how often the JWKS is fetched again when its answer
	// says nothing shorter (Cache-Control max-age).
	jwksPeriod = 5 * time.Minute
	// minJWKSPeriod is the shortest period a max-age can ask for.
	minJWKSPeriod = 10 * time.Second
	// fetchTimeout bounds one fetch of the discovery document or the JWKS.
	fetchTimeout = 10 * time.Second
)

// publicKey is a trusted key of the JWKS.
type publicKey struct {
	alg string
	key crypto.PublicKey
}

// keyCache is the verifier's token.KeySource: the keys of the server's
// JWKS, fetched at start, again periodically, and on demand when a token
// names a kid it does not know (at most once per minRefresh, one fetch for
// any number of callers). A failed fetch keeps the keys it has.
type keyCache struct {
	client     *http.Client
	uri        string
	clock      clock.Clock
	minRefresh time.Duration
	log        *slog.Logger

	keys atomic.Pointer[map[string]publicKey]

	fetchMu sync.Mutex // serialises fetches, so that an older answer never replaces a newer one

	mu        sync.Mutex
	inflight  chan struct{} // an on-demand refresh is running; closed when it ends
	lastOnDem time.Time     // start of the last on-demand refresh
}

// Public returns the algorithm and key of kid, as token.KeySource.
func (k *keyCache) Public(kid string) (string, crypto.PublicKey, bool) {
	m := k.keys.Load()
	if m == nil {
		return "", nil, false
	}
	pk, ok := (*m)[kid]
	return pk.alg, pk.key, ok
}

// fetch gets and installs the JWKS, and returns how long it may be kept:
// its max-age, within [minJWKSPeriod, jwksPeriod].
func (k *keyCache) fetch(ctx context.Context) (time.Duration, error) {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	body, h, err := get(ctx, k.client, k.uri, "", maxJWKSBytes, "application/json", "application/jwk-set+json")
	if err != nil {
		return 0, fmt.Errorf("fetch JWKS: %w", err)
	}
	m, err := parseJWKS(body)
	if err != nil {
		return 0, fmt.Errorf("fetch JWKS: %w", err)
	}
	k.keys.Store(&m)
	period := jwksPeriod
	if age, ok := maxAge(h.Get("Cache-Control")); ok && age < period {
		period = max(age, minJWKSPeriod)
	}
	return period, nil
}

// refreshFor is called when a token names kid and kid is unknown. It
// fetches the JWKS unless another caller is doing so (then it waits for
// that fetch) or the last on-demand refresh was less than minRefresh ago,
// and reports whether kid is known afterwards.
func (k *keyCache) refreshFor(ctx context.Context, kid string) bool {
	if _, _, ok := k.Public(kid); ok {
		return true
	}
	k.mu.Lock()
	if ch := k.inflight; ch != nil {
		k.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
		_, _, ok := k.Public(kid)
		return ok
	}
	now := k.clock.Now()
	if !k.lastOnDem.IsZero() && now.Sub(k.lastOnDem) < k.minRefresh {
		k.mu.Unlock()
		return false
	}
	ch := make(chan struct{})
	k.inflight, k.lastOnDem = ch, now
	k.mu.Unlock()

	// The fetch serves every waiter: it is not cut short by this caller's
	// context, only bounded by fetchTimeout.
	_, err := k.fetch(context.WithoutCancel(ctx))
	if err != nil {
		k.log.Warn("gatehouse verify: JWKS refresh for an unknown key failed; keeping the cached keys", "error", err)
	}
	k.mu.Lock()
	k.inflight = nil
	close(ch)
	k.mu.Unlock()
	_, _, ok := k.Public(kid)
	return ok
}

// run fetches the JWKS every period (as the last answer allows), retrying
// failures every retry, until ctx ends.
func (k *keyCache) run(ctx context.Context, period, retry time.Duration) {
	t := time.NewTimer(period)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p, err := k.fetch(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				k.log.Warn("gatehouse verify: JWKS refresh failed; keeping the cached keys", "error", err)
			}
			failing = true
			p = retry
		case failing:
			failing = false
			k.log.Info("gatehouse verify: JWKS refresh works again")
		}
		t.Reset(p)
	}
}

// maxAge reads the max-age directive of a Cache-Control value.
func maxAge(cc string) (time.Duration, bool) {
	for _, d := range strings.Split(cc, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(d), "=")
		if !ok || !strings.EqualFold(name, "max-age") {
			continue
		}
		n, err := strconv.ParseUint(strings.Trim(val, `"`), 10, 31)
		if err != nil {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	return 0, false
}

// discover reads the discovery document of issuer and returns its
// jwks_uri. The document's issuer must equal issuer exactly.
func discover(ctx context.Context, client *http.Client, issuer string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	body, _, err := get(ctx, client, strings.TrimRight(issuer, "/")+"/.well-known/openid-configuration", "", maxDiscoveryBytes, "application/json")
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	var iss, jwksURI string
	err = jws.ScanObject(body, func(name []byte, v jws.Value) error {
		var err error
		switch string(name) {
		case "issuer":
			iss, err = v.Str()
		case "jwks_uri":
			jwksURI, err = v.Str()
		}
		if err != nil {
			return fmt.Errorf("member %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("discovery document: %w", err)
	}
	if iss != issuer {
		return "", fmt.Errorf("discovery document: issuer %q is not the configured %q", iss, issuer)
	}
	u, err := url.Parse(jwksURI)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Fragment != "":
		return "", fmt.Errorf("discovery document: jwks_uri %q is not an absolute URL", jwksURI)
	case u.Scheme != "https" && u.Scheme != "http":
		return "", fmt.Errorf("discovery document: jwks_uri %q is not http or https", jwksURI)
	case u.Scheme == "http" && strings.HasPrefix(issuer, "https:"):
		return "", fmt.Errorf("discovery document: jwks_uri %q is plain http for an https issuer", jwksURI)
	}
	return jwksURI, nil
}

// get fetches uri (with "Authorization: Bearer <bearer>" when bearer is not
// empty) and returns a 200 answer's body, at most limit bytes, of one of
// the media types.
func get(ctx context.Context, client *http.Client, uri, bearer string, limit int64, types ...string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", types[0])
	req.Header.Set("User-Agent", "gatehouse-verify")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
		return nil, nil, fmt.Errorf("GET %s: status %d", req.URL.Redacted(), res.StatusCode)
	}
	mt, _, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err != nil || !contains(types, mt) {
		return nil, nil, fmt.Errorf("GET %s: content type %q", req.URL.Redacted(), res.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", req.URL.Redacted(), err)
	}
	if int64(len(body)) > limit {
		return nil, nil, fmt.Errorf("GET %s: answer larger than %d bytes", req.URL.Redacted(), limit)
	}
	return body, res.Header, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// b64 is strict unpadded base64url: one spelling per value.
var b64 = base64.RawURLEncoding.Strict()

// errPrivate is a JWKS that holds a private key: the document is refused
// whole, for a server that publishes one is broken.
var errPrivate = errors.New("a key has a private member")

// privateMembers are the JWK members of private and symmetric keys
// (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = map[string]bool{"d": true, "p": true, "q": true, "dp": true, "dq": true, "qi": true, "oth": true, "k": true}

// parseJWKS reads a JWK Set strictly and returns its keys by kid.
//
// The document must be a strict JSON object (internal/jws.ScanObject: no
// duplicate or case-variant names, valid UTF-8) with a "keys" array of at
// most maxKeys keys. A key whose alg is not one Gatehouse signs with is
// skipped (RFC 7517 §5 lets new kinds of keys appear). A key of a known alg
// must be exactly that alg's kind: EdDSA is kty OKP with crv Ed25519, ES256
// kty EC with crv P-256 and a point on the curve, RS256 kty RSA of 2048 to
// 8192 bits; "use" must be "sig"; the members of the other kinds are
// refused; the kid must be the RFC 7638 thumbprint of the key, as
// Gatehouse's kids are. Any private member, a duplicate kid, a malformed
// key of a known alg, or no usable key refuses the whole document.
func parseJWKS(doc []byte) (map[string]publicKey, error) {
	var keysRaw []byte
	err := jws.ScanObject(doc, func(name []byte, v jws.Value) error {
		if string(name) == "keys" {
			if v.Kind != jws.KindArray {
				return errors.New(`"keys" is not an array`)
			}
			keysRaw = v.Raw
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	if keysRaw == nil {
		return nil, errors.New(`JWKS: no "keys"`)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(keysRaw, &elems); err != nil {
		return nil, fmt.Errorf("JWKS: keys: %w", err)
	}
	if len(elems) > maxKeys {
		return nil, fmt.Errorf("JWKS: more than %d keys", maxKeys)
	}
	out := make(map[string]publicKey, len(elems))
	for i, raw := range elems {
		kid, pk, err := parseJWK(raw)
		if err != nil {
			return nil, fmt.Errorf("JWKS: key %d: %w", i, err)
		}
		if kid == "" {
			continue // an algorithm Gatehouse does not use
		}
		if _, dup := out[kid]; dup {
			return nil, fmt.Errorf("JWKS: key %d: duplicate kid %q", i, kid)
		}
		out[kid] = pk
	}
	if len(out) == 0 {
		return nil, errors.New("JWKS: no usable key")
	}
	return out, nil
}

// parseJWK reads one key. It returns an empty kid, and no error, for a
// well-formed key of an algorithm Gatehouse does not use.
func parseJWK(raw []byte) (string, publicKey, error) {
	m := map[string]string{}
	err := jws.ScanObject(raw, func(name []byte, v jws.Value) error {
		n := string(name)
		if privateMembers[n] {
			return errPrivate
		}
		switch n {
		case "kty", "crv", "x", "y", "n", "e", "kid", "alg", "use":
			s, err := v.Str()
			if err != nil {
				return fmt.Errorf("member %s: %w", n, err)
			}
			m[n] = s
		}
		return nil // other members (key_ops, x5c, ...) are not used
	})
	if err != nil {
		return "", publicKey{}, err
	}
	alg, kid := m["alg"], m["kid"]
	switch alg {
	case jws.EdDSA, jws.ES256, jws.RS256:
	case "":
		return "", publicKey{}, errors.New("no alg")
	default:
		return "", publicKey{}, nil
	}
	if kid == "" {
		return "", publicKey{}, errors.New("no kid")
	}
	if m["use"] != "sig" {
		return "", publicKey{}, fmt.Errorf("use %q, want sig", m["use"])
	}
	var (
		key     crypto.PublicKey
		members []string // the thumbprint's members, in lexicographic order
	)
	switch alg {
	case jws.EdDSA:
		if err := only(m, "OKP", "Ed25519", "x"); err != nil {
			return "", publicKey{}, err
		}
		x, err := b64.DecodeString(m["x"])
		if err != nil || len(x) != ed25519.PublicKeySize {
			return "", publicKey{}, errors.New("x is not a 32-byte Ed25519 key")
		}
		key = ed25519.PublicKey(x)
		members = []string{"crv", "kty", "x"}
	case jws.ES256:
		if err := only(m, "EC", "P-256", "x", "y"); err != nil {
			return "", publicKey{}, err
		}
		x, errX := b64.DecodeString(m["x"])
		y, errY := b64.DecodeString(m["y"])
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return "", publicKey{}, errors.New("x and y are not 32-byte coordinates")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return "", publicKey{}, fmt.Errorf("P-256 point: %w", err)
		}
		key = pub
		members = []string{"crv", "kty", "x", "y"}
	case jws.RS256:
		if err := only(m, "RSA", "", "n", "e"); err != nil {
			return "", publicKey{}, err
		}
		n, errN := b64.DecodeString(m["n"])
		e, errE := b64.DecodeString(m["e"])
		switch {
		case errN != nil || errE != nil || len(n) == 0 || len(e) == 0 || n[0] == 0 || e[0] == 0:
			return "", publicKey{}, errors.New("n or e is not a minimal base64url integer")
		case len(n) > maxRSABits/8:
			return "", publicKey{}, fmt.Errorf("RSA key larger than %d bits", maxRSABits)
		case len(e) > 4:
			return "", publicKey{}, errors.New("RSA exponent too large")
		}
		ev := int(new(big.Int).SetBytes(e).Int64())
		if ev < 3 || ev%2 == 0 || ev > 1<<31-1 {
			return "", publicKey{}, errors.New("RSA exponent is not an odd number from 3 to 2^31-1")
		}
		key = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: ev}
		members = []string{"e", "kty", "n"}
	}
	if err := jws.CheckKey(alg, key); err != nil {
		return "", publicKey{}, err
	}
	if thumbprint(m, members) != kid {
		return "", publicKey{}, fmt.Errorf("kid %q is not the key's RFC 7638 thumbprint", kid)
	}
	return kid, publicKey{alg: alg, key: key}, nil
}

// only checks kty and crv (crvWant "" means no crv allowed), that the named
// members are present, and that the members of the other kinds of key are
// absent.
func only(m map[string]string, kty, crvWant string, required ...string) error {
	if m["kty"] != kty {
		return fmt.Errorf("kty %q, want %s", m["kty"], kty)
	}
	if got, ok := m["crv"]; crvWant == "" && ok || crvWant != "" && got != crvWant {
		return fmt.Errorf("crv %q, want %q", got, crvWant)
	}
	allowed := map[string]bool{"kty": true, "crv": crvWant != "", "kid": true, "alg": true, "use": true}
	for _, r := range required {
		if _, ok := m[r]; !ok {
			return fmt.Errorf("no %s", r)
		}
		allowed[r] = true
	}
	for name := range m {
		if !allowed[name] {
			return fmt.Errorf("member %s does not belong to a %s key", name, kty)
		}
	}
	return nil
}

// thumbprint is the RFC 7638 thumbprint (SHA-256, base64url) over the named
// members, given in lexicographic order. Their values are base64url or
// fixed names, which need no JSON escaping.
func thumbprint(m map[string]string, members []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, name := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + name + `":"` + m[name] + `"`)
	}
	b.WriteByte('}')
	sum := sha256.Sum256([]byte(b.String()))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

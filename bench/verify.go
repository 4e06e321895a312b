package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// newVerifyRequest is GET /v1/verify carrying c, as a gateway sends it.
func newVerifyRequest(ctx context.Context, base string, c credential) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/verify", nil)
	if err != nil {
		return nil, fmt.Errorf("GET /v1/verify: %w", err)
	}
	req.Header.Set("User-Agent", userAgent)
	c.apply(req.Header)
	return req, nil
}

// drain reads and closes a response body, so that its connection is
// reused.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
}

// login logs in for mode.
func (b *bencher) login(ctx context.Context, mode string) (credential, error) {
	switch mode {
	case modeSession:
		return b.sessionLogin(ctx)
	case modeToken:
		return b.tokenLogin(ctx, false)
	default:
		return b.tokenLogin(ctx, true)
	}
}

// verifyMode measures GET /v1/verify with a fresh credential of mode and
// adds the result; the credential is logged out afterwards.
func (b *bencher) verifyMode(ctx context.Context, mode string) error {
	c, err := b.login(ctx, mode)
	if err != nil {
		return err
	}
	mr, err := b.measureVerify(ctx, c)
	// The logout runs even when ctx was cancelled (Ctrl-C), so that the
	// bench leaves no live credential behind.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	if lerr := b.logout(lctx, c); err == nil && lerr != nil {
		err = lerr
	}
	if err != nil {
		return err
	}
	b.res.Verify = append(b.res.Verify, mr)
	return nil
}

// worker is what one verify client did.
type worker struct {
	lat    []time.Duration
	errors int64
	first  error
}

// measureVerify sends GET /v1/verify with c from cfg.Concurrency clients
// for cfg.Duration.
func (b *bencher) measureVerify(ctx context.Context, c credential) (ModeResult, error) {
	n := b.cfg.Concurrency
	counter := &byteCounter{}
	client := newClient(n, counter)
	defer closeClient(client)

	// Warm-up: one request per client opens the connections (and checks
	// the credential), so that connection set-up is neither timed nor
	// counted.
	warm := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { warm[i] = b.accepted(ctx, client, c) })
	}
	wg.Wait()
	if err := errors.Join(warm...); err != nil {
		return ModeResult{}, err
	}
	counter.reset()

	workers := make([]worker, n)
	start := time.Now()
	deadline := start.Add(b.cfg.Duration)
	stopTicker := b.prog.tick(start, b.cfg.Duration)
	for i := range n {
		wg.Go(func() { workers[i] = b.verifyLoop(ctx, client, c, deadline) })
	}
	wg.Wait()
	stopTicker()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return ModeResult{}, fmt.Errorf("bench: verify %s: %w", modeLabels[c.mode], err)
	}

	var lat []time.Duration
	var errs int64
	var first error
	for _, w := range workers {
		lat = append(lat, w.lat...)
		errs += w.errors
		if first == nil {
			first = w.first
		}
	}
	if len(lat) == 0 {
		return ModeResult{}, fmt.Errorf("bench: verify %s: no request succeeded (%d failed; first: %v)", modeLabels[c.mode], errs, first)
	}
	total := int64(len(lat)) + errs
	s := summarize(lat)
	return ModeResult{
		Mode:            c.mode,
		Label:           modeLabels[c.mode],
		Requests:        int64(len(lat)),
		Errors:          errs,
		ElapsedMS:       ms(elapsed),
		RPS:             roundTenth(float64(len(lat)) / elapsed.Seconds()),
		P50MS:           ms(s.p50),
		P95MS:           ms(s.p95),
		P99MS:           ms(s.p99),
		CredentialBytes: c.wireBytes(),
		RequestBytes:    int((counter.written.Load() + total/2) / total),
		ResponseBytes:   int((counter.read.Load() + total/2) / total),
	}, nil
}

// verifyLoop sends verify requests back to back until deadline and times
// the ones answered 200.
func (b *bencher) verifyLoop(ctx context.Context, client *http.Client, c credential, deadline time.Time) worker {
	w := worker{lat: make([]time.Duration, 0, 1024)}
	req, err := newVerifyRequest(ctx, b.base, c)
	if err != nil {
		w.errors, w.first = 1, err
		return w
	}
	for ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(deadline) {
			break
		}
		// The request is reused: nothing mutates it, and each use ends
		// with its body closed.
		resp, err := client.Do(req)
		if err != nil {
			w.errors++
			if w.first == nil {
				w.first = stripURL(err)
			}
			continue
		}
		drain(resp)
		d := time.Since(t0)
		if resp.StatusCode != http.StatusOK {
			w.errors++
			if w.first == nil {
				w.first = fmt.Errorf("status %d", resp.StatusCode)
			}
			continue
		}
		w.lat = append(w.lat, d)
	}
	return w
}

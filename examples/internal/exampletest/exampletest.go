// Package exampletest runs an example program inside its test: it calls the
// example's run function on a free loopback port, waits for the line that
// says where it listens, and stops it when the test ends. It is used by the
// examples' tests only.
package exampletest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// ListeningPrefix starts the line an example prints on stdout once it
// accepts connections: "listening on http://127.0.0.1:PORT".
const ListeningPrefix = "listening on "

// RunFunc is an example's run function.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Start calls run with args in a goroutine and returns the base URL it
// prints after ListeningPrefix. When the test ends, it cancels run's
// context and fails the test if run does not return nil within 30 s; the
// example's output is logged when the test failed.
func Start(t *testing.T, run RunFunc, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	out := &syncBuffer{}
	errc := make(chan error, 1)
	go func() {
		err := run(ctx, args, pw, out)
		if err == nil {
			pw.Close()
		} else {
			pw.CloseWithError(err)
		}
		errc <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not return within 30 s of its context's end")
		}
		if t.Failed() {
			t.Logf("example output:\n%s", out.String())
		}
	})

	br := bufio.NewReader(pr)
	for {
		line, err := br.ReadString('\n')
		out.WriteString(line)
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), ListeningPrefix); ok {
			// Keep draining stdout so that the example never blocks on it.
			go func() { _, _ = io.Copy(out, br) }()
			return rest
		}
		if err != nil {
			t.Fatalf("the example ended before it listened: %v\n%s", err, out.String())
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) WriteString(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

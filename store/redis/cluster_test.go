package redisstore

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-auth/gatehouse/internal/clock"
	"github.com/gatehouse-auth/gatehouse/revocation"
)

// clusterTimeout bounds each step of starting a cluster.
const clusterTimeout = 15 * time.Second

// needTools skips the test when a program is missing, or fails it in CI,
// where every test must run.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
				t.Fatalf("%s is not installed: CI must run the Redis Cluster tests", name)
			}
			t.Skipf("%s is not installed: skipping the Redis Cluster tests", name)
		}
	}
}

// freePorts returns n TCP ports of the loopback that were free a moment
// ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// startRedis starts redis-server with args and waits until its log says
// ready (a line containing ready). The process is killed when the test
// ends.
func startRedis(t *testing.T, port int, ready string, args ...string) {
	t.Helper()
	cmd := exec.Command("redis-server", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var log []string
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, ready) {
				done <- nil
				for sc.Scan() { // keep the pipe drained
				}
				return
			}
			log = append(log, line)
		}
		done <- &startError{port: port, log: log}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(clusterTimeout):
		t.Fatalf("redis-server on port %d not ready within %v", port, clusterTimeout)
	}
}

// startError is a redis-server that ended before it was ready.
type startError struct {
	port int
	log  []string
}

func (e *startError) Error() string {
	return "redis-server on port " + strconv.Itoa(e.port) + " ended:\n" + strings.Join(e.log, "\n")
}

// startCluster starts a Redis Cluster of three masters on the loopback and
// returns their addresses.
func startCluster(t *testing.T) []string {
	t.Helper()
	needTools(t, "redis-server", "redis-cli")
	dir := t.TempDir()
	ports := freePorts(t, 6)
	var addrs []string
	for i := range 3 {
		p := strconv.Itoa(ports[i])
		startRedis(t, ports[i], "Ready to accept connections",
			"--port", p, "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(ports[3+i]),
			"--cluster-config-file", filepath.Join(dir, "nodes-"+p+".conf"),
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir)
		addrs = append(addrs, "127.0.0.1:"+p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}

	// Every node must see the whole cluster before the tests start.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			select {
			case <-ctx.Done():
				c.Close()
				t.Fatalf("cluster state on %s not ok within %v: %v\n%s", addr, clusterTimeout, err, info)
			case <-tick.C:
			}
		}
		c.Close()
	}
	return addrs
}

// TestCluster runs the conformance suites against a Redis Cluster of
// three masters, where the keys of a session, of a user and of a limiter
// land on different nodes, and checks that notifications reach a
// subscriber whatever node it listens on.
func TestCluster(t *testing.T) {
	addrs := startCluster(t)
	url := "redis+cluster://" + strings.Join(addrs, ",")
	open := func(t testing.TB, c clock.Clock) *Store { return openURL(t, url, c) }

	t.Run("Conformance", func(t *testing.T) { conformance(t, open) })

	t.Run("KeysSpreadOverMasters", func(t *testing.T) {
		ctx := context.Background()
		c := clock.NewFake(start)
		s := open(t, c)
		for i := range 30 {
			sess := newSession(t, c, "user-"+strconv.Itoa(i))
			must(t, "CreateSession", s.CreateSession(ctx, sess))
			must(t, "DenyToken", s.Revocations().DenyToken(ctx, "jti-"+strconv.Itoa(i), start.Add(time.Hour)))
		}
		var masters atomic.Int32 // ForEachMaster calls in parallel
		err := s.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			n, err := c.DBSize(ctx).Result()
			if n > 0 {
				masters.Add(1)
			}
			return err
		})
		must(t, "DBSIZE", err)
		if got := masters.Load(); got != 3 {
			t.Fatalf("keys on %d masters, want 3", got)
		}
	})

	t.Run("Notifications", func(t *testing.T) {
		ctx := context.Background()
		c := clock.NewFake(start)
		writer := open(t, c)
		reader := openPrefixed(t, url, c, writer.prefix)

		entries := make(chan revocation.Entry, 10)
		events := make(chan SessionEvent, 10)
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go reader.Revocations().Subscribe(sctx, func(e revocation.Entry) error { entries <- e; return nil })
		go reader.SubscribeSessions(sctx, func(e SessionEvent) { events <- e })
		if e := receive(t, events, "resync event"); !e.Resync {
			t.Fatalf("first event %+v, want a resync", e)
		}
		// The subscription to revocations may not be established yet: the
		// entry comes by replay, by message, or both.
		must(t, "DenyToken", writer.Revocations().DenyToken(ctx, "jti", start.Add(time.Hour)))
		if e := receive(t, entries, "revocation"); e.ID != "jti" {
			t.Fatalf("entry %+v, want jti", e)
		}
		sess := newSession(t, c, "alice")
		must(t, "CreateSession", writer.CreateSession(ctx, sess))
		must(t, "DeleteSession", writer.DeleteSession(ctx, sess.Hash))
		if e := receive(t, events, "deletion event"); e.ID != sess.ID || e.UserID != "alice" {
			t.Fatalf("event %+v, want the deletion of %s", e, sess.ID)
		}
	})
}

// TestSentinel runs the conformance suites through Redis Sentinel: a
// master, and a sentinel that tells the client where it is.
func TestSentinel(t *testing.T) {
	needTools(t, "redis-server")
	dir := t.TempDir()
	ports := freePorts(t, 2)
	master, sentinel := strconv.Itoa(ports[0]), strconv.Itoa(ports[1])
	startRedis(t, ports[0], "Ready to accept connections",
		"--port", master, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir)
	conf := filepath.Join(dir, "sentinel.conf")
	err := os.WriteFile(conf, []byte("port "+sentinel+"\nbind 127.0.0.1\ndir "+dir+"\n"+
		"sentinel monitor gh 127.0.0.1 "+master+" 1\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	startRedis(t, ports[1], "+monitor master gh", conf, "--sentinel")

	url := "redis+sentinel://127.0.0.1:" + sentinel + "/gh"
	conformance(t, func(t testing.TB, c clock.Clock) *Store { return openURL(t, url, c) })
}

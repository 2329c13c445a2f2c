package tunnel

import (
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/qubes-claw/qubes-claw/pkg/testwait"
)

// backend is a TCP server standing for the VM's service: it reads the
// request until the client's half-close, then answers "got N: " + request.
func backend(t *testing.T) int {
	return serveTCP(t, func(c net.Conn) {
		defer c.Close()
		req, _ := io.ReadAll(c)
		c.Write([]byte("got " + strconv.Itoa(len(req)) + ": " + string(req)))
	})
}

// serveTCP listens on a free loopback port until the test ends and runs
// handle for each connection in its own goroutine.
func serveTCP(t *testing.T, handle func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

type harness struct {
	d      *Daemon
	open   *fakeOpener
	log    *test.Hook
	cancel context.CancelFunc
	done   chan struct{}
}

func testConfig(port int) Config {
	cfg := Defaults()
	cfg.RetryInterval = 50 * time.Millisecond
	cfg.ShutdownGrace = time.Second
	cfg.Tunnels = []Tunnel{{Name: "t", Listen: "127.0.0.1:0", VM: "agent", Port: port}}
	return cfg
}

func start(t *testing.T, cfg Config, open *fakeOpener) *harness {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logger, hook := test.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	d, err := New(cfg, open, nil, logrus.NewEntry(logger))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{d: d, open: open, log: hook, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(h.done); d.Serve(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	<-h.done
}

func (h *harness) addr() string { return h.d.Addr("t").String() }

// request sends req, half-closes, and returns the whole answer.
func (h *harness) request(t *testing.T, req string) (string, error) {
	t.Helper()
	c, err := net.Dial("tcp", h.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		return "", err
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	return string(b), err
}

// eventually polls cond for a bounded time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, 20*time.Second, what, cond)
}

// echoServer listens on a free loopback port and echoes every connection
// until the test ends (an echo never ends by itself).
func echoServer(t *testing.T) int {
	return serveTCP(t, func(c net.Conn) { io.Copy(c, c) })
}

func (h *harness) status() TunnelStatus { return h.d.Status().Tunnels[0] }

func (h *harness) logged(msg string, fields map[string]string) bool {
	for _, e := range h.log.AllEntries() {
		if e.Message != msg {
			continue
		}
		ok := true
		for k, v := range fields {
			if s, _ := e.Data[k].(string); !strings.Contains(s, v) && v != "" {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func TestForwardHalfClose(t *testing.T) {
	port := backend(t)
	h := start(t, testConfig(port), newFakeOpener(port))
	eventually(t, "a full pool", func() bool { return h.status().PoolIdle == 2 })
	req := strings.Repeat("x", 200<<10)
	got, err := h.request(t, req)
	if err != nil || got != "got "+strconv.Itoa(len(req))+": "+req {
		t.Fatalf("answer %d bytes, err %v", len(got), err)
	}
	eventually(t, "the log line", func() bool {
		return h.logged("connection closed", map[string]string{"end": "client closed first"})
	})
	var e *logrus.Entry
	for _, x := range h.log.AllEntries() {
		if x.Message == "connection closed" {
			e = x
		}
	}
	if e.Data["bytes_in"] != int64(len(req)) || e.Data["bytes_out"] != int64(len(got)) || e.Data["pooled"] != true || e.Data["tunnel"] != "t" {
		t.Errorf("log line %v", e.Data)
	}
	st := h.status()
	if st.Total != 1 || st.BytesIn != int64(len(req)) || st.Active != 0 || !st.VMReachable {
		t.Errorf("status %+v", st)
	}
}

func TestNoPool(t *testing.T) {
	port := backend(t)
	cfg := testConfig(port)
	cfg.Pool = 0
	h := start(t, cfg, newFakeOpener(port))
	for i := 0; i < 3; i++ {
		if got, err := h.request(t, "hi"); err != nil || got != "got 2: hi" {
			t.Fatalf("answer %q, %v", got, err)
		}
	}
	if n := h.open.opened.Load(); n != 3 {
		t.Errorf("%d channels opened for 3 connections without a pool", n)
	}
}

// TestVMDown: connections to a VM that went away are refused at once with
// a logged reason, and the tunnel resumes by itself when it is back.
func TestVMDown(t *testing.T) {
	port := backend(t)
	h := start(t, testConfig(port), newFakeOpener(port))
	if _, err := h.request(t, "a"); err != nil {
		t.Fatal(err)
	}
	h.open.halt()
	eventually(t, "the tunnel to notice", func() bool { return !h.status().VMReachable })
	got, _ := h.request(t, "b")
	if got != "" {
		t.Fatalf("answer %q from a halted VM", got)
	}
	eventually(t, "a refusal log line", func() bool {
		return h.logged("connection refused", map[string]string{"reason": "vm not running"})
	})
	st := h.status()
	if st.Refused == 0 || !strings.Contains(st.DownReason, "vm not running") || st.LastError == "" {
		t.Errorf("status %+v", st)
	}
	h.open.down.Store(false)
	eventually(t, "service to resume", func() bool {
		got, _ := h.request(t, "c")
		return got == "got 1: c"
	})
}

// TestHaltMidStream: the connection ends, the daemon keeps serving.
func TestHaltMidStream(t *testing.T) {
	port := echoServer(t)
	h := start(t, testConfig(port), newFakeOpener(port))
	c, err := net.Dial("tcp", h.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	h.open.halt()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("connection did not end cleanly: %v", err)
	}
	eventually(t, "the failure log line", func() bool {
		return h.logged("connection failed", map[string]string{"reason": "vm not running"})
	})
	if !h.d.Status().Tunnels[0].Listening {
		t.Error("not listening any more")
	}
}

func TestMaxConnections(t *testing.T) {
	port := echoServer(t)
	cfg := testConfig(port)
	cfg.MaxConnections = 1
	h := start(t, cfg, newFakeOpener(port))
	first, _ := net.Dial("tcp", h.addr())
	defer first.Close()
	first.Write([]byte("1"))
	io.ReadFull(first, make([]byte, 1))
	second, _ := net.Dial("tcp", h.addr())
	defer second.Close()
	second.SetReadDeadline(time.Now().Add(20 * time.Second))
	if b, err := io.ReadAll(second); len(b) != 0 || err != nil {
		t.Fatalf("second connection: %q %v, want closed", b, err)
	}
	if !h.logged("connection refused", map[string]string{"reason": "max_connections"}) {
		t.Error("no refusal logged")
	}
}

func TestIdleTimeout(t *testing.T) {
	port := echoServer(t)
	cfg := testConfig(port)
	cfg.IdleTimeout = 100 * time.Millisecond
	h := start(t, cfg, newFakeOpener(port))
	c, _ := net.Dial("tcp", h.addr())
	defer c.Close()
	c.Write([]byte("1"))
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, _ := io.ReadAll(c)
	if string(b) != "1" {
		t.Fatalf("got %q", b)
	}
	eventually(t, "the idle log line", func() bool {
		return h.logged("connection closed", map[string]string{"end": "idle timeout"})
	})
}

func TestStatusSocket(t *testing.T) {
	port := backend(t)
	cfg := testConfig(port)
	h := start(t, cfg, newFakeOpener(port))
	dir := t.TempDir()
	ln, err := ListenControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); h.d.ServeControl(ctx, ln) }()
	defer func() { cancel(); wg.Wait() }()
	if _, err := ListenControl(dir); err == nil {
		t.Error("a second daemon could take the control socket")
	}
	h.request(t, "hello")
	st, err := Query(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Tunnels) != 1 || st.Tunnels[0].Name != "t" || st.Tunnels[0].Total != 1 || !st.Tunnels[0].Listening {
		t.Errorf("status %+v", st)
	}
	if _, err := Query(context.Background(), t.TempDir()); err == nil {
		t.Error("Query of an empty directory succeeded")
	}
}

func TestShutdownClosesPool(t *testing.T) {
	port := backend(t)
	open := newFakeOpener(port)
	h := start(t, testConfig(port), open)
	eventually(t, "a full pool", func() bool { return h.status().PoolIdle == 2 })
	h.stop()
	eventually(t, "pooled channels to close", func() bool { return open.liveCount() == 0 })
}

func TestConfigChecks(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"non-loopback", func(c *Config) { c.Tunnels[0].Listen = "0.0.0.0:1" }, "allow_non_loopback"},
		{"lan address", func(c *Config) { c.Tunnels[0].Listen = "192.168.1.5:1" }, "not a loopback"},
		{"host name", func(c *Config) { c.Tunnels[0].Listen = "localhost:1" }, "not an IP"},
		{"no name", func(c *Config) { c.Tunnels[0].Name = "" }, "name"},
		{"bad vm", func(c *Config) { c.Tunnels[0].VM = "a b" }, "vm"},
		{"bad port", func(c *Config) { c.Tunnels[0].Port = 0 }, "port"},
		{"bad service", func(c *Config) { c.Tunnels[0].Service = "a+b" }, "service"},
		{"duplicate", func(c *Config) { c.Tunnels = append(c.Tunnels, c.Tunnels[0]) }, "twice"},
		{"transport", func(c *Config) { c.Transport = "ssh" }, "transport"},
		{"policy file", func(c *Config) { c.Policy.File = "/etc/qubes/policy.d/50-Claw.policy" }, "policy.file"},
		{"policy tags", func(c *Config) { c.Policy.ServerTag = c.Policy.ClientTag }, "policy"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(1)
			tt.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want an error about %s", err, tt.want)
			}
		})
	}
	c := testConfig(1)
	c.Tunnels[0].Listen = "0.0.0.0:1"
	c.AllowNonLoopback = true
	if err := c.Validate(); err != nil {
		t.Errorf("allow_non_loopback: %v", err)
	}
	c = testConfig(1)
	c.Tunnels = nil
	if err := c.Validate(); err != nil {
		t.Errorf("no tunnels is valid for status and policy: %v", err)
	}
	if err := c.CheckTunnels(); err == nil {
		t.Error("CheckTunnels accepted no tunnels")
	}
}

// TestShippedPolicy: the packaged policy file is the rendering of the
// default configuration.
func TestShippedPolicy(t *testing.T) {
	want, err := DefaultPolicy().Render()
	if err != nil {
		t.Fatal(err)
	}
	got, err := readRepoFile("rpm/50-qubes-claw.policy")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rpm/50-qubes-claw.policy differs from the rendered default; run: go run ./cmd/qubes-claw-tunnel policy render --config /dev/null > rpm/50-qubes-claw.policy\n%s", want)
	}
}

// TestStatusSocketLongPath: a runtime directory deeper than sockaddr_un
// allows still works (relocated roots in the simulator are deep).
func TestStatusSocketLongPath(t *testing.T) {
	port := backend(t)
	h := start(t, testConfig(port), newFakeOpener(port))
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	ln, err := ListenControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.d.ServeControl(ctx, ln) }()
	defer func() { cancel(); <-done }()
	if st, err := Query(context.Background(), dir); err != nil || len(st.Tunnels) != 1 {
		t.Fatalf("Query: %+v %v", st, err)
	}
}

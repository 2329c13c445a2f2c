package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestWatchGateway: READY=1 once the gateway answers, watchdog pings only
// while it answers below 500, and a stop terminates the child cleanly.
func TestWatchGateway(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(status.Load())) }))
	defer gw.Close()
	sock := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	read := func(d time.Duration) (string, bool) {
		buf := make([]byte, 256)
		c.SetReadDeadline(time.Now().Add(d))
		n, err := c.Read(buf)
		return string(buf[:n]), err == nil
	}

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runWatchGateway(ctx, &WatchGatewayOptions{Health: gw.URL, Argv: []string{"sleep", "60"}, Stderr: &syncBuffer{}, Poll: time.Millisecond})
	}()
	// Unhealthy at first: nothing is sent.
	if m, ok := read(100 * time.Millisecond); ok {
		t.Fatalf("%q before the gateway answered", m)
	}
	status.Store(http.StatusOK)
	if m, ok := read(20 * time.Second); !ok || !strings.HasPrefix(m, "READY=1\n") {
		t.Fatalf("want READY=1, got %q", m)
	}
	if m, ok := read(20 * time.Second); !ok || m != "WATCHDOG=1" {
		t.Fatalf("want a watchdog ping, got %q", m)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("stopped gateway: %v", err)
	}
}

func TestWatchGatewayChildExit(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	err := runWatchGateway(context.Background(), &WatchGatewayOptions{Health: "http://127.0.0.1:1/", Argv: []string{"sh", "-c", "exit 7"}, Stderr: &syncBuffer{}, Poll: time.Millisecond})
	if code, _ := run(t, "watch-gateway", "--health", "http://127.0.0.1:1/", "--", "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("exit %d, want the child's 7 (runWatchGateway: %v)", code, err)
	}
	if code, _ := run(t, "watch-gateway", "--", "/nonexistent/openclaw"); code != exitConfig {
		t.Errorf("missing gateway: exit %d, want %d", code, exitConfig)
	}
	if code, _ := run(t, "watch-gateway", "openclaw"); code != 2 {
		t.Errorf("without --: exit %d, want 2", code)
	}
}

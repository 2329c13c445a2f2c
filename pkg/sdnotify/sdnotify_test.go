package sdnotify

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	addr := name
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestNotify(t *testing.T) {
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify"),
		"@sdnotify-test-" + strconv.Itoa(os.Getpid()),
	} {
		t.Run(name, func(t *testing.T) {
			c := listen(t, name)
			t.Setenv("NOTIFY_SOCKET", name)
			if err := FromEnv().Notify(Ready, Status("serving\non :1")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 256)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(buf[:n]), "READY=1\nSTATUS=serving on :1"; got != want {
				t.Errorf("datagram %q, want %q", got, want)
			}
		})
	}
}

func TestNotifyOutsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if n := FromEnv(); n != nil {
		t.Fatalf("notifier %v without NOTIFY_SOCKET", n)
	}
	var n *Notifier
	if err := n.Notify(Ready); err != nil {
		t.Error(err)
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	if err := FromEnv().Notify(Ready); err == nil {
		t.Error("no error for a socket nobody listens on")
	}
}

func TestWatchdogInterval(t *testing.T) {
	tests := []struct {
		name, usec, pid string
		want            time.Duration
		wantErr         bool
	}{
		{name: "unset", wantErr: true},
		{name: "half the timeout", usec: "30000000", want: 15 * time.Second},
		{name: "for our pid", usec: "2000000", pid: strconv.Itoa(os.Getpid()), want: time.Second},
		{name: "for another pid", usec: "2000000", pid: "1", wantErr: true},
		{name: "garbage", usec: "soon", wantErr: true},
		{name: "zero", usec: "0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			got, err := WatchdogInterval()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestKeepalive: pings go out only while the probe succeeds.
func TestKeepalive(t *testing.T) {
	name := filepath.Join(t.TempDir(), "notify")
	c := listen(t, name)
	t.Setenv("NOTIFY_SOCKET", name)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	healthy, probes, fails := true, 0, 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		FromEnv().Keepalive(ctx, time.Millisecond, func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			probes++
			if !healthy {
				return errors.New("down")
			}
			return nil
		}, func(error) { mu.Lock(); fails++; mu.Unlock() })
	}()
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != Watchdog {
		t.Fatalf("first ping: %q, %v", buf[:n], err)
	}
	mu.Lock()
	healthy = false
	seen := probes
	mu.Unlock()
	// Drain pings already in flight, then wait for several failed probes.
	for {
		mu.Lock()
		p := probes
		mu.Unlock()
		if p >= seen+5 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	// Drain the pings sent before the probe failed: they are queued by now.
	// A short deadline, not a past one, with which Read would fail at once
	// without reading.
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	for {
		if _, err := c.Read(buf); err != nil {
			break
		}
	}
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := c.Read(buf); err == nil {
		t.Errorf("ping %q while the probe fails", buf[:n])
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if fails == 0 {
		t.Error("onFail never called")
	}
}

func TestNotifyFunc(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify(Ready); sent || err != nil {
		t.Errorf("outside systemd: %v, %v", sent, err)
	}
	name := filepath.Join(t.TempDir(), "notify")
	c := listen(t, name)
	t.Setenv("NOTIFY_SOCKET", name)
	if sent, err := Notify(Stopping); !sent || err != nil {
		t.Fatalf("%v, %v", sent, err)
	}
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != Stopping {
		t.Errorf("got %q, %v", buf[:n], err)
	}
}

package connect

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/testwait"
)

func TestParsePort(t *testing.T) {
	for _, ok := range []string{"1", "22", "32125", "65535"} {
		if p, err := ParsePort(ok); err != nil || strconv.Itoa(p) != ok {
			t.Errorf("ParsePort(%q) = %d, %v", ok, p, err)
		}
	}
	for _, bad := range []string{"", "0", "022", "65536", "99999", "123456", "-1", "+1", "1a", "1 ", "127.0.0.1+22", "1_0"} {
		if _, err := ParsePort(bad); !errors.Is(err, ErrBadArgument) {
			t.Errorf("ParsePort(%q): %v, want ErrBadArgument", bad, err)
		}
	}
}

// server accepts connections on 127.0.0.1 and runs fn on each.
func server(t *testing.T, fn func(net.Conn)) (port int, accepted *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = &atomic.Int32{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() { defer c.Close(); fn(c) }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, accepted
}

// call runs Handle with pipes as its stdin and stdout, the way qrexec does.
type call struct {
	inW  *os.File // the caller writes here
	outR *os.File // the caller reads here
	done chan struct{}
	res  Result
	err  error
}

func startCall(t *testing.T, cfg Config, arg string) *call {
	t.Helper()
	return startCallMode(t, cfg, arg, false)
}

// startCallMode with blocking set hands Handle blocking pipes, as qrexec
// does (the handler then moves them to the poller itself).
func startCallMode(t *testing.T, cfg Config, arg string, blocking bool) *call {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if blocking {
		inR.Fd() // Fd switches a file to blocking mode
		outW.Fd()
	}
	c := &call{inW: inW, outR: outR, done: make(chan struct{})}
	t.Cleanup(func() { inW.Close(); outR.Close(); inR.Close() })
	go func() {
		defer close(c.done)
		c.res, c.err = Handle(context.Background(), cfg, arg, inR, outW, logging.Discard())
	}()
	return c
}

func (c *call) wait(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		t.Fatal("Handle did not return")
	}
}

func cfgFor(ports ...int) Config {
	c := Defaults()
	c.Ports = ports
	return c
}

func TestRefusals(t *testing.T) {
	port, accepted := server(t, func(net.Conn) {})
	for _, tt := range []struct {
		name, arg string
		want      error
	}{
		{"not allowed", "22", ErrNotAllowed},
		{"malformed", "x", ErrBadArgument},
		{"empty", "", ErrBadArgument},
		{"leading zero", "0" + strconv.Itoa(port), ErrBadArgument},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := startCall(t, cfgFor(port), tt.arg)
			c.inW.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
			c.wait(t)
			if !errors.Is(c.err, tt.want) || c.res.Connected {
				t.Fatalf("err %v connected %v, want %v", c.err, c.res.Connected, tt.want)
			}
		})
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("a refused call connected to the server (%d connections)", n)
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, _ := net.Listen("tcp4", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	c := startCall(t, cfgFor(port), strconv.Itoa(port))
	c.inW.Write([]byte("x"))
	c.wait(t)
	if !errors.Is(c.err, ErrConnect) {
		t.Fatalf("err %v, want ErrConnect", c.err)
	}
}

// TestDialLoopback: the dialer's outcomes. A listener that never accepts,
// with backlog 0, holds one connection; the kernel then drops further SYNs
// and retries them for minutes, so only the timeout ends the wait.
func TestDialLoopback(t *testing.T) {
	closed, _ := net.Listen("tcp4", "127.0.0.1:0")
	refusedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	open, _ := net.Listen("tcp4", "127.0.0.1:0")
	defer open.Close()
	full := fullListener(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name    string
		ctx     context.Context
		port    int
		wantErr string // "" = connected
	}{
		{"listening", context.Background(), open.Addr().(*net.TCPAddr).Port, ""},
		{"nothing listening", context.Background(), refusedPort, "connection refused"},
		{"backlog full", context.Background(), full, "i/o timeout"},
		{"backlog full, cancelled", cancelled, full, "context canceled"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			c, err := dialLoopback(tt.ctx, tt.port, 300*time.Millisecond)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s with a 300ms timeout", took)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if got := c.RemoteAddr().(*net.TCPAddr).Port; got != tt.port {
					t.Errorf("connected to port %d", got)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("connected, want %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// fullListener returns the port of a listener whose accept queue is full.
func fullListener(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	port := sa.(*unix.SockaddrInet4).Port
	// Fill the queue: connections that complete are held until cleanup.
	for i := 0; i < 8; i++ {
		c, err := dialLoopback(context.Background(), port, 100*time.Millisecond)
		if err != nil {
			return port
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("the accept queue never filled")
	return 0
}

// TestLazyConnect: an unused channel (the caller closes without sending)
// never connects to the server.
func TestLazyConnect(t *testing.T) {
	port, accepted := server(t, func(net.Conn) {})
	c := startCall(t, cfgFor(port), strconv.Itoa(port))
	c.inW.Close()
	c.wait(t)
	if c.err != nil || c.res.Connected || accepted.Load() != 0 {
		t.Fatalf("err %v connected %v accepted %d", c.err, c.res.Connected, accepted.Load())
	}
	if n, err := c.outR.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("stdout not closed: %d %v", n, err)
	}
}

// TestHalfClose: the request, then EOF from the caller; the server answers
// only after EOF, and the whole answer arrives.
func TestHalfClose(t *testing.T) {
	answer := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	port, _ := server(t, func(c net.Conn) {
		req, _ := io.ReadAll(c) // until the caller's half-close
		c.Write([]byte(strconv.Itoa(len(req)) + "\n"))
		c.Write(answer)
	})
	c := startCall(t, cfgFor(port), strconv.Itoa(port))
	req := bytes.Repeat([]byte("r"), 300<<10)
	go func() { c.inW.Write(req); c.inW.Close() }()
	got, err := io.ReadAll(c.outR)
	if err != nil {
		t.Fatal(err)
	}
	c.wait(t)
	want := append([]byte(strconv.Itoa(len(req))+"\n"), answer...)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
	if c.err != nil || c.res.In != int64(len(req)) || c.res.Out != int64(len(want)) {
		t.Fatalf("result %+v err %v", c.res, c.err)
	}
}

func TestFirstByteTimeout(t *testing.T) {
	port, accepted := server(t, func(net.Conn) {})
	cfg := cfgFor(port)
	cfg.FirstByteTimeout = 50 * time.Millisecond
	c := startCall(t, cfg, strconv.Itoa(port))
	c.wait(t)
	if !errors.Is(c.err, ErrNoFirstByte) || accepted.Load() != 0 {
		t.Fatalf("err %v accepted %d", c.err, accepted.Load())
	}
}

func TestConfigValidate(t *testing.T) {
	for _, edit := range []func(*Config){
		func(c *Config) { c.Ports = []int{0} },
		func(c *Config) { c.Ports = []int{70000} },
		func(c *Config) { c.ConnectTimeout = 0 },
		func(c *Config) { c.FirstByteTimeout = -1 },
	} {
		c := Defaults()
		edit(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("accepted %+v", c)
		}
	}
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestCallerGone: the caller's qrexec client dies (stdout's reader closes)
// while the server is silent; the handler ends instead of waiting forever.
func TestCallerGone(t *testing.T) {
	port, _ := server(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	c := startCall(t, cfgFor(port), strconv.Itoa(port))
	c.inW.Write([]byte("x"))
	c.inW.Close()
	time.Sleep(10 * time.Millisecond) // let it connect; the test holds either way
	c.outR.Close()
	c.wait(t)
	if !c.res.Connected {
		t.Fatalf("never connected: %v", c.err)
	}
}

// TestBlockingStdio: with qrexec's blocking pipes, the half-close answer,
// the first-byte timeout and a vanished caller behave as with pollable ones.
func TestBlockingStdio(t *testing.T) {
	t.Run("half-close", func(t *testing.T) {
		port, _ := server(t, func(c net.Conn) {
			req, _ := io.ReadAll(c)
			c.Write(req)
		})
		c := startCallMode(t, cfgFor(port), strconv.Itoa(port), true)
		req := bytes.Repeat([]byte("r"), 300<<10)
		go func() { c.inW.Write(req); c.inW.Close() }()
		got, err := io.ReadAll(c.outR)
		c.wait(t)
		if err != nil || !bytes.Equal(got, req) || c.err != nil {
			t.Fatalf("got %d bytes of %d, %v, %v", len(got), len(req), err, c.err)
		}
	})
	t.Run("first byte timeout", func(t *testing.T) {
		port, accepted := server(t, func(net.Conn) {})
		cfg := cfgFor(port)
		cfg.FirstByteTimeout = 50 * time.Millisecond
		c := startCallMode(t, cfg, strconv.Itoa(port), true)
		c.wait(t)
		if !errors.Is(c.err, ErrNoFirstByte) || accepted.Load() != 0 {
			t.Fatalf("err %v accepted %d", c.err, accepted.Load())
		}
	})
	t.Run("caller gone", func(t *testing.T) {
		port, _ := server(t, func(c net.Conn) { io.Copy(io.Discard, c) })
		c := startCallMode(t, cfgFor(port), strconv.Itoa(port), true)
		c.inW.Write([]byte("x"))
		c.inW.Close()
		time.Sleep(10 * time.Millisecond)
		c.outR.Close()
		c.wait(t)
		if !c.res.Connected {
			t.Fatalf("never connected: %v", c.err)
		}
	})
}

// TestRehearseLeavesNothing: the rehearsal before the first byte leaves no
// descriptor or goroutine behind.
func TestRehearseLeavesNothing(t *testing.T) {
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	rehearse() // the runtime's own first-use descriptors (epoll) come now
	f0, g0 := fds(), runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		rehearse()
	}
	testwait.For(t, 10*time.Second, "the rehearsals' goroutines to end", func() bool {
		return runtime.NumGoroutine() <= g0
	})
	if f := fds(); f != f0 {
		t.Errorf("descriptors: %d before, %d after 20 rehearsals", f0, f)
	}
}

// TestWaiting: a pipe with bytes in it is waiting, an empty one is not.
func TestWaiting(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if waiting(r) {
		t.Error("empty pipe: waiting")
	}
	w.Write([]byte("x"))
	if !waiting(r) {
		t.Error("pipe with a byte: not waiting")
	}
	if waiting(bytes.NewReader([]byte("x"))) {
		t.Error("a reader without a descriptor: waiting")
	}
}

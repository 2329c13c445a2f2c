package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/qubes-claw/qubes-claw/pkg/llmproxy"
)

// TestServeNotifiesSystemd: under a Type=notify unit with a watchdog, serve
// reports READY=1 once listening, pings the watchdog while its own /health
// answers, and reports STOPPING=1 on shutdown.
func TestServeNotifiesSystemd(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	sock := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "20000") // a ping every 10ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	t.Setenv("OPENAI_API_KEY", "sk-test-notify-0123")

	g := &globals{spec: llmproxy.Spec(), getenv: os.Getenv, flags: pflag.NewFlagSet("t", pflag.ContinueOnError)}
	g.spec.AddFlags(g.flags)
	if err := g.flags.Parse([]string{"--config", writeConfig(t, "provider: openai\n")}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- runServe(ctx, &ServeOptions{g: g, Stderr: &syncBuffer{}, Listener: ln}) }()

	read := func() string {
		buf := make([]byte, 512)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no sd_notify message: %v", err)
		}
		return string(buf[:n])
	}
	if m := read(); !strings.HasPrefix(m, "READY=1\nSTATUS=serving provider openai on ") {
		t.Fatalf("first message %q", m)
	}
	if m := read(); m != "WATCHDOG=1" {
		t.Fatalf("second message %q", m)
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	for {
		if m := read(); m == "STOPPING=1" {
			break
		} else if m != "WATCHDOG=1" {
			t.Fatalf("unexpected message %q", m)
		}
	}
}

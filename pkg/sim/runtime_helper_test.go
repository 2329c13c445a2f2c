package sim_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

// helperEnv selects a helper mode of this test binary (the os/exec
// helper-process pattern): the binary runs inside simulated domains as a
// small server the host may not have.
const helperEnv = "SIM_RUNTIME_HELPER"

// TestRuntimeHelperProcess is not a test: it is the helper's entry point.
func TestRuntimeHelperProcess(t *testing.T) {
	switch os.Getenv(helperEnv) {
	case "":
		return
	case "echo-server":
		echoServer()
	}
	os.Exit(0)
}

// echoServer listens on 127.0.0.1, writes its port to $PORT_FILE, greets
// every connection with its hostname and echoes lines back.
func echoServer() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	pf := os.Getenv("PORT_FILE")
	if err := os.WriteFile(pf+".tmp", []byte(port), 0o644); err != nil {
		os.Exit(1)
	}
	os.Rename(pf+".tmp", pf)
	host, _ := os.Hostname()
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		go func(c net.Conn) {
			defer c.Close()
			fmt.Fprintf(c, "hello from %s\n", host)
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				fmt.Fprintf(c, "echo: %s\n", sc.Text())
			}
		}(c)
	}
}

// startEchoServer runs the echo server inside domain through the Spawn API
// and returns its port.
func startEchoServer(t *testing.T, m *simtest.Machine, domain string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(t.TempDir(), "port")
	p, err := m.Sim.Spawn(domain, simtestSpawn(exe, pf))
	if err != nil {
		t.Fatalf("spawn echo server in %s: %v", domain, err)
	}
	p.Release()
	// The server reports its port through a file: wait for it (bounded).
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(pf); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("echo server in %s did not start", domain)
	return ""
}

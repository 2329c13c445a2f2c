package tunnel_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/qubes-claw/qubes-claw/pkg/qubes"
	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/tunnel"
)

// inDom0 makes this test process a dom0 shell of the machine, so the engine
// run in-process finds dom0's qrexec-client.
func inDom0(t *testing.T, a *agent) {
	for _, kv := range a.m.Sim.DomainEnv(sim.Dom0, "user") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// counts are what a connection could leak.
type counts struct {
	goroutines, fds, children, vmProcs int
}

func (c counts) String() string {
	return fmt.Sprintf("%d goroutines, %d fds, %d child processes, %d VM processes", c.goroutines, c.fds, c.children, c.vmProcs)
}

func measure(t *testing.T, m *agent) counts {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	procs, err := m.m.Sim.Processes("agent")
	if err != nil {
		t.Fatal(err)
	}
	return counts{runtime.NumGoroutine(), len(fds), children(), len(procs)}
}

// children counts the live (non-zombie) children of this process.
func children() int {
	ents, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 >= len(s) {
			continue
		}
		f := strings.Fields(s[i+2:])
		if len(f) > 1 && f[1] == self && f[0] != "Z" {
			n++
		}
	}
	return n
}

// TestE2ENoLeaks opens and closes 1000 connections, 100 at a time, through
// the engine in this process against the simulator, and counts goroutines,
// file descriptors, qrexec-client children and processes in the VM before
// and after: with the pool refilled, they must be back where they were.
func TestE2ENoLeaks(t *testing.T) {
	a := newAgent(t, false)
	inDom0(t, a)
	cfg := tunnel.Defaults()
	cfg.Tunnels = []tunnel.Tunnel{{Name: "echo", Listen: "127.0.0.1:0", VM: "agent", Port: a.echoPort}}
	cfg.MaxConnections = 200
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	client := &qubes.Client{CloseTimeout: time.Second}
	d, err := tunnel.New(cfg, tunnel.QrexecOpener{Client: client}, nil, logrus.NewEntry(logger))
	if err != nil {
		t.Fatal(err)
	}
	d.Probe = client.IsRunning
	if err := d.Listen(); err != nil {
		t.Fatal(err)
	}
	// Processes in the VM before the daemon opens anything (the echo
	// server); every pooled channel adds one handler there, which the VM
	// spawns a little after dom0 counts the channel as idle.
	vmBase := measure(t, a).vmProcs
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); d.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	addr := d.Addr("echo").String()

	settled := func() bool {
		st := d.Status().Tunnels[0]
		return st.PoolIdle == cfg.Pool && st.Active == 0 && measure(t, a).vmProcs == vmBase+cfg.Pool
	}
	waitFor(t, "a full pool", settled)
	before := measure(t, a)

	const total, parallel = 1000, 100
	var wg sync.WaitGroup
	errs := make(chan error, total)
	sem := make(chan struct{}, parallel)
	for i := 0; i < total; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- roundTrip(addr, fmt.Sprintf("conn %d\n", i))
		}(i)
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			if failed < 5 {
				t.Error(err)
			}
			failed++
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d connections failed", failed, total)
	}
	st := d.Status().Tunnels[0]
	if st.Total != total || st.Failed != 0 || st.Refused != 0 {
		t.Errorf("status after the run: %+v", st)
	}
	var after counts
	released := func() bool {
		if !settled() {
			return false
		}
		after = measure(t, a)
		return after.goroutines <= before.goroutines && after.fds <= before.fds &&
			after.children <= before.children && after.vmProcs <= before.vmProcs
	}
	// Bounded wait; on failure say what stayed behind, so a leak and a slow
	// pool refill on a loaded machine can be told apart.
	deadline := time.Now().Add(90 * time.Second)
	for !released() {
		if time.Now().After(deadline) {
			t.Fatalf("not released after %d connections: before %v, now %v, tunnel %+v",
				total, before, measure(t, a), d.Status().Tunnels[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("before: %v; after %d connections: %v", before, total, after)
}

// roundTrip sends msg, half-closes and expects it echoed back.
func roundTrip(addr, msg string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(b) != msg {
		return fmt.Errorf("echo %q, want %q", b, msg)
	}
	return nil
}

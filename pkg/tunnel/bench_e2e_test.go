package tunnel_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/bench"
	"github.com/qubes-claw/qubes-claw/pkg/sim"
)

// socatChain starts the setup qubes-claw replaces (qubes.md §7): a socat
// listener in dom0 forking, per connection, a shell wrapper that execs
// qrexec-client -d VM 'DEFAULT:QUBESRPC qubes.ConnectTCP+PORT dom0', with the
// VM side being the stock qubes.ConnectTCP → /dev/tcp/127.0.0.1 symlink and
// its rpc-config (as qubes-core-agent ships them).
func socatChain(b *testing.B, a *agent, listen, port int) {
	b.Helper()
	if _, err := exec.LookPath("socat"); err != nil {
		b.Skip("socat not installed (make deps installs it)")
	}
	// Into the running AppVM itself (as qubes-core-agent's files would be).
	a.m.Symlink("agent", "/dev/tcp/127.0.0.1", "/etc/qubes-rpc/qubes.ConnectTCP")
	a.m.WriteFile("agent", "/etc/qubes/rpc-config/qubes.ConnectTCP",
		[]byte("skip-service-descriptor=true\nexit-on-service-eof=true\n"), 0o644)
	wrapper := filepath.Join(b.TempDir(), "qrexec-connect.sh")
	script := fmt.Sprintf("#!/bin/sh\nexec qrexec-client -d agent 'DEFAULT:QUBESRPC qubes.ConnectTCP+%d dom0'\n", port)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("socat", fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", listen), "EXEC:"+wrapper)
	cmd.Env = a.m.Env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		cmd.Wait()
	})
}

// getFresh does one HTTP GET /health on a new connection.
func getFresh(port int) func() error {
	c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/health"
	return func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || string(body) != "ok\n" {
			return fmt.Errorf("GET %s: %q %v", url, body, err)
		}
		return nil
	}
}

// echoBulk sends n bytes to the echo port and reads them back, at once.
func echoBulk(port int, n int64) func() error {
	return func() error {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return err
		}
		defer c.Close()
		go func() {
			io.CopyBuffer(c, io.LimitReader(zeros{}, n), make([]byte, 256<<10))
			c.(*net.TCPConn).CloseWrite()
		}()
		got, err := io.CopyBuffer(io.Discard, c, make([]byte, 256<<10))
		if err == nil && got != n {
			err = fmt.Errorf("echoed %d of %d bytes", got, n)
		}
		return err
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// spawned counts qrexec-client runs and processes spawned in the agent VM.
func spawned(a *agent) (qrexec, vm int) {
	inv, _ := a.m.Sim.ReadInvocations()
	for _, i := range inv {
		switch {
		case i.Kind == "tool" && i.Tool == "qrexec-client":
			qrexec++
		case i.Kind == "spawn" && i.Domain == "agent":
			vm++
		}
	}
	return qrexec, vm
}

// BenchmarkTunnel measures, in one simulated machine: a fresh-connection
// HTTP GET directly to the VM's server (the machine shares the host's
// loopback when not isolated), through qubes-claw-tunnel, through the socat
// chain, and through the floor chain (floorChain); bulk echo throughput
// through the tunnel against direct; and processes spawned per connection
// from the invocation log.
//
// Every GET waits the same idle gap first and the order of the four
// rotates each round, so that none is measured on CPUs another has just
// woken: here a request right after another one is 15-20% faster.
func BenchmarkTunnel(b *testing.B) {
	a := newAgent(b, false)
	tp, ep, sp := freePort(b), freePort(b), freePort(b)
	a.startDaemon(b, sim.Dom0, "127.0.0.1:"+strconv.Itoa(tp), "127.0.0.1:"+strconv.Itoa(ep), "log:\n  level: warn\n")
	socatChain(b, a, sp, a.httpPort)
	floor := newFloorChain(b, a.httpPort)
	direct, ours, socat := getFresh(a.httpPort), getFresh(tp), getFresh(sp)
	waitFor(b, "the tunnel", func() bool { return ours() == nil })
	waitFor(b, "the socat chain", func() bool {
		err := socat()
		if err != nil {
			b.Log(err)
		}
		return err == nil
	})

	const n = 200
	// The gap also lets the pools refill (two process starts, tens of
	// milliseconds of CPU) off the measured path, as between an agent's
	// requests.
	const gap = 50 * time.Millisecond
	type kind struct {
		get     func() error
		after   func() // untimed
		samples bench.Samples
	}
	kinds := []*kind{{get: direct}, {get: ours}, {get: socat}}
	if floor != nil {
		kinds = append(kinds, &kind{get: floor.get, after: floor.refill})
	}
	for i := 0; i < n+1; i++ {
		for j := range kinds {
			k := kinds[(i+j)%len(kinds)]
			time.Sleep(gap)
			d := bench.Time(b, k.get)
			if k.after != nil {
				k.after()
			}
			if i > 0 { // the first round warms up
				k.samples = append(k.samples, d)
			}
		}
	}
	d, o, s := kinds[0].samples, kinds[1].samples, kinds[2].samples
	b.Logf("direct %s; tunnel %s; socat chain %s", bench.Summary(d), bench.Summary(o), bench.Summary(s))
	bench.ReportLatency(b, "get-direct", d)
	bench.ReportLatency(b, "get-tunnel", o)
	bench.ReportLatency(b, "get-socat", s)
	bench.ReportRatio(b, "get-tunnel-vs-direct", o, d)
	bench.ReportRatio(b, "get-tunnel-vs-socat", o, s)
	overOurs := ms(o.Median() - d.Median())
	overSocat := ms(s.Median() - d.Median())
	b.ReportMetric(overOurs, "get-tunnel-overhead-ms")
	b.ReportMetric(overSocat, "get-socat-overhead-ms")
	b.ReportMetric(overOurs/overSocat, "overhead-vs-socat-ratio")
	if floor != nil {
		f := kinds[3].samples
		overFloor := ms(f.Median() - d.Median())
		b.Logf("floor chain %s", bench.Summary(f))
		bench.ReportLatency(b, "get-floor", f)
		b.ReportMetric(overFloor, "get-floor-overhead-ms")
		b.ReportMetric(overOurs/overFloor, "overhead-vs-floor-ratio")
	}
	// The machine's price of one hand-off between processes, measured in
	// the same run: a tunnel adds at least six (three relays, each way).
	hop := handoff(b, gap)
	b.ReportMetric(float64(hop)/float64(time.Microsecond), "process-handoff-us")
	b.ReportMetric(float64(o.Median()-d.Median())/float64(hop), "get-tunnel-overhead-handoffs")

	// Throughput: the same bytes echoed both ways, tunnel vs direct, each
	// run after a pause that lets the pool refill (tens of milliseconds of
	// CPU) before, not during, the next one.
	const size = 128 << 20
	bo, bd := bench.CompareSpaced(b, 9, 300*time.Millisecond, echoBulk(ep, size), echoBulk(a.echoPort, size))
	b.Logf("bulk echo of %d MiB: tunnel %s, direct %s", size>>20, bench.Summary(bo), bench.Summary(bd))
	b.ReportMetric(float64(2*size)/bo.Median().Seconds()/(1<<20), "bulk-tunnel-MiB/s")
	b.ReportMetric(float64(2*size)/bd.Median().Seconds()/(1<<20), "bulk-direct-MiB/s")
	b.ReportMetric(float64(bd.Median())/float64(bo.Median()), "bulk-throughput-ratio")

	// Processes per connection, from the invocation log.
	const k = 50
	count := func(get func() error) (float64, float64) {
		time.Sleep(200 * time.Millisecond)
		q0, v0 := spawned(a)
		for i := 0; i < k; i++ {
			if err := get(); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(500 * time.Millisecond) // exits are logged when they happen
		q1, v1 := spawned(a)
		return float64(q1-q0) / k, float64(v1-v0) / k
	}
	oq, ov := count(ours)
	sq, sv := count(socat)
	b.ReportMetric(oq, "tunnel-qrexec-client-per-conn")
	b.ReportMetric(ov, "tunnel-vm-spawns-per-conn")
	b.ReportMetric(sq, "socat-qrexec-client-per-conn")
	b.ReportMetric(sv, "socat-vm-spawns-per-conn")
}

// handoff is half the median round trip of one byte through cat(1) over
// pipes, with requests spaced as the GETs are: one process waking another.
func handoff(b *testing.B, gap time.Duration) time.Duration {
	b.Helper()
	cmd := exec.Command("cat")
	w, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	r, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	defer w.Close()
	var s bench.Samples
	one := make([]byte, 1)
	for i := 0; i < 101; i++ {
		rt := bench.Time(b, func() error {
			if _, err := w.Write(one); err != nil {
				return err
			}
			_, err := io.ReadFull(r, one)
			return err
		})
		if i > 0 {
			s = append(s, rt)
		}
		time.Sleep(gap)
	}
	return s.Median() / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// floorChain is the tunnel's topology with nothing but relaying: three
// single-threaded C relays (testdata/floorrelay.c) standing for the daemon,
// the qrexec client and the handler, a fresh set per connection started
// ahead of use, the last connecting to the server at the first byte. Its
// overhead over direct is what this machine charges for the hops
// themselves; the tunnel's overhead above it is the tunnel's own.
type floorChain struct {
	b       *testing.B
	relay   string
	srvPort int
	next    *floorConn
}

// floorConn is one started set of relays, listening on port.
type floorConn struct {
	port  int
	procs []*exec.Cmd
}

// newFloorChain builds the relay with the C compiler, or returns nil (the
// line is then left out) when there is none.
func newFloorChain(b *testing.B, srvPort int) *floorChain {
	b.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		b.Log("no C compiler: the floor chain is left out")
		return nil
	}
	relay := filepath.Join(b.TempDir(), "floorrelay")
	if out, err := exec.Command(cc, "-O2", "-o", relay, "testdata/floorrelay.c").CombinedOutput(); err != nil {
		b.Fatalf("cc floorrelay.c: %v\n%s", err, out)
	}
	f := &floorChain{b: b, relay: relay, srvPort: srvPort}
	f.next = f.start()
	b.Cleanup(func() { f.next.stop() })
	err = f.get()
	f.refill()
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// get does one GET through the started set of relays.
func (f *floorChain) get() error { return getFresh(f.next.port)() }

// refill waits for the used set's relays to exit and starts the next set.
func (f *floorChain) refill() {
	for _, p := range f.next.procs {
		p.Wait()
	}
	f.next = f.start()
}

func (f *floorChain) start() *floorConn {
	fail := func(err error) *floorConn {
		f.b.Fatal(err)
		return nil
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	lf, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		return fail(err)
	}
	var p [8]*os.File // 0→1: listen→pipe, 2→3: pipe→listen, 4→5: pipe→connect, 6→7: connect→pipe
	for i := 0; i < len(p); i += 2 {
		if p[i+1], p[i], err = os.Pipe(); err != nil {
			return fail(err)
		}
	}
	listen := exec.Command(f.relay, "listen")
	listen.ExtraFiles = []*os.File{lf, p[0], p[3]}
	pipe := exec.Command(f.relay, "pipe")
	pipe.Stdin, pipe.Stdout = p[1], p[2]
	pipe.ExtraFiles = []*os.File{p[4], p[7]}
	conn := exec.Command(f.relay, "connect", strconv.Itoa(f.srvPort))
	conn.Stdin, conn.Stdout = p[5], p[6]
	c := &floorConn{port: port}
	for _, cmd := range []*exec.Cmd{listen, pipe, conn} {
		if err := cmd.Start(); err != nil {
			return fail(err)
		}
		c.procs = append(c.procs, cmd)
	}
	lf.Close()
	for _, x := range p {
		x.Close()
	}
	return c
}

func (c *floorConn) stop() {
	for _, p := range c.procs {
		p.Process.Kill()
		p.Wait()
	}
}

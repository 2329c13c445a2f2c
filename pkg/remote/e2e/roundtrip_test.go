package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/remote/executor"
	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

// TestRoundTrip is the happy path of issue 3's acceptance, in one machine:
// hostname, exit codes, separate streams, binary output, live streaming,
// truncation, timeout.
func TestRoundTrip(t *testing.T) {
	e := newEnv(t, "", "work")
	e.start()

	t.Run("hostname", func(t *testing.T) {
		want := e.m.Dom0("hostname")
		r := e.m.VM("work", "qvm-remote hostname")
		if r.Code != 0 || r.Stdout != want.Stdout || r.Stderr != "" {
			t.Fatalf("hostname: %v, dom0 says %q", r, want.Stdout)
		}
		if !strings.Contains(readFile(t, e.vmPath("work", "/home/user/.qvm-remote/audit.log")), "hostname") {
			t.Error("no VM-side audit line")
		}
	})

	t.Run("exit codes 0..255", func(t *testing.T) {
		// One VM shell runs all 256 clients, so the test does not pay 256
		// simulator round trips of its own.
		r := e.m.VM("work", `for i in $(seq 0 255); do qvm-remote "exit $i"; echo "$i $?"; done`)
		if r.Code != 0 {
			t.Fatalf("%v", r)
		}
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if len(lines) != 256 {
			t.Fatalf("%d results: %v", len(lines), r)
		}
		for i, l := range lines {
			if l != fmt.Sprintf("%d %d", i, i) {
				t.Errorf("exit %d came back as %q", i, l)
			}
		}
	})

	t.Run("stdout and stderr apart", func(t *testing.T) {
		r := e.m.VM("work", `qvm-remote 'echo out; echo err >&2; echo out2; exit 3'`)
		if r.Code != 3 || r.Stdout != "out\nout2\n" || r.Stderr != "err\n" {
			t.Fatalf("%v", r)
		}
	})

	t.Run("all byte values", func(t *testing.T) {
		var script strings.Builder
		script.WriteString("printf '")
		for i := 0; i < 256; i++ {
			fmt.Fprintf(&script, "\\%03o", i)
		}
		script.WriteString("'")
		e.m.WriteFile("work", "/home/user/bytes.sh", []byte(script.String()), 0o644)
		r := e.m.VM("work", "qvm-remote < ~/bytes.sh | od -An -v -tx1 | tr -d ' \\n'")
		var want strings.Builder
		for i := 0; i < 256; i++ {
			fmt.Fprintf(&want, "%02x", i)
		}
		if r.Code != 0 || r.Stdout != want.String() {
			t.Fatalf("got %v\nwant %s", r, want.String())
		}
	})

	t.Run("output streams live", func(t *testing.T) {
		// The command prints a line every 200 ms and then waits for a
		// marker that the test creates only after the client printed the
		// first line: it can end only if output arrives while it runs.
		marker := e.vmPath(sim.Dom0, "/root/seen-first-line")
		cmd := exec.Command(e.m.Bin+"/qubes-sim", "vm", e.m.Dir, "work", "--",
			`qvm-remote 'for i in 1 2 3; do echo line$i; sleep 0.2; done; while [ ! -e ~/seen-first-line ]; do sleep 0.05; done; echo last'`)
		cmd.Env = e.m.Env()
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		first := make(chan string, 1)
		rest := make(chan string, 1)
		go func() {
			br := bufio.NewReader(out)
			l, _ := br.ReadString('\n')
			first <- l
			var b bytes.Buffer
			b.ReadFrom(br)
			rest <- b.String()
		}()
		select {
		case l := <-first:
			if l != "line1\n" {
				t.Fatalf("first line %q", l)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the first line did not arrive while the command ran")
		}
		os.WriteFile(marker, nil, 0o600)
		select {
		case r := <-rest:
			if r != "line2\nline3\nlast\n" {
				t.Errorf("rest %q", r)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the command did not end after the marker")
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("client: %v", err)
		}
	})

	t.Run("20 MiB truncated", func(t *testing.T) {
		r := e.m.VM("work", `qvm-remote 'head -c 20971520 /dev/zero | tr "\0" x' | wc -c; qvm-remote 'head -c 20971520 /dev/zero | tr "\0" x' | tail -c 200`)
		lines := strings.SplitN(r.Stdout, "\n", 2)
		marker := executor.TruncationMarker("stdout", 10<<20)
		n, _ := strconv.Atoi(strings.TrimSpace(lines[0]))
		if r.Code != 0 || n != 10<<20+len(marker) || !strings.HasSuffix(r.Stdout, marker) {
			t.Fatalf("%d bytes, tail %q, code %d", n, lines[len(lines)-1], r.Code)
		}
	})

	t.Run("timeout kills the group", func(t *testing.T) {
		start := time.Now()
		r := e.m.VM("work", `qvm-remote -t 2 'sleep 600 & wait'`)
		if r.Code != 124 {
			t.Fatalf("%v", r)
		}
		// A bound on waiting (kill_grace is 5 s): "within a few seconds".
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("took %v", d)
		}
		for _, p := range simtest.Leftovers(e.m.Dir) {
			if strings.Contains(p.Cmdline, "sleep 600") {
				t.Errorf("left behind: %v", p)
			}
		}
	})
}

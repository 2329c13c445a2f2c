package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/remote/keys"
	"github.com/qubes-claw/qubes-claw/pkg/sim"
)

// background starts a VM command the test does not wait for.
func (e *env) background(vm, command string) *exec.Cmd {
	e.t.Helper()
	cmd := exec.Command(e.m.Bin+"/qubes-sim", "vm", e.m.Dir, vm, "--", command)
	cmd.Env = e.m.Env()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if e.t.Failed() {
			e.t.Logf("%s: %s", command, out.String())
		}
	})
	return cmd
}

func (e *env) waitFile(domain, p string) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(e.vmPath(domain, p)); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("%s:%s never appeared", domain, p)
}

func (e *env) mainPID() int {
	e.t.Helper()
	r := e.m.Dom0("systemctl", "show", "-p", "MainPID", "--value", "qvm-remote-dom0")
	pid, err := strconv.Atoi(strings.TrimSpace(r.Stdout))
	if err != nil || pid == 0 {
		e.t.Fatalf("MainPID: %v", r)
	}
	return pid
}

// TestDaemonKilledMidCommand: kill -9 of the daemon while a command runs;
// after the restart the client is told "interrupted" and the command did
// not run twice.
func TestDaemonKilledMidCommand(t *testing.T) {
	e := newEnv(t, "", "work")
	e.start()
	r := make(chan string, 1)
	go func() {
		res := e.m.VM("work", "qvm-remote 'echo x >> ~/count; sleep 30'; echo \"exit $?\"")
		r <- res.Stdout + res.Stderr
	}()
	e.waitFile(sim.Dom0, "/root/count")
	if err := syscall.Kill(e.mainPID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Restart=on-failure brings it back; start it ourselves if the
	// simulator has not yet, so the test does not depend on RestartSec.
	e.m.Dom0("systemctl", "start", "qvm-remote-dom0")
	select {
	case out := <-r:
		if !strings.Contains(out, "interrupted") || !strings.Contains(out, "exit 255") {
			t.Errorf("client: %q", out)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no answer after the restart\n%s", e.journal())
	}
	if got := readFile(t, e.vmPath(sim.Dom0, "/root/count")); got != "x\n" {
		t.Errorf("ran %q", got)
	}
}

// TestVMHaltedMidCommand: a VM halted while its command runs does not
// disturb another VM, and is served again when it starts.
func TestVMHaltedMidCommand(t *testing.T) {
	e := newEnv(t, "", "a", "b")
	e.start()
	e.background("a", "qvm-remote 'touch ~/a-started; sleep 3; echo done >> ~/a-done'")
	e.waitFile(sim.Dom0, "/root/a-started")
	if r := e.m.Host("qvm-shutdown", "--wait", "a"); r.Code != 0 {
		t.Fatal(r)
	}
	if r := e.m.VM("b", "qvm-remote 'echo b'"); r.Code != 0 || r.Stdout != "b\n" {
		t.Errorf("b disturbed: %v", r)
	}
	e.waitFile(sim.Dom0, "/root/a-done")
	if r := e.m.VM("a", "qvm-remote 'echo again'"); r.Code != 0 || r.Stdout != "again\n" {
		t.Errorf("a after its restart: %v\n%s", r, e.journal())
	}
	if got := readFile(t, e.vmPath(sim.Dom0, "/root/a-done")); got != "done\n" {
		t.Errorf("a's command ran %q", got)
	}
}

// TestHostileVMCutOff: a VM whose "qvm-remote serve" sends a hello and then
// a frame announcing 1 GiB is cut off; another VM keeps working.
func TestHostileVMCutOff(t *testing.T) {
	e := newEnv(t, "", "work")
	e.m.StandaloneVM("evil")
	// A valid hello (type 1, 7 bytes: QVMR, version 3, no name), then a
	// submit header claiming 1 GiB, then silence.
	e.m.WriteFile("evil", "/usr/bin/qvm-remote", []byte("#!/bin/sh\nprintf '\\001\\000\\000\\000\\007QVMR\\000\\003\\000\\002\\100\\000\\000\\000'\nexec sleep 600\n"), 0o755)
	if r := e.m.VM("evil", "true"); r.Code != 0 {
		t.Fatal(r)
	}
	if r := e.m.Dom0("qvm-remote-dom0 authorize evil " + keys.Generate().Hex()); r.Code != 0 {
		t.Fatal(r)
	}
	e.start()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(e.journal(), "channel cut off") {
		if time.Now().After(deadline) {
			t.Fatalf("hostile channel not cut off\n%s", e.journal())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := e.m.VM("work", "qvm-remote 'echo fine'"); r.Stdout != "fine\n" {
		t.Errorf("work disturbed: %v", r)
	}
}

// TestConcurrentVMs: 4 VMs × 50 concurrent commands give 200 correct
// results, none lost or duplicated.
func TestConcurrentVMs(t *testing.T) {
	vms := []string{"v1", "v2", "v3", "v4"}
	e := newEnv(t, "", vms...)
	e.start()
	var wg sync.WaitGroup
	results := make([]string, len(vms))
	for i, vm := range vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// 50 clients at once in the VM; each result must be its own.
			script := fmt.Sprintf(`for i in $(seq 1 50); do (qvm-remote "echo %s-$((i*i))" > ~/r.$i; echo $? >> ~/r.$i) & done; wait
ok=0; for i in $(seq 1 50); do [ "$(cat ~/r.$i)" = "$(printf '%s-%%d\n0' $((i*i)))" ] && ok=$((ok+1)); done; echo $ok`, vm, vm)
			r := e.m.VM(vm, script)
			results[i] = strings.TrimSpace(r.Stdout + r.Stderr)
		}()
	}
	wg.Wait()
	for i, vm := range vms {
		if results[i] != "50" {
			t.Errorf("%s: %s of 50 correct", vm, results[i])
		}
	}
	// Nothing ran twice: dom0's audit has exactly 200 DONE lines beyond
	// the channel checks start() made.
	if n := strings.Count(e.journal(), "command done"); n != 200 {
		t.Errorf("%d commands done in dom0, want 200", n)
	}
}

// TestEnableWithoutTerminal: enable refuses without a terminal, and the
// unit stays disabled (the pty cases are cmd/qvm-remote-dom0's unit tests).
func TestEnableWithoutTerminal(t *testing.T) {
	e := newEnv(t, "", "work")
	r := e.m.Dom0Input([]byte("yes\n"), "qvm-remote-dom0", "enable")
	if r.Code != 1 || !strings.Contains(r.Stderr, "terminal") {
		t.Errorf("%v", r)
	}
	if r := e.m.Dom0("systemctl", "is-enabled", "qvm-remote-dom0"); strings.TrimSpace(r.Stdout) != "disabled" {
		t.Errorf("is-enabled: %v", r)
	}
}

// TestServedWithoutRestart: a VM authorized while the daemon runs, and a
// VM started after it, are both served without a restart.
func TestServedWithoutRestart(t *testing.T) {
	e := newEnv(t, "", "first", "late")
	e.vms = []string{"first"}
	e.start()
	if r := e.m.Host("qvm-shutdown", "--wait", "late"); r.Code != 0 {
		t.Fatal(r)
	}
	e.authorize("late") // starts it: a VM start and a new key at once
	if r := e.m.VM("late", "qvm-remote 'echo late'"); r.Code != 0 || r.Stdout != "late\n" {
		t.Errorf("%v\n%s", r, e.journal())
	}
}

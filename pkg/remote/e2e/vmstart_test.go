package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

// daemonCalls returns dom0's qvm-check and qvm-run calls about vm that
// started in [from, to) (the daemon is the only dom0 caller of either in
// these tests). The log has a call once it ended: a channel's qvm-run shows
// only after the channel closed.
func (e *env) daemonCalls(vm string, from, to time.Time) []sim.Invocation {
	var out []sim.Invocation
	for _, inv := range e.m.Invocations() {
		if inv.Kind == "tool" && inv.Domain == sim.Dom0 && (inv.Tool == "qvm-check" || inv.Tool == "qvm-run") && contains(inv.Argv, vm) &&
			!inv.Start.Before(from) && inv.Start.Before(to) {
			out = append(out, inv)
		}
	}
	return out
}

func describeCalls(calls []sim.Invocation) string {
	var b strings.Builder
	for _, c := range calls {
		b.WriteString(c.Start.Format("15:04:05.000") + " " + strings.Join(c.Argv, " ") + " → exit " + strconv.Itoa(c.Exit) + "\n")
	}
	return b.String()
}

// TestStartedVMPickedUp: with the daemon running and a VM halted, the
// daemon does not poll the VM; `qvm-start` creates dom0's
// /run/qubes/qrexec.VM, which wakes the daemon, so a `qvm-remote true`
// issued right after the start completes within a bounded wait far below
// the halted VM's re-check interval (halted_recheck, 2 min by default and
// not overridden here) — only the socket watch can serve it in time.
func TestStartedVMPickedUp(t *testing.T) {
	e := newEnv(t, "", "work", "other")
	e.start()
	forever := time.Now().Add(time.Hour)
	halting := time.Now()
	if r := e.m.Host("qvm-shutdown", "--wait", "work"); r.Code != 0 {
		t.Fatal(r)
	}
	// The channel ends with the VM; the daemon's next attempt finds it
	// halted (a failing qvm-check --running).
	waitCalls := func(what string, from time.Time, ok func(sim.Invocation) bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			calls := e.daemonCalls("work", from, forever)
			for _, c := range calls {
				if ok(c) {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s:\n%s\n%s", what, describeCalls(calls), e.journal())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitCalls("the daemon to find work halted", halting, func(c sim.Invocation) bool {
		return c.Tool == "qvm-check" && c.Exit != 0 && contains(c.Argv, "--running")
	})

	// Halted: no polling. The reopen backoff of this configuration (100 ms
	// doubling to 2 s) would make several qvm-checks in this window.
	quiet := time.Now()
	time.Sleep(3 * time.Second)
	if calls := e.daemonCalls("work", quiet, forever); len(calls) != 0 {
		t.Errorf("%d dom0 calls about halted work while it stayed halted (polling):\n%s", len(calls), describeCalls(calls))
	}

	started := time.Now()
	if r := e.m.Host("qvm-start", "work"); r.Code != 0 {
		t.Fatal(r)
	}
	done := make(chan simtest.Result, 1)
	go func() { done <- e.m.VM("work", "qvm-remote true") }()
	select {
	case r := <-done:
		if r.Code != 0 {
			t.Fatalf("qvm-remote true after the start: %v\n%s", r, e.journal())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("qvm-remote true not answered within 5 s of the VM's start (the socket watch did not wake the daemon)\n%s\n%s",
			describeCalls(e.daemonCalls("work", started, forever)), e.journal())
	}
	answered := time.Now()

	// The hot path from the start to the answer: one channel opened by one
	// attempt (qvm-check --running, qvm-check --paused, qvm-run), nothing
	// repeated, no miss. The channel's qvm-run is logged when it ends, so
	// halt the VM and wait for it.
	if r := e.m.Host("qvm-shutdown", "--wait", "work"); r.Code != 0 {
		t.Fatal(r)
	}
	waitCalls("the channel's qvm-run to end", started, func(c sim.Invocation) bool { return c.Tool == "qvm-run" })
	calls := e.daemonCalls("work", started, answered)
	runs, checks := 0, 0
	for _, c := range calls {
		switch c.Tool {
		case "qvm-run":
			runs++
		case "qvm-check":
			checks++
			if c.Exit != 0 && contains(c.Argv, "--running") {
				t.Errorf("a failed qvm-check --running after the start: the daemon polled before the VM ran")
			}
		}
	}
	if runs != 1 || checks > 2 {
		t.Errorf("dom0 calls about work from its start to the answer: %d qvm-run, %d qvm-check; want 1 and at most 2\n%s", runs, checks, describeCalls(calls))
	}

	// The other VM was never disturbed.
	if r := e.m.VM("other", "qvm-remote 'echo fine'"); r.Code != 0 || r.Stdout != "fine\n" {
		t.Errorf("other: %v", r)
	}
}

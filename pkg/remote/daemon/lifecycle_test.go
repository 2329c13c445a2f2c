package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/remote/keys"
	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
	"github.com/qubes-claw/qubes-claw/pkg/testwait"
)

// waitFor waits for cond, bounded (testwait.For).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, 10*time.Second, what, cond)
}

// A VM that starts while its loop sits in a long backoff is served as soon
// as its qrexec socket appears, not at the end of the backoff.
func TestStartedVMServedOnQrexecSocket(t *testing.T) {
	h := newHarness(t, "work")
	h.cfg.ReopenMin, h.cfg.ReopenMax = time.Hour, time.Hour
	if err := os.MkdirAll(string(h.cfg.QrexecDir), 0o770); err != nil {
		t.Fatal(err)
	}
	h.down["work"] = true
	h.start("work")
	waitFor(t, "the first attempt", func() bool { h.mu.Lock(); defer h.mu.Unlock(); return h.opens["work"] == 1 })
	h.mu.Lock()
	h.down["work"] = false
	h.mu.Unlock()
	if err := os.WriteFile(filepath.Join(string(h.cfg.QrexecDir), "qrexec.work"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if o := h.exec("work", "echo up", 10*time.Second); string(o.stdout) != "up\n" || o.err != nil {
		t.Fatalf("got %+v %q", o, o.stdout)
	}
}

// Wake("") cuts every backoff short (SIGUSR1 of the daemon).
func TestWakeAll(t *testing.T) {
	h := newHarness(t, "work")
	h.cfg.ReopenMin, h.cfg.ReopenMax = time.Hour, time.Hour
	h.cfg.QrexecDir = ""
	h.down["work"] = true
	h.start("work")
	waitFor(t, "the first attempt", func() bool { h.mu.Lock(); defer h.mu.Unlock(); return h.opens["work"] == 1 })
	h.mu.Lock()
	h.down["work"] = false
	h.mu.Unlock()
	h.d.Wake("")
	if o := h.exec("work", "echo up", 10*time.Second); string(o.stdout) != "up\n" {
		t.Fatalf("got %+v", o)
	}
}

// Following the key directory: a VM authorized after the start is served.
func TestNewlyAuthorizedVMServed(t *testing.T) {
	h := newHarness(t, "a", "b")
	store := keys.Store{Dir: string(h.cfg.KeyDir)}
	if err := store.Revoke("b"); err != nil {
		t.Fatal(err)
	}
	h.startWith(nil, nil)
	if o := h.exec("a", "echo a", 10*time.Second); string(o.stdout) != "a\n" {
		t.Fatalf("a: %+v", o)
	}
	h.mu.Lock()
	opensB := h.opens["b"]
	h.mu.Unlock()
	if opensB != 0 {
		t.Fatalf("b served before it was authorized")
	}
	if err := store.Authorize("b", h.keys["b"]); err != nil {
		t.Fatal(err)
	}
	if o := h.exec("b", "echo b", 10*time.Second); string(o.stdout) != "b\n" {
		t.Fatalf("b: %+v", o)
	}
}

// --once answers the backlog and returns; nothing else is left running.
func TestOnce(t *testing.T) {
	h := newHarness(t, "work")
	q := h.queues["work"]
	body := []byte("echo queued")
	tok := token(t, h.keys["work"], "work", "early-1", time.Now(), 0, body)
	if err := q.Submit("early-1", body, tok); err != nil {
		t.Fatal(err)
	}
	h.startWith(func(d *Daemon) { d.Once = true }, []string{"work"})
	select {
	case <-h.done:
	case <-time.After(20 * time.Second):
		t.Fatal("--once did not return")
	}
	// The pipe harness does not wait for the agent to exit as qvm-run does.
	if code, meta := h.waitResult(q, "early-1"); code != 0 {
		t.Fatalf("backlog: %d %+v", code, meta)
	}
	if b, _ := os.ReadFile(q.Result("early-1", "out")); string(b) != "queued\n" {
		t.Errorf("output %q", b)
	}
}

// --dry-run reports verdicts and leaves the commands queued for the real
// daemon, which then runs them (not as replays).
func TestDryRun(t *testing.T) {
	h := newHarness(t, "work")
	q := h.queues["work"]
	good := []byte("echo real")
	bad := []byte("echo forged")
	if err := q.Submit("dry-good", good, token(t, h.keys["work"], "work", "dry-good", time.Now(), 0, good)); err != nil {
		t.Fatal(err)
	}
	if err := q.Submit("dry-bad", bad, token(t, keys.Generate(), "work", "dry-bad", time.Now(), 0, bad)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[proto.ID]string{}
	h.startWith(func(d *Daemon) {
		d.DryRun = true
		d.Report = func(e DryRunEntry) { mu.Lock(); got[e.ID] = e.Verdict; mu.Unlock() }
	}, []string{"work"})
	<-h.done
	h.d.Close()
	h.cancel = nil
	if !strings.HasPrefix(got["dry-good"], "would run") || got["dry-bad"] != proto.ReasonAuth.String() {
		t.Fatalf("verdicts %v", got)
	}
	if _, ok := q.ReadExit("dry-good"); ok {
		t.Fatal("dry run answered a command")
	}
	h.start("work")
	code, meta := h.waitResult(q, "dry-good")
	if code != 0 || meta.Status != "exited" {
		t.Fatalf("after the dry run: %d %+v", code, meta)
	}
}

// A result that finds no channel (the VM halted while its command ran) is
// delivered when the VM comes back: the right status, not a replay refusal,
// and the command ran once.
func TestResultKeptForHaltedVM(t *testing.T) {
	h := newHarness(t, "work")
	h.cfg.ReopenMin, h.cfg.ReopenMax = time.Hour, time.Hour
	h.start("work")
	q := h.queues["work"]
	flag := filepath.Join(h.root, "go")
	count := filepath.Join(h.root, "count")
	body := []byte("echo x >> " + count + "; while [ ! -e " + flag + " ]; do sleep 0.02; done; exit 7")
	if err := q.Submit("halt-1", body, token(t, h.keys["work"], "work", "halt-1", time.Now(), 0, body)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the command to start", func() bool { _, err := os.Stat(count); return err == nil })
	h.mu.Lock()
	h.down["work"] = true
	ch := h.live["work"]
	h.mu.Unlock()
	ch.Close()
	waitFor(t, "the channel to close", func() bool {
		h.d.mu.Lock()
		defer h.d.mu.Unlock()
		return h.d.sessions["work"] == nil
	})
	os.WriteFile(flag, nil, 0o600)
	waitFor(t, "the result to be kept", func() bool {
		h.d.mu.Lock()
		defer h.d.mu.Unlock()
		r := h.d.records[cmdKey{"work", "halt-1"}]
		return r != nil && r.ended
	})
	h.mu.Lock()
	h.down["work"] = false
	h.mu.Unlock()
	h.d.Wake("work")
	code, meta := h.waitResult(q, "halt-1")
	if code != 7 || meta.Status != "exited" {
		t.Fatalf("got %d %+v", code, meta)
	}
	if b, _ := os.ReadFile(count); string(b) != "x\n" {
		t.Errorf("ran %q", b)
	}
}

func TestStateLocked(t *testing.T) {
	h := newHarness(t, "work")
	d, err := New(h.cfg, logging.Discard(), h.open)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := New(h.cfg, logging.Discard(), h.open); !errors.Is(err, ErrLocked) {
		t.Fatalf("second daemon: %v", err)
	}
}

// A channel that breaks while a command runs, or after dom0 sent output and
// the result but before the VM handled them, loses nothing: the VM hands the
// command in again on its next channel and gets all of its output, once, and
// its result, and the command ran once. (Output written while the VM had no
// channel used to be dropped, leaving an exit status without its output, and
// frames lost with a channel were lost for good: a result became a "replay"
// refusal.)
func TestNothingLostWhenChannelBreaks(t *testing.T) {
	for _, tt := range []struct {
		name string
		// swallow: what dom0 sends after the break vanishes and the channel
		// closes only later (sent, never handled); otherwise it closes at
		// once.
		swallow bool
		// ended: the command ends before the VM has a channel again.
		ended bool
	}{
		{"closed while running", false, false},
		{"closed, ended meanwhile", false, true},
		{"frames lost while running", true, false},
		{"frames lost with the result", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "work")
			h.cfg.ReopenMin, h.cfg.ReopenMax = time.Hour, time.Hour // re-opened by Wake only
			h.cfg.QrexecDir = ""
			h.start("work")
			q := h.queues["work"]
			step := func(n int) string { return filepath.Join(h.root, fmt.Sprint("step", n)) }
			count := filepath.Join(h.root, "count")
			body := []byte(fmt.Sprintf("echo x >> %s; echo o1; echo e1 >&2\n"+
				"until [ -e %s ]; do sleep 0.01; done; echo o2; echo e2 >&2\n"+
				"until [ -e %s ]; do sleep 0.01; done; echo o3; exit 7\n", count, step(1), step(2)))
			const id = proto.ID("break-1")
			if err := q.Submit(id, body, token(t, h.keys["work"], "work", id, time.Now(), 0, body)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the first output in the VM", func() bool {
				return fileIs(q.Result(id, "out"), "o1\n") && fileIs(q.Result(id, "err"), "e1\n")
			})

			h.mu.Lock()
			ch := h.live["work"]
			h.mu.Unlock()
			if tt.swallow {
				ch.swallow.Store(true)
			} else {
				ch.Close()
				h.waitNoChannel("work")
			}
			touch(t, step(1))
			h.d.mu.Lock()
			rec := h.d.records[cmdKey{"work", id}]
			h.d.mu.Unlock()
			waitFor(t, "dom0 to have the second output", func() bool {
				rec.mu.Lock()
				defer rec.mu.Unlock()
				return string(rec.out[0]) == "o1\no2\n" && string(rec.out[1]) == "e1\ne2\n"
			})
			if tt.ended {
				touch(t, step(2))
				waitFor(t, "the command to end", func() bool {
					h.d.mu.Lock()
					defer h.d.mu.Unlock()
					return rec.ended
				})
			}
			if tt.swallow {
				ch.Close()
				h.waitNoChannel("work")
			}

			h.d.Wake("work")
			if !tt.ended {
				waitFor(t, "the output so far on the new channel", func() bool { return fileIs(q.Result(id, "out"), "o1\no2\n") })
				touch(t, step(2))
			}
			code, meta := h.waitResult(q, id)
			if code != 7 || meta.Status != "exited" || meta.Truncated != "" {
				t.Errorf("result %d %+v, want 7 exited", code, meta)
			}
			if !fileIs(q.Result(id, "out"), "o1\no2\no3\n") || !fileIs(q.Result(id, "err"), "e1\ne2\n") {
				out, _ := os.ReadFile(q.Result(id, "out"))
				errOut, _ := os.ReadFile(q.Result(id, "err"))
				t.Errorf("stdout %q stderr %q, want every line once", out, errOut)
			}
			if !fileIs(count, "x\n") {
				t.Error("the command did not run exactly once")
			}
			waitFor(t, "the VM's acknowledgement", func() bool {
				h.d.mu.Lock()
				defer h.d.mu.Unlock()
				return len(h.d.records) == 0
			})
		})
	}
}

func (h *harness) waitNoChannel(vm string) {
	h.t.Helper()
	waitFor(h.t, "the channel to close", func() bool {
		h.d.mu.Lock()
		defer h.d.mu.Unlock()
		return h.d.sessions[vm] == nil
	})
}

func fileIs(path, want string) bool {
	b, err := os.ReadFile(path)
	return err == nil && string(b) == want
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

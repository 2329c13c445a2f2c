package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/remote/keys"
	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
	"github.com/qubes-claw/qubes-claw/pkg/remote/queue"
	"github.com/qubes-claw/qubes-claw/pkg/sim"
)

// queueOf is vm's queue as the host sees it (a hostile client writes it
// directly).
func (e *env) queueOf(vm string) queue.Dir {
	return queue.Dir(e.vmPath(vm, "/home/user/.qvm-remote"))
}

func (e *env) vmKey(vm string) keys.Key {
	e.t.Helper()
	k, err := keys.Parse(readFile(e.t, e.queueOf(vm).KeyFile()))
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// answer waits (at most 2 s, the acceptance bound) for the result of a
// crafted entry and returns its exit status and reason.
func answer(t *testing.T, q queue.Dir, name string) (int, string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(q.Results(), name+".exit")); err == nil {
			meta, _ := os.ReadFile(filepath.Join(q.Results(), name+".meta"))
			for _, l := range strings.Split(string(meta), "\n") {
				if r, ok := strings.CutPrefix(l, "reason="); ok {
					return atoi(strings.TrimSpace(string(b))), r
				}
			}
			return atoi(strings.TrimSpace(string(b))), ""
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no answer to %s within 2 s", name)
	return 0, ""
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func sign(t *testing.T, k keys.Key, vm string, id proto.ID, ts time.Time, body []byte) proto.Token {
	t.Helper()
	mac, err := proto.Sign(k[:], proto.NewClaims(vm, id, ts, 0, body))
	if err != nil {
		t.Fatal(err)
	}
	return proto.Token{Time: ts.Unix(), Timeout: 0, MAC: mac}
}

// TestRejections: every refusal reaches the client within 2 s with exit 255
// and its reason, and runs nothing (each body would leave a file in dom0).
func TestRejections(t *testing.T) {
	e := newEnv(t, "", "a", "b", "c")
	e.start()
	ran := func(name string) string { return "touch ~/ran-" + name }
	qa, qb := e.queueOf("a"), e.queueOf("b")
	ka := e.vmKey("a")
	now := time.Now()

	// B shares A's key, so only the VM name in the token tells them apart.
	if r := e.m.Dom0("qvm-remote-dom0 authorize b " + ka.Hex()); r.Code != 0 {
		t.Fatal(r)
	}

	tests := []struct {
		name   string
		q      queue.Dir
		body   []byte
		tok    func(id proto.ID, body []byte) proto.Token
		reason string
	}{
		{"wrong key", qa, []byte(ran("wrongkey")),
			func(id proto.ID, b []byte) proto.Token { return sign(t, keys.Generate(), "a", id, now, b) }, "authentication failed"},
		{"body changed after signing", qa, []byte(ran("swapped")),
			func(id proto.ID, _ []byte) proto.Token { return sign(t, ka, "a", id, now, []byte("true")) }, "authentication failed"},
		{"token minted for A used from B", qb, []byte(ran("crossvm")),
			func(id proto.ID, b []byte) proto.Token { return sign(t, ka, "a", id, now, b) }, "authentication failed"},
		{"timestamp 10 minutes old", qa, []byte(ran("stale")),
			func(id proto.ID, b []byte) proto.Token { return sign(t, ka, "a", id, now.Add(-10*time.Minute), b) }, "timestamp outside"},
		{"binary", qa, []byte(ran("binary") + "\x01"),
			func(id proto.ID, b []byte) proto.Token { return sign(t, ka, "a", id, now, b) }, "binary content"},
		{"empty", qa, []byte(" \n\t"),
			func(id proto.ID, b []byte) proto.Token { return sign(t, ka, "a", id, now, b) }, "empty command"},
		{"oversized", qa, append([]byte(ran("oversized")+" #"), []byte(strings.Repeat("x", 2<<20))...),
			func(id proto.ID, b []byte) proto.Token { return sign(t, ka, "a", id, now, b) }, "too large"},
		{"no token", qa, []byte(ran("notoken")),
			func(proto.ID, []byte) proto.Token { return proto.Token{Time: now.Unix()} }, "authentication failed"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := proto.ID("rej-" + string(rune('a'+i)) + "-1")
			if err := tt.q.Submit(id, tt.body, tt.tok(id, tt.body)); err != nil {
				t.Fatal(err)
			}
			code, reason := answer(t, tt.q, string(id))
			if code != 255 || !strings.Contains(reason, tt.reason) {
				t.Errorf("got %d %q, want 255 %q", code, reason, tt.reason)
			}
		})
	}

	t.Run("replay of an executed command", func(t *testing.T) {
		body := []byte("echo x >> ~/replayed")
		id := proto.ID("replay-1")
		tok := sign(t, ka, "a", id, time.Now(), body)
		if err := qa.Submit(id, body, tok); err != nil {
			t.Fatal(err)
		}
		if code, reason := answer(t, qa, string(id)); code != 0 {
			t.Fatalf("first run: %d %q", code, reason)
		}
		for _, ext := range []string{"exit", "meta", "out", "err"} {
			os.Remove(qa.Result(id, ext))
		}
		if err := qa.Submit(id, body, tok); err != nil {
			t.Fatal(err)
		}
		if code, reason := answer(t, qa, string(id)); code != 255 || !strings.Contains(reason, "replay") {
			t.Errorf("replay: %d %q", code, reason)
		}
		if got := readFile(t, e.vmPath(sim.Dom0, "/root/replayed")); got != "x\n" {
			t.Errorf("ran %q", got)
		}
	})

	t.Run("malformed id", func(t *testing.T) {
		name := "bad.id"
		os.WriteFile(filepath.Join(qa.Pending(), name), []byte(ran("badid")), 0o600)
		if code, reason := answer(t, qa, name); code != 255 || !strings.Contains(reason, "malformed command id") {
			t.Errorf("got %d %q", code, reason)
		}
	})

	t.Run("no key in dom0", func(t *testing.T) {
		if r := e.m.Dom0("qvm-remote-dom0 revoke c"); r.Code != 0 {
			t.Fatal(r)
		}
		start := time.Now()
		r := e.m.VM("c", "qvm-remote '"+ran("nokey")+"'")
		if r.Code != 255 || !strings.Contains(r.Stderr, "no key configured for this VM in dom0") {
			t.Errorf("%v", r)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("answer took %v", d) // bound on waiting; the VM call itself costs some
		}
	})

	t.Run("client refuses binary and empty itself", func(t *testing.T) {
		r := e.m.VMInput("a", []byte(ran("clientbinary")+"\x01\n"), "qvm-remote")
		if r.Code != 255 || !strings.Contains(r.Stderr, "binary content") {
			t.Errorf("binary: %v", r)
		}
		r = e.m.VMInput("a", []byte("\n"), "qvm-remote")
		if r.Code != 255 || !strings.Contains(r.Stderr, "empty command") {
			t.Errorf("empty: %v", r)
		}
	})

	t.Run("wrong key from the real client", func(t *testing.T) {
		if r := e.m.VM("a", "qvm-remote key import --force "+keys.Generate().Hex()); r.Code != 0 {
			t.Fatal(r)
		}
		r := e.m.VM("a", "qvm-remote '"+ran("realwrongkey")+"'")
		if r.Code != 255 || r.Stderr != "qvm-remote: rejected: authentication failed\n" {
			t.Errorf("%v", r)
		}
	})

	// The control proves the check below looks where commands write.
	if r := e.m.Dom0("qvm-remote-dom0 authorize b"); r.Code != 0 {
		t.Fatal(r)
	}
	if r := e.m.VM("b", "qvm-remote '"+ran("control")+"'"); r.Code != 0 {
		t.Fatalf("control: %v", r)
	}
	ls, _ := filepath.Glob(e.vmPath(sim.Dom0, "/root/ran-*"))
	if len(ls) != 1 || filepath.Base(ls[0]) != "ran-control" {
		t.Errorf("refused commands ran: %v", ls)
	}
	if j := e.journal(); !strings.Contains(j, "AUTH-FAIL") || strings.Contains(j, ka.Hex()) {
		t.Errorf("audit: AUTH-FAIL missing or key leaked")
	}
}

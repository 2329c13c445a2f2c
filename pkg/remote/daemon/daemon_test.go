package daemon

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/remote/keys"
	"github.com/qubes-claw/qubes-claw/pkg/remote/ledger"
	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
)

func TestRoundTrip(t *testing.T) {
	h := newHarness(t, "work")
	h.start("work")
	o := h.exec("work", `echo "out $QVM_REMOTE_VM"; echo err >&2; exit 7`, 10*time.Second)
	if o.err != nil || o.res.Reason != "" {
		t.Fatalf("err %v reason %q", o.err, o.res.Reason)
	}
	if o.res.Code != 7 || string(o.stdout) != "out work\n" || string(o.stderr) != "err\n" {
		t.Errorf("code %d stdout %q stderr %q", o.res.Code, o.stdout, o.stderr)
	}
	// Archived like 1.x, results/ emptied.
	left, _ := os.ReadDir(h.queues["work"].Results())
	if len(left) != 0 {
		t.Errorf("results not archived: %v", left)
	}
	hist, _ := filepath.Glob(filepath.Join(h.queues["work"].History(), "*", string(o.res.ID), "command"))
	if len(hist) != 1 {
		t.Errorf("no history entry for %s", o.res.ID)
	}
}

func TestExitCodesAndBytes(t *testing.T) {
	h := newHarness(t, "work")
	h.start("work")
	for _, code := range []int{0, 1, 2, 100, 126, 127, 128, 254, 255} {
		o := h.exec("work", fmt.Sprintf("exit %d", code), 10*time.Second)
		if o.err != nil || o.res.Code != code || o.res.Reason != "" {
			t.Errorf("exit %d: got %d, %v, %q", code, o.res.Code, o.err, o.res.Reason)
		}
	}
	o := h.exec("work", `for i in $(seq 0 255); do printf "\\$(printf %03o $i)"; done`, 10*time.Second)
	want := make([]byte, 256)
	for i := range want {
		want[i] = byte(i)
	}
	if !bytes.Equal(o.stdout, want) {
		t.Errorf("256 byte values: got %q", o.stdout)
	}
}

func TestTimeoutAndTruncation(t *testing.T) {
	h := newHarness(t, "work")
	h.cfg.MaxStdout = 1 << 20
	h.start("work")
	o := h.exec("work", "sleep 600 & wait", 1*time.Second)
	if o.err != nil || o.res.Code != 124 || !o.res.TimedOut {
		t.Errorf("timeout: %+v %v", o.res, o.err)
	}
	o = h.exec("work", "head -c 3000000 /dev/zero", 10*time.Second)
	if o.res.Code != 0 || o.res.Truncated != "stdout" || len(o.stdout) <= 1<<20 ||
		!bytes.HasSuffix(o.stdout, []byte("truncated after 1048576 bytes]\n")) {
		t.Errorf("truncation: %+v, %d bytes", o.res, len(o.stdout))
	}
}

func TestRejections(t *testing.T) {
	h := newHarness(t, "work", "other", "nokey")
	if err := (keys.Store{Dir: string(h.cfg.KeyDir)}).Revoke("nokey"); err != nil {
		t.Fatal(err)
	}
	h.start("work", "other", "nokey")
	now := time.Now()
	body := []byte("touch " + filepath.Join(h.root, "ran") + "\n")
	k := h.keys["work"]
	id := func(s string) proto.ID { return proto.ID(s) }

	tests := []struct {
		name string
		vm   string
		id   proto.ID
		body []byte
		tok  proto.Token
		want proto.Reason
	}{
		{"wrong key", "work", id("wk"), body, token(t, keys.Generate(), "work", "wk", now, 5, body), proto.ReasonAuth},
		{"no key in dom0", "nokey", id("nk"), body, token(t, h.keys["nokey"], "nokey", "nk", now, 5, body), proto.ReasonNoKey},
		{"body changed after signing", "work", id("bc"), body, token(t, k, "work", "bc", now, 5, []byte("true\n")), proto.ReasonAuth},
		{"timeout changed after signing", "work", id("tc"), body, func() proto.Token {
			tok := token(t, k, "work", "tc", now, 5, body)
			tok.Timeout = 3600
			return tok
		}(), proto.ReasonAuth},
		{"token for another VM", "other", id("ov"), body, token(t, k, "work", "ov", now, 5, body), proto.ReasonAuth},
		{"token minted for another VM with its key", "other", id("ov2"), body, token(t, h.keys["other"], "work", "ov2", now, 5, body), proto.ReasonAuth},
		{"10 minutes old", "work", id("old"), body, token(t, k, "work", "old", now.Add(-10*time.Minute), 5, body), proto.ReasonStale},
		{"binary", "work", id("bin"), []byte("echo \x00"), token(t, k, "work", "bin", now, 5, []byte("echo \x00")), proto.ReasonBinary},
		{"empty", "work", id("emp"), []byte("\n"), token(t, k, "work", "emp", now, 5, []byte("\n")), proto.ReasonEmpty},
		{"oversized", "work", id("big"), bytes.Repeat([]byte("a"), 2<<20), token(t, k, "work", "big", now, 5, bytes.Repeat([]byte("a"), 2<<20)), proto.ReasonTooLarge},
		{"missing token", "work", id("mt"), body, proto.Token{}, proto.ReasonAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			code, meta := h.submitRaw(tt.vm, tt.id, tt.body, tt.tok)
			if code != 255 || meta.Status != "refused" || !strings.HasPrefix(meta.Reason, tt.want.String()) {
				t.Errorf("got %d %+v, want 255 %q", code, meta, tt.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("rejection took %v", d) // acceptance: within 2 s
			}
		})
	}
	if _, err := os.Stat(filepath.Join(h.root, "ran")); err == nil {
		t.Error("a rejected command ran")
	}

	t.Run("malformed id", func(t *testing.T) {
		q := h.queues["work"]
		os.WriteFile(filepath.Join(q.Tmp(), "x"), body, 0o600)
		os.Rename(filepath.Join(q.Tmp(), "x"), filepath.Join(q.Pending(), "bad.id"))
		code, meta := h.waitResult(q, "bad.id")
		if code != 255 || !strings.Contains(meta.Reason, "malformed command id") {
			t.Errorf("got %d %+v", code, meta)
		}
	})

	t.Run("replay", func(t *testing.T) {
		b := []byte("echo once >> " + filepath.Join(h.root, "count") + "\n")
		tok := token(t, k, "work", "rp", time.Now(), 5, b)
		if code, meta := h.submitRaw("work", "rp", b, tok); code != 0 {
			t.Fatalf("first run: %d %+v", code, meta)
		}
		// Until the VM acknowledges the result, dom0 would send it again
		// instead: only a forgotten command is a replay.
		waitFor(t, "the acknowledgement", func() bool {
			h.d.mu.Lock()
			defer h.d.mu.Unlock()
			return h.d.records[cmdKey{"work", "rp"}] == nil
		})
		os.Remove(h.queues["work"].Result("rp", "exit"))
		code, meta := h.submitRaw("work", "rp", b, tok)
		if code != 255 || !strings.HasPrefix(meta.Reason, proto.ReasonReplay.String()) {
			t.Errorf("replay: %d %+v", code, meta)
		}
		if got, _ := os.ReadFile(filepath.Join(h.root, "count")); string(got) != "once\n" {
			t.Errorf("replayed command ran again: %q", got)
		}
	})
}

func TestPolicy(t *testing.T) {
	h := newHarness(t, "work")
	h.cfg.VMs = []VM{{Name: "work", Mode: "restricted", Allow: []string{"echo ok*", "true"}}}
	h.start("work")
	if o := h.exec("work", "echo ok fine", 10*time.Second); o.res.Code != 0 || string(o.stdout) != "ok fine\n" {
		t.Errorf("allowed: %+v %q", o.res, o.stdout)
	}
	for _, body := range []string{"echo ok; id", "echo ok $(id)", "id", "echo ok\nid", "echo ok > /tmp/x"} {
		o := h.exec("work", body, 10*time.Second)
		if o.res.Code != 255 || o.res.Reason != proto.ReasonDenied.String() {
			t.Errorf("%q: %+v", body, o.res)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, tt := range []struct {
		p, s string
		ok   bool
	}{
		{"qvm-ls", "qvm-ls", true}, {"qvm-ls", "qvm-ls x", false}, {"qvm-start *", "qvm-start work", true},
		{"qvm-start *", "qvm-start", false}, {"a?c", "abc", true}, {"*", "", true}, {"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false}, {strings.Repeat("*a", 20), strings.Repeat("a", 30) + "b", false},
	} {
		if glob(tt.p, tt.s) != tt.ok {
			t.Errorf("glob(%q, %q) != %v", tt.p, tt.s, tt.ok)
		}
	}
}

func TestInterruptedAfterCrash(t *testing.T) {
	h := newHarness(t, "work")
	// The previous daemon accepted "crashed" and died while it ran: the
	// ledger has its begin record, the VM still has it in running/.
	l, err := ledger.Open(h.cfg.StateDir.Join("ledger"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("echo ran >> " + filepath.Join(h.root, "ran") + "\n")
	tok := token(t, h.keys["work"], "work", "crashed", time.Now(), 5, body)
	if err := l.Begin("work", "crashed", tok.Time); err != nil {
		t.Fatal(err)
	}
	l.Close()
	q := h.queues["work"]
	if err := q.Submit("crashed", body, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Claim("crashed"); err != nil {
		t.Fatal(err)
	}
	h.start("work")
	code, meta := h.waitResult(q, "crashed")
	if code != 255 || !strings.HasPrefix(meta.Reason, "interrupted") {
		t.Errorf("got %d %+v", code, meta)
	}
	if _, err := os.Stat(filepath.Join(h.root, "ran")); err == nil {
		t.Error("interrupted command ran again")
	}
}

func TestBusy(t *testing.T) {
	h := newHarness(t, "work")
	h.cfg.MaxPerVM, h.cfg.MaxQueued = 1, 1
	h.start("work")
	flag := filepath.Join(h.root, "go")
	var wg sync.WaitGroup
	results := make([]outcome, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = h.exec("work", "while [ ! -e "+flag+" ]; do sleep 0.02; done", 20*time.Second)
		}()
	}
	// One runs, one waits, the third is busy; once it is answered, release.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if n, _ := filepath.Glob(filepath.Join(h.queues["work"].History(), "*", "*")); len(n) >= 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.WriteFile(flag, nil, 0o600)
	wg.Wait()
	var ok, busy int
	for _, o := range results {
		switch {
		case o.res.Code == 0 && o.res.Reason == "":
			ok++
		case o.res.Reason == proto.ReasonBusy.String():
			busy++
		}
	}
	if ok != 2 || busy != 1 {
		t.Errorf("ok %d busy %d: %+v", ok, busy, results)
	}
}

// garbage is a hostile VM end: a hello, then a frame announcing 1 GiB.
type garbage struct {
	r    *bytes.Reader
	once sync.Once
	done chan struct{}
}

func (g *garbage) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err == io.EOF {
		<-g.done // keep the channel open: the daemon must cut it off itself
	}
	return n, err
}
func (g *garbage) Write(p []byte) (int, error) { return len(p), nil }
func (g *garbage) Close() error                { g.once.Do(func() { close(g.done) }); return nil }

func TestHostileChannelCutOff(t *testing.T) {
	h := newHarness(t, "work")
	hello, _ := proto.Encode(proto.Hello{Version: proto.Version})
	huge := []byte{byte(proto.TypeSubmit), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(huge[1:], 1<<30)
	var cut sync.WaitGroup
	cut.Add(1)
	var once sync.Once
	h.channel["evil"] = func() io.ReadWriteCloser {
		g := &garbage{r: bytes.NewReader(append(hello, huge...)), done: make(chan struct{})}
		go func() { <-g.done; once.Do(cut.Done) }()
		return g
	}
	h.start("work", "evil")
	cut.Wait() // the daemon closed the hostile channel
	if o := h.exec("work", "echo fine", 10*time.Second); string(o.stdout) != "fine\n" {
		t.Errorf("other VM disturbed: %+v %q", o.res, o.stdout)
	}
}

// TestConcurrentVMs: 4 VMs × 50 concurrent commands, every one with its own
// output and status. The 200 waiting clients can hold every inotify instance
// a user may have (128 by default), so an agent often serves by polling; that
// used to stall every channel (issue 3).
func TestConcurrentVMs(t *testing.T) {
	vms := []string{"a", "b", "c", "d"}
	h := newHarness(t, vms...)
	h.start(vms...)
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	for _, vm := range vms {
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := h.exec(vm, fmt.Sprintf("echo %s-%d", vm, i), 30*time.Second)
				if o.err != nil || o.res.Code != 0 || string(o.stdout) != fmt.Sprintf("%s-%d\n", vm, i) {
					mu.Lock()
					bad++
					mu.Unlock()
					t.Errorf("%s #%d: %+v %v %q", vm, i, o.res, o.err, o.stdout)
				}
			}()
		}
	}
	wg.Wait()
	if bad != 0 {
		t.Errorf("%d of 200 wrong", bad)
	}
}

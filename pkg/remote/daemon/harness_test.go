package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/qubes"
	"github.com/qubes-claw/qubes-claw/pkg/remote/agent"
	"github.com/qubes-claw/qubes-claw/pkg/remote/client"
	"github.com/qubes-claw/qubes-claw/pkg/remote/keys"
	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
	"github.com/qubes-claw/qubes-claw/pkg/remote/queue"
)

// harness runs a daemon against in-process agents connected by pipes: the
// real daemon, agent, queue and client code, without the simulator.
type harness struct {
	t      *testing.T
	root   string
	cfg    Config
	d      *Daemon
	cancel context.CancelFunc
	done   chan struct{}
	queues map[string]queue.Dir
	keys   map[string]keys.Key
	// channel, when set for a VM, replaces its agent (hostile VM tests).
	mu      sync.Mutex
	channel map[string]func() io.ReadWriteCloser
	opens   map[string]int
	// down VMs are halted: open fails as qvm-check would make it.
	down map[string]bool
	// live holds each VM's open channel, so a test can break it.
	live map[string]*pipeChannel
}

func newHarness(t *testing.T, vms ...string) *harness {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	root := t.TempDir()
	cfg := Defaults()
	cfg.KeyDir = config.Path(filepath.Join(root, "dom0", "remote.d"))
	cfg.LegacyConf = ""
	cfg.StateDir = config.Path(filepath.Join(root, "dom0", "state"))
	cfg.RuntimeDir = config.Path(filepath.Join(root, "dom0", "run"))
	cfg.QrexecDir = config.Path(filepath.Join(root, "dom0", "qubes"))
	cfg.Exec.Bash = bash
	cfg.Exec.Home = config.Path(root)
	cfg.KillGrace = 300 * time.Millisecond
	cfg.ReopenMin = 20 * time.Millisecond
	cfg.ReopenMax = 200 * time.Millisecond
	h := &harness{t: t, root: root, cfg: cfg, queues: map[string]queue.Dir{}, keys: map[string]keys.Key{},
		channel: map[string]func() io.ReadWriteCloser{}, opens: map[string]int{}, down: map[string]bool{}, live: map[string]*pipeChannel{}}
	for _, vm := range vms {
		q := queue.Dir(filepath.Join(root, vm, ".qvm-remote"))
		if err := q.Init(); err != nil {
			t.Fatal(err)
		}
		k := keys.Generate()
		if err := (keys.Store{Dir: string(cfg.KeyDir)}).Authorize(vm, k); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(q.KeyFile(), []byte(k.Hex()+"\n"), 0o600)
		h.queues[vm], h.keys[vm] = q, k
	}
	return h
}

// start runs the daemon serving vms.
func (h *harness) start(vms ...string) { h.startWith(nil, vms) }

// startWith runs the daemon after setup adjusted it; nil vms follows the
// key directory.
func (h *harness) startWith(setup func(*Daemon), vms []string) {
	h.t.Helper()
	d, err := New(h.cfg, logging.Discard(), h.open)
	if err != nil {
		h.t.Fatal(err)
	}
	if setup != nil {
		setup(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.d, h.cancel, h.done = d, cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		d.Run(ctx, vms)
	}()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	<-h.done
	h.d.Close()
	h.cancel = nil
}

type pipeChannel struct {
	io.Reader
	w     io.Writer
	close func()
	// swallow makes what dom0 writes vanish, as frames sent on a channel
	// that breaks before the VM handles them do.
	swallow atomic.Bool
}

func (p *pipeChannel) Write(b []byte) (int, error) {
	if p.swallow.Load() {
		return len(b), nil
	}
	return p.w.Write(b)
}

func (p *pipeChannel) Close() error { p.close(); return nil }

func (h *harness) open(ctx context.Context, vm string) (io.ReadWriteCloser, error) {
	h.mu.Lock()
	h.opens[vm]++
	custom := h.channel[vm]
	down := h.down[vm]
	h.mu.Unlock()
	if down {
		return nil, fmt.Errorf("%s: %w", vm, qubes.ErrNotRunning)
	}
	if custom != nil {
		return custom(), nil
	}
	q, ok := h.queues[vm]
	if !ok {
		return nil, os.ErrNotExist
	}
	toAgentR, toAgentW := io.Pipe()
	fromAgentR, fromAgentW := io.Pipe()
	a := &agent.Agent{Queue: q, Log: logging.Discard(), LockWait: 5 * time.Second}
	go func() {
		err := a.Serve(ctx, toAgentR, fromAgentW)
		toAgentR.CloseWithError(io.EOF)
		fromAgentW.CloseWithError(err)
	}()
	pc := &pipeChannel{Reader: fromAgentR, w: toAgentW, close: func() {
		toAgentW.Close()
		fromAgentR.Close()
	}}
	h.mu.Lock()
	h.live[vm] = pc
	h.mu.Unlock()
	return pc, nil
}

type outcome struct {
	res            client.Result
	err            error
	stdout, stderr []byte
}

func (h *harness) exec(vm, body string, timeout time.Duration) outcome {
	h.t.Helper()
	var stdout, stderr bytes.Buffer
	res, err := client.Run(context.Background(), client.Request{
		Queue: h.queues[vm], VM: vm, Key: h.keys[vm], Body: []byte(body), Timeout: timeout,
		MaxBody: proto.MaxBody, PickupTimeout: 60 * time.Second, Slack: 10 * time.Second,
		Stdout: &stdout, Stderr: &stderr,
	})
	return outcome{res, err, stdout.Bytes(), stderr.Bytes()}
}

// submitRaw queues an entry the way a hostile or buggy client could, and
// waits for its result.
func (h *harness) submitRaw(vm string, id proto.ID, body []byte, tok proto.Token) (code int, meta queue.Meta) {
	h.t.Helper()
	q := h.queues[vm]
	if err := q.Submit(id, body, tok); err != nil {
		h.t.Fatal(err)
	}
	return h.waitResult(q, id)
}

func (h *harness) waitResult(q queue.Dir, id proto.ID) (int, queue.Meta) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if code, ok := q.ReadExit(id); ok {
			return code, q.ReadMeta(id)
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("no result for %s", id)
	return 0, queue.Meta{}
}

// token signs body for vm with key.
func token(t *testing.T, key keys.Key, vm string, id proto.ID, ts time.Time, timeout uint32, body []byte) proto.Token {
	t.Helper()
	mac, err := proto.Sign(key[:], proto.NewClaims(vm, id, ts, timeout, body))
	if err != nil {
		t.Fatal(err)
	}
	return proto.Token{Time: ts.Unix(), Timeout: timeout, MAC: mac}
}

// Package client submits one command to dom0 through the VM's queue and
// relays its result like ssh does: stdout and stderr as they arrive, then the
// command's exit status (124 for a timeout, 255 when dom0 did not run it).
// It waits on file-system events, never on a sleep loop.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/qubes-claw/qubes-claw/pkg/remote/keys"
	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
	"github.com/qubes-claw/qubes-claw/pkg/remote/queue"
)

// ExitRemote is the status for "dom0 did not run the command", as ssh uses.
const ExitRemote = 255

// Request is one command.
type Request struct {
	Queue queue.Dir
	// VM is this VM's name as dom0 knows it (bound into the token).
	VM  string
	Key keys.Key
	// Body is the command text.
	Body []byte
	// Timeout is asked of dom0 (0: dom0's default).
	Timeout time.Duration
	// MaxBody is checked here before anything is queued.
	MaxBody int
	// PickupTimeout bounds the wait for the agent to take the command.
	PickupTimeout time.Duration
	// Slack is added to Timeout for the whole wait, so a dead channel
	// cannot keep the client waiting forever.
	Slack time.Duration
	// Stdout, Stderr receive the command's output.
	Stdout, Stderr io.Writer
	// Submitted is called with the id once the command is queued.
	Submitted func(proto.ID)
}

// Result is how the command ended for the client.
type Result struct {
	ID   proto.ID
	Code int
	// Reason is set when dom0 (or this VM) did not run the command.
	Reason    string
	TimedOut  bool
	Truncated string
}

// Errors before anything was queued, or while waiting.
var (
	ErrNotResponding = errors.New("daemon not responding")
	ErrNoResult      = errors.New("no result from dom0 in time")
)

// Run queues req and relays its result. Refusals are a Result with a
// Reason, not an error; errors mean the client could not get an answer.
func Run(ctx context.Context, req Request) (Result, error) {
	now := time.Now()
	res := Result{Code: ExitRemote}
	if err := proto.ValidateBody(req.Body, req.MaxBody); err != nil {
		res.Reason = "rejected: " + err.Error()
		return res, nil
	}
	secs := uint32((req.Timeout + time.Second - 1) / time.Second)
	id := proto.NewID(now, os.Getpid())
	res.ID = id
	mac, err := proto.Sign(req.Key[:], proto.NewClaims(req.VM, id, now, secs, req.Body))
	if err != nil {
		return res, err
	}
	if err := req.Queue.Init(); err != nil {
		return res, err
	}
	// Watch before queuing, so no event of ours can be missed.
	events, errs, closeWatch, err := watch(req.Queue.Results(), req.Queue.Running())
	if err != nil {
		return res, err
	}
	defer closeWatch()
	if err := req.Queue.Submit(id, req.Body, proto.Token{Time: now.Unix(), Timeout: secs, MAC: mac}); err != nil {
		return res, err
	}
	if req.Submitted != nil {
		req.Submitted(id)
	}

	t := &tail{q: req.Queue, id: id, stdout: req.Stdout, stderr: req.Stderr}
	defer t.close()
	pickup := time.NewTimer(req.PickupTimeout)
	defer pickup.Stop()
	wait := req.Timeout
	if wait == 0 {
		wait = 300 * time.Second
	}
	overall := time.NewTimer(wait + req.Slack)
	defer overall.Stop()
	// The agent may have answered between Submit and the first event.
	if done, r := t.poll(); done {
		return t.finish(req, r), nil
	}
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-pickup.C:
			if req.Queue.Withdraw(id) {
				return res, ErrNotResponding
			}
		case <-overall.C:
			return res, ErrNoResult
		case name, ok := <-events:
			if !ok {
				return res, errors.New("watcher closed")
			}
			if name != "" && !strings.HasPrefix(filepath.Base(name), string(id)) {
				continue
			}
			if done, r := t.poll(); done {
				return t.finish(req, r), nil
			}
		case <-errs:
			// Lost events: read what is there; nothing is lost on disk.
			if done, r := t.poll(); done {
				return t.finish(req, r), nil
			}
		}
	}
}

// pollInterval paces the fallback used when the kernel refuses another
// inotify instance (fs.inotify.max_user_instances, 128 by default, is per
// user: many concurrent clients of one user can exhaust it).
const pollInterval = 20 * time.Millisecond

// watch reports changes in dirs: the name of each changed file, or "" for a
// poll tick in the fallback.
func watch(dirs ...string) (<-chan string, <-chan error, func(), error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		if !errors.Is(err, syscall.EMFILE) {
			return nil, nil, nil, err
		}
		ticks := make(chan string)
		stop := make(chan struct{})
		go func() {
			t := time.NewTicker(pollInterval)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					select {
					case ticks <- "":
					case <-stop:
						return
					}
				case <-stop:
					return
				}
			}
		}()
		return ticks, nil, func() { close(stop) }, nil
	}
	for _, dir := range dirs {
		if err := w.Add(dir); err != nil {
			w.Close()
			return nil, nil, nil, err
		}
	}
	names := make(chan string)
	done := make(chan struct{})
	go func() {
		defer close(names)
		for ev := range w.Events {
			select {
			case names <- ev.Name:
			case <-done:
				return
			}
		}
	}()
	return names, w.Errors, func() { close(done); w.Close() }, nil
}

// tail relays results/ID.out and .err as they grow.
type tail struct {
	q              queue.Dir
	id             proto.ID
	stdout, stderr io.Writer
	out, err       *os.File
}

// poll copies new output and reports whether the result is complete.
func (t *tail) poll() (bool, Result) {
	code, done := t.q.ReadExit(t.id) // read before draining: output precedes exit
	t.copy(&t.out, "out", t.stdout)
	t.copy(&t.err, "err", t.stderr)
	if !done {
		return false, Result{}
	}
	m := t.q.ReadMeta(t.id)
	r := Result{ID: t.id, Code: code, TimedOut: m.Status == "timeout", Truncated: m.Truncated}
	if m.Status == "refused" {
		r.Reason = m.Reason
		if r.Reason == "" {
			r.Reason = "refused"
		}
	}
	return true, r
}

func (t *tail) copy(f **os.File, ext string, w io.Writer) {
	if *f == nil {
		nf, err := os.Open(t.q.Result(t.id, ext))
		if err != nil {
			return
		}
		*f = nf
	}
	if w == nil {
		w = io.Discard
	}
	io.Copy(w, *f)
}

// finish archives the result into history/, as 1.x did.
func (t *tail) finish(req Request, r Result) Result {
	t.close()
	req.Queue.Archive(t.id, req.Body, time.Now())
	return r
}

func (t *tail) close() {
	for _, f := range []**os.File{&t.out, &t.err} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}

// ReadKey reads the VM's key (~/.qvm-remote/auth.key).
func ReadKey(q queue.Dir) (keys.Key, error) {
	b, err := os.ReadFile(q.KeyFile())
	if errors.Is(err, os.ErrNotExist) {
		return keys.Key{}, fmt.Errorf("%w in %s: run `qvm-remote key gen` here, then `qvm-remote-dom0 authorize VM` in dom0", keys.ErrNoKey, q.KeyFile())
	}
	if err != nil {
		return keys.Key{}, err
	}
	return keys.Parse(string(b))
}

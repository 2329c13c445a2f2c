package agent

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
	"github.com/qubes-claw/qubes-claw/pkg/remote/queue"
	"github.com/qubes-claw/qubes-claw/pkg/testwait"
)

// dom0 is the daemon's end of a channel to an agent under test.
type dom0 struct {
	t      *testing.T
	conn   *proto.Conn
	frames chan proto.Message
	errs   chan error
	served chan error
}

// serve runs a on a pipe channel and does dom0's half of the handshake.
func serve(t *testing.T, a *Agent) *dom0 {
	t.Helper()
	toAgentR, toAgentW := io.Pipe()
	fromAgentR, fromAgentW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	d := &dom0{t: t, conn: proto.NewConn(fromAgentR, toAgentW, proto.Dom0Side),
		frames: make(chan proto.Message, 16), errs: make(chan error, 1), served: make(chan error, 1)}
	go func() {
		err := a.Serve(ctx, toAgentR, fromAgentW)
		fromAgentW.CloseWithError(io.EOF)
		d.served <- err
	}()
	t.Cleanup(func() {
		cancel()
		toAgentW.Close()
		fromAgentR.Close()
		<-d.served
	})
	go func() {
		for {
			m, err := d.conn.Recv()
			if err != nil {
				d.errs <- err
				return
			}
			d.frames <- m
		}
	}()
	d.send(proto.Hello{Version: proto.Version, VM: "work"})
	if h, ok := d.recv().(proto.Hello); !ok || h.Version != proto.Version {
		t.Fatalf("agent hello %+v", h)
	}
	return d
}

func (d *dom0) send(m proto.Message) {
	d.t.Helper()
	if err := d.conn.Send(m); err != nil {
		d.t.Fatalf("send %T: %v", m, err)
	}
}

// recv returns the agent's next frame. The bound only ends a broken run.
func (d *dom0) recv() proto.Message {
	d.t.Helper()
	select {
	case m := <-d.frames:
		return m
	case err := <-d.errs:
		select {
		case serr := <-d.served:
			d.t.Fatalf("channel ended: %v (Serve: %v)", err, serr)
		case <-time.After(time.Second):
			d.t.Fatalf("channel ended: %v", err)
		}
	case <-time.After(10 * time.Second):
		d.t.Fatal("no frame from the agent")
	}
	return nil
}

func newQueue(t *testing.T) queue.Dir {
	t.Helper()
	q := queue.Dir(filepath.Join(t.TempDir(), ".qvm-remote"))
	if err := q.Init(); err != nil {
		t.Fatal(err)
	}
	return q
}

// An agent the kernel refuses an inotify watch still takes every command:
// it polls pending/ and tries to watch again now and then. Clients waiting
// for results each hold an inotify instance (128 per user by default), so an
// agent started while many wait, as on a channel dom0 re-opens, used to fail
// right after its hello, again on every re-open, until the clients gave up.
func TestServesWhenQueueCannotBeWatched(t *testing.T) {
	for _, tt := range []struct {
		name string
		// refusals is how many attempts to watch fail (-1: all).
		refusals int32
	}{
		{"refused", -1},
		{"refused, then allowed", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue(t)
			var attempts atomic.Int32
			a := &Agent{Queue: q, Log: logging.Discard(), LockWait: time.Second}
			a.watch = func() (*fsnotify.Watcher, error) {
				if n := attempts.Add(1); tt.refusals < 0 || n <= tt.refusals {
					return nil, os.NewSyscallError("inotify_init1", syscall.EMFILE)
				}
				w, err := fsnotify.NewWatcher()
				if err != nil {
					return nil, err
				}
				if err := w.Add(q.Pending()); err != nil {
					w.Close()
					return nil, err
				}
				return w, nil
			}
			d := serve(t, a)
			if _, ok := d.recv().(proto.Sync); !ok {
				t.Fatal("no sync")
			}
			for i, id := range []proto.ID{"first", "second"} {
				if i == 1 && tt.refusals >= 0 {
					waitFor(t, "the watch again", func() bool { return attempts.Load() > tt.refusals })
				}
				if err := q.Submit(id, []byte("true"), proto.Token{Time: 1}); err != nil {
					t.Fatal(err)
				}
				if m, ok := d.recv().(proto.Submit); !ok || m.ID != id {
					t.Fatalf("got %+v, want the submission of %s", m, id)
				}
			}
		})
	}
}

// dom0 sends a resubmitted command's output again from its start; the agent
// keeps what an earlier channel wrote and writes only the rest, however the
// output is cut into frames, then writes and acknowledges the result.
func TestResubmittedOutputWrittenOnce(t *testing.T) {
	for _, tt := range []struct {
		name   string
		had    string // stdout an earlier channel wrote
		chunks []string
	}{
		{"nothing before", "", []string{"o1\no2\n"}},
		{"in one frame", "o1\n", []string{"o1\no2\n"}},
		{"frame ends where it had", "o1\n", []string{"o1\n", "o2\n"}},
		{"frame ends inside what it had", "o1\n", []string{"o", "1\no", "2\n"}},
		{"it had a partial frame", "o1\no", []string{"o1\n", "o2\n"}},
		{"it had everything", "o1\no2\n", []string{"o1\n", "o2\n"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue(t)
			const id = proto.ID("c1")
			if err := q.Submit(id, []byte("echo"), proto.Token{Time: 1}); err != nil {
				t.Fatal(err)
			}
			if _, err := q.Claim(id); err != nil { // handed over on an earlier channel
				t.Fatal(err)
			}
			if tt.had != "" {
				if err := os.WriteFile(q.Result(id, "out"), []byte(tt.had), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			d := serve(t, &Agent{Queue: q, Log: logging.Discard(), LockWait: time.Second})
			if m, ok := d.recv().(proto.Submit); !ok || m.ID != id {
				t.Fatalf("got %+v, want the resubmission", m)
			}
			for _, c := range tt.chunks {
				d.send(proto.Output{ID: id, Stream: proto.Stdout, Data: []byte(c)})
			}
			d.send(proto.Output{ID: id, Stream: proto.Stderr, Data: []byte("e1\n")})
			// Not handed over on this channel: dropped, nothing written.
			d.send(proto.Output{ID: "stray", Stream: proto.Stdout, Data: []byte("x")})
			d.send(proto.Result{ID: "stray", Status: proto.Exited})
			d.send(proto.Result{ID: id, Status: proto.Exited, Code: 3})
			for {
				m := d.recv()
				if _, ok := m.(proto.Sync); ok {
					continue
				}
				if ack, ok := m.(proto.Ack); !ok || ack.ID != id {
					t.Fatalf("got %+v, want the ack of %s", m, id)
				}
				break
			}
			if b, _ := os.ReadFile(q.Result(id, "out")); string(b) != "o1\no2\n" {
				t.Errorf("stdout %q", b)
			}
			if b, _ := os.ReadFile(q.Result(id, "err")); string(b) != "e1\n" {
				t.Errorf("stderr %q", b)
			}
			if code, ok := q.ReadExit(id); !ok || code != 3 {
				t.Errorf("exit %d %v", code, ok)
			}
			if ids, _ := q.RunningIDs(); len(ids) != 0 {
				t.Errorf("still running: %v", ids)
			}
			for _, ext := range []string{"out", "exit"} {
				if _, err := os.Stat(q.Result("stray", ext)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("stray %s written: %v", ext, err)
				}
			}
		})
	}
}

// waitFor waits for cond, bounded (testwait.For).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, 10*time.Second, what, cond)
}

// Package agent is the VM end of a qvm-remote channel: `qvm-remote serve`,
// started by dom0 over qvm-run --pass-io with the channel on its stdin and
// stdout. It hands every command that appears in the queue's pending/ to dom0
// the moment it appears (fsnotify; a poll only when the kernel refuses an
// inotify watch) and writes what dom0 sends back into results/, where the
// waiting client picks it up, acknowledging each result once it is written.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/sirupsen/logrus"

	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
	"github.com/qubes-claw/qubes-claw/pkg/remote/queue"
)

// Agent serves one channel.
type Agent struct {
	Queue queue.Dir
	Log   *logrus.Entry
	// LockWait bounds the wait for a previous agent (of a channel dom0 is
	// replacing) to let go of the queue.
	LockWait time.Duration

	// watch opens the watch of pending/ (nil: inotify; tests substitute
	// it).
	watch func() (*fsnotify.Watcher, error)

	conn *proto.Conn
	mu   sync.Mutex
	// sent holds the ids handed to dom0 on this channel and their output.
	sent map[proto.ID]*outputs
	// closed is set when Serve returns: nothing is written after it, so the
	// agent of the next channel owns the queue alone.
	closed bool
	// acks are the ids whose result is written and not yet acknowledged;
	// ackReady wakes their sender.
	acks     []proto.ID
	ackReady chan struct{}
}

// outputs is one command's output on this channel, per stream (stdout,
// stderr): its result file, once opened, and how many bytes dom0 is still to
// send again that the file already has.
type outputs struct {
	f    [2]*os.File
	skip [2]int64
}

// Polling of pending/, for when the kernel refuses an inotify instance or
// watch: fs.inotify.max_user_instances (128 by default) counts per user, and
// every client waiting for its result holds an instance, so an agent that
// starts while many wait (a channel dom0 re-opens) would otherwise fail, and
// keep failing while the clients wait for it.
const (
	pollInterval = 20 * time.Millisecond
	// rewatchTicks is how many polls pass between attempts to watch again.
	rewatchTicks = 50
)

// ErrBusy is returned when another agent holds the queue.
var ErrBusy = errors.New("another qvm-remote serve holds the queue")

// Serve runs the channel on r and w until dom0 closes it (nil) or it breaks.
func (a *Agent) Serve(ctx context.Context, r io.Reader, w io.Writer) error {
	if err := a.Queue.Init(); err != nil {
		return err
	}
	unlock, err := a.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	a.conn = proto.NewConn(r, w, proto.VMSide)
	a.mu.Lock()
	a.sent = map[proto.ID]*outputs{}
	a.closed = false
	a.acks = nil
	a.ackReady = make(chan struct{}, 1)
	a.mu.Unlock()
	defer a.closeOutputs()

	if err := a.conn.Send(proto.Hello{Version: proto.Version}); err != nil {
		return err
	}
	m, err := a.conn.Recv()
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	h, ok := m.(proto.Hello)
	if !ok || h.Version != proto.Version {
		return fmt.Errorf("handshake: %w: want hello version %d", proto.ErrProtocol, proto.Version)
	}
	if h.VM != "" {
		writeAtomic(a.Queue.VMNameFile(), []byte(h.VM+"\n"))
	}

	// Events of pending/, or poll ticks when it cannot be watched.
	var events <-chan fsnotify.Event
	var watchErrs <-chan error
	var poll <-chan time.Time
	var ticker *time.Ticker
	w8, err := a.watchPending()
	if err == nil {
		events, watchErrs = w8.Events, w8.Errors
	} else {
		a.Log.WithError(err).Warn("cannot watch the queue; polling it")
		ticker = time.NewTicker(pollInterval)
		poll = ticker.C
	}
	defer func() {
		if w8 != nil {
			w8.Close()
		}
		if ticker != nil {
			ticker.Stop()
		}
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	recvErr := make(chan error, 1)
	go func() { recvErr <- a.receive() }()
	go a.sendAcks(ctx)

	// Entries handed over on an earlier channel and never answered go
	// first: dom0 answers each (result, "interrupted" or still running).
	if ids, err := a.Queue.RunningIDs(); err == nil {
		for _, id := range ids {
			if e, err := a.Queue.ReadRunning(id); err == nil {
				a.submit(e)
			} else {
				a.refuseLocal(id, err)
			}
		}
	}
	a.scan()
	// The backlog is handed over: dom0's --once run stops after answering it.
	if err := a.conn.Send(proto.Sync{}); err != nil {
		return err
	}
	for polls := 0; ; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-poll:
			a.scan()
			if polls++; polls%rewatchTicks != 0 {
				continue
			}
			if w, err := a.watchPending(); err == nil {
				ticker.Stop()
				w8, ticker, poll = w, nil, nil
				events, watchErrs = w.Events, w.Errors
				a.Log.Info("watching the queue again")
				a.scan() // what arrived before the watch
			}
		case ev, ok := <-events:
			if !ok {
				return errors.New("watcher closed")
			}
			if ev.Has(fsnotify.Create) { // a rename into pending/ is a Create
				name := filepath.Base(ev.Name)
				if id, err := proto.ParseID(name); err == nil {
					a.claim(id)
				} else if !isSideFile(name) {
					a.Queue.RejectName(name, proto.ReasonBadID.String())
				}
			}
		case err, ok := <-watchErrs:
			if !ok {
				return errors.New("watcher closed")
			}
			// An overflow loses events, not files: look again.
			a.Log.WithError(err).Warn("watch error; rescanning the queue")
			a.scan()
		}
	}
}

// watchPending watches pending/ for new entries.
func (a *Agent) watchPending() (*fsnotify.Watcher, error) {
	if a.watch != nil {
		return a.watch()
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(a.Queue.Pending()); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// isSideFile reports names that belong next to an entry, not entries.
func isSideFile(name string) bool {
	if len(name) > 0 && name[0] == '.' {
		return true
	}
	if base, ok := cutSuffix(name, ".auth"); ok {
		_, err := proto.ParseID(base)
		return err == nil
	}
	_, ok := cutSuffix(name, ".cmd") // 1.x clients leave a copy beside the body
	return ok
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}

func (a *Agent) scan() {
	ids, bad, err := a.Queue.PendingIDs()
	if err != nil {
		a.Log.WithError(err).Warn("read pending")
		return
	}
	for _, name := range bad {
		if !isSideFile(name) {
			a.Queue.RejectName(name, proto.ReasonBadID.String())
		}
	}
	for _, id := range ids {
		a.claim(id)
	}
}

func (a *Agent) claim(id proto.ID) {
	e, err := a.Queue.Claim(id)
	if errors.Is(err, os.ErrNotExist) {
		return // claimed already, or withdrawn by the client
	}
	if err != nil {
		a.refuseLocal(id, err)
		return
	}
	a.submit(e)
}

// refuseLocal answers an entry that cannot be handed to dom0 at all.
func (a *Agent) refuseLocal(id proto.ID, err error) {
	r := proto.ReasonInternal
	if errors.Is(err, queue.ErrTooLarge) {
		r = proto.ReasonTooLarge
	}
	a.Log.WithError(err).WithField("id", id).Warn("refusing queue entry locally")
	a.Queue.Finish(id, 255, queue.Meta{Status: "refused", Reason: r.String()})
}

func (a *Agent) submit(e queue.Entry) {
	a.mu.Lock()
	if _, dup := a.sent[e.ID]; dup {
		a.mu.Unlock()
		return
	}
	// dom0 sends the output from its start: what an earlier channel wrote
	// (a prefix of it) is skipped, not written twice.
	o := &outputs{}
	for i, ext := range streamExt {
		if fi, err := os.Lstat(a.Queue.Result(e.ID, ext)); err == nil && fi.Mode().IsRegular() {
			o.skip[i] = fi.Size()
		}
	}
	a.sent[e.ID] = o
	a.mu.Unlock()
	// A missing or malformed token goes to dom0 as an all-zero one: dom0
	// refuses it and its audit log records the attempt.
	sub := proto.Submit{ID: e.ID, Time: e.Token.Time, Timeout: e.Token.Timeout, MAC: e.Token.MAC, Body: e.Body}
	if err := a.conn.Send(sub); err != nil {
		a.Log.WithError(err).WithField("id", e.ID).Debug("send failed; the entry stays in running/ for the next channel")
	}
}

// receive handles dom0's frames until the channel ends.
func (a *Agent) receive() error {
	for {
		m, err := a.conn.Recv()
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case proto.Output:
			if err := a.output(m); err != nil {
				return err
			}
		case proto.Result:
			a.result(m)
		case proto.Hello:
			return fmt.Errorf("%w: second hello", proto.ErrProtocol)
		}
	}
}

// streamExt is the result file extension of each stream, by index.
var streamExt = [2]string{"out", "err"}

func (a *Agent) output(m proto.Output) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	o, ok := a.sent[m.ID]
	if !ok || a.closed {
		// dom0 sends output only for commands handed over on this channel.
		a.Log.WithField("id", m.ID).Debug("output for a command not handed over on this channel dropped")
		return nil
	}
	i := 0
	if m.Stream == proto.Stderr {
		i = 1
	}
	data := m.Data
	if n := min(o.skip[i], int64(len(data))); n > 0 {
		o.skip[i] -= n
		data = data[n:]
	}
	if len(data) == 0 {
		return nil
	}
	if o.f[i] == nil {
		f, err := os.OpenFile(a.Queue.Result(m.ID, streamExt[i]), os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		o.f[i] = f
	}
	_, err := o.f[i].Write(data)
	return err
}

// result records dom0's answer and, once it is written, acknowledges it.
func (a *Agent) result(m proto.Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	o, ok := a.sent[m.ID]
	if !ok || a.closed {
		a.Log.WithField("id", m.ID).Debug("result for a command not handed over on this channel dropped")
		return
	}
	delete(a.sent, m.ID)
	o.close()
	meta := queue.Meta{DurationMS: m.DurationMS}
	switch m.Status {
	case proto.Exited:
		meta.Status = "exited"
	case proto.TimedOut:
		meta.Status = "timeout"
	case proto.Refused:
		meta.Status = "refused"
		meta.Reason = m.Reason.String()
		if m.Detail != "" {
			meta.Reason += " (" + m.Detail + ")"
		}
	}
	switch m.Flags & (proto.FlagStdoutTruncated | proto.FlagStderrTruncated) {
	case proto.FlagStdoutTruncated:
		meta.Truncated = "stdout"
	case proto.FlagStderrTruncated:
		meta.Truncated = "stderr"
	case proto.FlagStdoutTruncated | proto.FlagStderrTruncated:
		meta.Truncated = "stdout,stderr"
	}
	if err := a.Queue.Finish(m.ID, m.ExitCode(), meta); err != nil {
		// Not acknowledged: the entry stays in running/, and the next
		// channel gets the whole answer again.
		a.Log.WithError(err).WithField("id", m.ID).Warn("write result")
		return
	}
	a.acks = append(a.acks, m.ID)
	select {
	case a.ackReady <- struct{}{}:
	default:
	}
}

// sendAcks sends the acknowledgements. It is not the receiver's job: a
// receiver blocked on sending could stop dom0's writer, and so dom0's reader.
func (a *Agent) sendAcks(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.ackReady:
		}
		a.mu.Lock()
		ids := a.acks
		a.acks = nil
		a.mu.Unlock()
		for _, id := range ids {
			if err := a.conn.Send(proto.Ack{ID: id}); err != nil {
				return // unacknowledged results only cost dom0 memory until they expire
			}
		}
	}
}

func (o *outputs) close() {
	for _, f := range o.f {
		if f != nil {
			f.Close()
		}
	}
}

func (a *Agent) closeOutputs() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	for _, o := range a.sent {
		o.close()
	}
}

// lock takes the queue's serve lock, waiting up to LockWait for an agent of
// a dying channel to let go.
func (a *Agent) lock(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(a.Queue.LockFile(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(a.LockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			f.Close()
			return nil, ErrBusy
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Serving reports whether an agent holds the queue (for status and ping).
func Serving(q queue.Dir) bool {
	f, err := os.Open(q.LockFile())
	if err != nil {
		return false
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Package daemon is the dom0 engine of qvm-remote: one long-lived channel
// per running VM, opened by dom0 (the pull model: no VM can call dom0, and
// the daemon never starts a VM), over which the VM's agent hands in commands
// the moment they are queued and dom0 streams output and exactly one result
// back. Everything a VM sends is checked — frame, id, key, token, clock,
// body, replay, policy — before anything is written to dom0's disk or run.
package daemon

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/qubes-claw/qubes-claw/pkg/qubes"
	"github.com/qubes-claw/qubes-claw/pkg/remote/audit"
	"github.com/qubes-claw/qubes-claw/pkg/remote/executor"
	"github.com/qubes-claw/qubes-claw/pkg/remote/keys"
	"github.com/qubes-claw/qubes-claw/pkg/remote/ledger"
	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
)

// Opener opens a channel to vm's agent; it must not start the VM.
type Opener func(ctx context.Context, vm string) (io.ReadWriteCloser, error)

// QubesOpener opens channels with `qvm-run --pass-io --no-autostart --no-gui
// VM COMMAND`. The command is configuration, never VM data.
func QubesOpener(c *qubes.Client, command string) Opener {
	return func(ctx context.Context, vm string) (io.ReadWriteCloser, error) {
		return c.OpenRun(ctx, vm, command, qubes.RunOptions{NoAutostart: true, NoGUI: true})
	}
}

// Timing the daemon does not expose as configuration.
const (
	handshakeTimeout = 10 * time.Second
	// sendTimeout: a VM that stops reading its channel for this long is cut
	// off, so it cannot stall the commands whose output it should take.
	sendTimeout = 30 * time.Second
	// stableSession: a channel that lived this long resets the backoff.
	stableSession = 10 * time.Second
)

// Daemon serves VMs.
type Daemon struct {
	cfg    Config
	log    *logrus.Entry
	audit  *audit.Log
	keys   keys.Store
	ledger *ledger.Ledger
	open   Opener
	sched  *scheduler
	// run executes a command (executor.Run; tests substitute it).
	run func(context.Context, executor.Config, executor.Job) (executor.Outcome, error)
	now func() time.Time

	// Once serves each VM's backlog and stops (--once); DryRun, which
	// implies it, checks every command and reports it to Report instead of
	// running or answering it, so the commands stay queued in the VMs.
	Once   bool
	DryRun bool
	Report func(DryRunEntry)

	lock *os.File

	mu       sync.Mutex
	sessions map[string]*session
	policy   map[string]VM
	// records holds every accepted command's output and result until the VM
	// acknowledges the result (see record); kept is the output held by the
	// ended ones.
	records map[cmdKey]*record
	kept    int
	// wake nudges a VM's channel loop out of its backoff.
	wake    map[string]chan struct{}
	serving map[string]bool
	// startsWatched is true while the qrexec directory is watched, so a
	// halted VM's start wakes its loop and the loop need not poll it.
	startsWatched atomic.Bool
	jobs          sync.WaitGroup
}

// DryRunEntry is what --dry-run reports for one command.
type DryRunEntry struct {
	VM string
	ID proto.ID
	// Verdict is "would run" or the refusal the command would get.
	Verdict string
	Body    []byte
}

// Bounds of the ended records not yet acknowledged, all VMs together (a VM
// that never acknowledges must not fill dom0's memory); the oldest go first.
// Past outboxMaxBytes their output goes (the result, sent again, says it was
// truncated); past outboxMax the whole record does (a resubmission is then
// refused as a replay).
const (
	outboxMax      = 4096
	outboxMaxBytes = 64 << 20
)

// ErrLocked is returned by New when another daemon holds the state.
var ErrLocked = errors.New("another qvm-remote-dom0 is running (it holds the state directory)")

type cmdKey struct {
	vm string
	id proto.ID
}

// New opens the daemon's state (the ledger) and returns it ready to Run.
func New(cfg Config, log *logrus.Entry, open Opener) (*Daemon, error) {
	lock, err := lockState(string(cfg.StateDir))
	if err != nil {
		return nil, err
	}
	l, err := ledger.Open(cfg.StateDir.Join("ledger"), 2*cfg.TimeWindow+time.Minute)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("state: %w", err)
	}
	d := &Daemon{
		cfg:      cfg,
		log:      log,
		audit:    audit.New(log),
		keys:     keys.Store{Dir: string(cfg.KeyDir)},
		ledger:   l,
		open:     open,
		sched:    newScheduler(cfg.MaxConcurrent, cfg.MaxPerVM, cfg.MaxQueued),
		run:      executor.Run,
		now:      time.Now,
		sessions: map[string]*session{},
		policy:   map[string]VM{},
		records:  map[cmdKey]*record{},
		wake:     map[string]chan struct{}{},
		serving:  map[string]bool{},
		lock:     lock,
	}
	for _, vm := range cfg.VMs {
		d.policy[vm.Name] = vm
	}
	return d, nil
}

// Close releases the daemon's state.
func (d *Daemon) Close() error {
	err := d.ledger.Close()
	d.lock.Close()
	return err
}

// lockState takes an exclusive lock in the state directory: two daemons
// appending to one ledger could each run a command the other has seen.
func lockState(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("state lock: %w", err)
	}
	return f, nil
}

// ServedVMs returns the VMs to serve: those configured, those named by the
// 1.x config, and those with a key, limited to only if it is not empty.
func (d *Daemon) ServedVMs(only []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(vm string) {
		if !seen[vm] {
			seen[vm] = true
			out = append(out, vm)
		}
	}
	for _, vm := range d.cfg.VMs {
		add(vm.Name)
	}
	if d.cfg.LegacyConf != "" {
		legacy, err := keys.ReadLegacyConf(string(d.cfg.LegacyConf))
		if err != nil {
			return nil, err
		}
		for _, vm := range legacy {
			add(vm)
		}
	}
	entries, err := d.keys.List()
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		add(e.VM)
	}
	if len(only) == 0 {
		return out, nil
	}
	for _, vm := range only {
		if !proto.ValidVMName(vm) {
			return nil, fmt.Errorf("invalid VM name %q", vm)
		}
	}
	return only, nil
}

// Run serves vms until ctx is cancelled, then stops every command (they are
// answered "interrupted" after the next start, never run again) and returns.
// A nil vms serves every VM ServedVMs(nil) names and follows the key
// directory, so a VM authorized later is served at once. In Once mode it
// returns when every VM's backlog is answered.
func (d *Daemon) Run(ctx context.Context, vms []string) error {
	if d.DryRun {
		d.Once = true
	}
	follow := vms == nil
	if follow {
		var err error
		if vms, err = d.ServedVMs(nil); err != nil {
			return err
		}
	}
	if len(vms) == 0 && (!follow || d.Once) {
		return errors.New("no VMs to serve: authorize one (qvm-remote-dom0 authorize VM) or list it in vms")
	}
	var wg sync.WaitGroup
	start := func(vm string) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.serving[vm] {
			return
		}
		d.serving[vm] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.serveVM(ctx, vm)
		}()
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if !d.Once {
		// Both watches only shorten waits; without them the backoff still
		// finds every VM.
		if d.cfg.QrexecDir == "" {
			d.log.Info("qrexec_dir is empty: newly started VMs are found by backoff")
		} else if err := d.watchQrexecDir(wctx); err != nil {
			d.log.WithError(err).Info("not watching VM starts; newly started VMs are found by backoff")
		}
		if follow {
			if err := d.watchKeys(wctx, start); err != nil {
				d.log.WithError(err).Warn("not watching the key directory; newly authorized VMs need a restart")
			}
		}
	}
	for _, vm := range vms {
		start(vm)
	}
	d.log.WithField("vms", vms).Info("serving")
	if follow && !d.Once {
		<-ctx.Done() // the key watch may add VMs until the end
	}
	wg.Wait()
	d.jobs.Wait()
	return nil
}

// Wake makes vm's channel loop try to open its channel now instead of at the
// end of its backoff; "" wakes every VM.
func (d *Daemon) Wake(vm string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, ch := range d.wake {
		if vm == "" || vm == name {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

func (d *Daemon) wakeChan(vm string) chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	ch := d.wake[vm]
	if ch == nil {
		ch = make(chan struct{}, 1)
		d.wake[vm] = ch
	}
	return ch
}

// serveVM keeps one channel open to vm while it runs. A channel that fails
// is re-opened with exponential backoff (each attempt costs a qvm-check). A
// halted VM is not polled while VM starts are watched: its start wakes the
// loop (the qrexec socket appears), and only a safety re-check every
// halted_recheck runs meanwhile. Wake cuts any wait short.
func (d *Daemon) serveVM(ctx context.Context, vm string) {
	log := d.log.WithField("vm", vm)
	wake := d.wakeChan(vm)
	backoff := d.cfg.ReopenMin
	for ctx.Err() == nil {
		// A wake that arrived before this attempt is stale; one arriving
		// during it stays queued and ends the wait below at once, so a start
		// racing a "not running" answer is not lost.
		select {
		case <-wake:
		default:
		}
		start := d.now()
		halted := false
		ch, err := d.open(ctx, vm)
		if err == nil {
			d.serveChannel(ctx, vm, ch)
			if d.now().Sub(start) > stableSession {
				backoff = d.cfg.ReopenMin
			}
		} else if errors.Is(err, qubes.ErrNotRunning) {
			log.Debug("VM not running")
			halted = d.startsWatched.Load() && !d.qrexecSocketExists(vm)
		} else if errors.Is(err, qubes.ErrPaused) {
			// Unpausing creates no socket: the backoff finds it.
			log.Debug("VM paused")
		} else if ctx.Err() == nil {
			log.WithError(err).Warn("cannot open channel")
		}
		if d.Once {
			return
		}
		wait := backoff
		if halted {
			wait = d.cfg.HaltedRecheck
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
			if !halted {
				backoff = min(2*backoff, d.cfg.ReopenMax)
			}
		case <-wake:
			backoff = d.cfg.ReopenMin
		}
		t.Stop()
	}
}

// qrexecSocketExists tells whether dom0's qrexec socket of vm is there: a VM
// reported not running while it is (still starting, or a stale socket of a
// killed qrexec-daemon) keeps the short backoff instead of the long
// re-check. vm is a served VM's name (configuration or key file), checked by
// proto.ValidVMName, never VM data.
func (d *Daemon) qrexecSocketExists(vm string) bool {
	_, err := os.Lstat(filepath.Join(string(d.cfg.QrexecDir), qrexecSocketPrefix+vm))
	return err == nil
}

// session is one open channel.
type session struct {
	vm   string
	conn *proto.Conn
	ch   io.Closer
	// out carries frames to the writer; a nil frame asks it to close the
	// channel after everything before it is written (--once).
	out       chan proto.Message
	done      chan struct{}
	closeOnce sync.Once
	// jobs counts the commands accepted on this channel and not finished.
	jobs sync.WaitGroup
}

func (s *session) close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.ch.Close()
	})
}

// send queues m for the VM; a VM that does not take it within sendTimeout
// is cut off.
func (s *session) send(m proto.Message) bool {
	select {
	case s.out <- m:
		return true
	case <-s.done:
		return false
	default:
	}
	t := time.NewTimer(sendTimeout)
	defer t.Stop()
	select {
	case s.out <- m:
		return true
	case <-s.done:
		return false
	case <-t.C:
		s.close()
		return false
	}
}

func (s *session) writer() {
	for {
		select {
		case m := <-s.out:
			if m == nil {
				s.close()
				return
			}
			if err := s.conn.Send(m); err != nil {
				s.close()
				return
			}
		case <-s.done:
			return
		}
	}
}

func (d *Daemon) serveChannel(ctx context.Context, vm string, ch io.ReadWriteCloser) {
	s := &session{vm: vm, conn: proto.NewConn(ch, ch, proto.Dom0Side), ch: ch, out: make(chan proto.Message, 64), done: make(chan struct{})}
	defer s.close()
	go s.writer()
	stop := context.AfterFunc(ctx, s.close)
	defer stop()
	log := d.log.WithField("vm", vm)

	s.send(proto.Hello{Version: proto.Version, VM: vm})
	t := time.AfterFunc(handshakeTimeout, s.close)
	m, err := s.conn.Recv()
	t.Stop()
	if err != nil {
		log.WithError(err).Debug("channel ended before its hello")
		return
	}
	if h, ok := m.(proto.Hello); !ok || h.Version != proto.Version {
		d.audit.Record(audit.Channel, vm, "", "channel cut off: bad hello", logrus.Fields{"frame": fmt.Sprintf("%T", m)})
		return
	}
	d.mu.Lock()
	old := d.sessions[vm]
	d.sessions[vm] = s
	d.mu.Unlock()
	if old != nil {
		old.close()
	}
	d.audit.Record(audit.Channel, vm, "", "channel open", nil)
	defer func() {
		d.mu.Lock()
		if d.sessions[vm] == s {
			delete(d.sessions, vm)
		}
		d.mu.Unlock()
	}()

	for {
		m, err := s.conn.Recv()
		if err != nil {
			select {
			case <-s.done:
				d.audit.Record(audit.Channel, vm, "", "channel closed", nil)
			default:
				if errors.Is(err, io.EOF) {
					d.audit.Record(audit.Channel, vm, "", "channel closed by the VM", nil)
				} else {
					d.audit.Record(audit.Channel, vm, "", "channel cut off", logrus.Fields{"error": err.Error()})
				}
			}
			return
		}
		switch m := m.(type) {
		case proto.Submit:
			d.handle(ctx, s, m)
		case proto.Sync:
			if d.Once {
				// The backlog is in: answer it, then close the channel.
				go func() {
					s.jobs.Wait()
					s.send(nil)
				}()
			}
		case proto.Ack:
			d.ack(vm, m.ID)
		default:
			d.audit.Record(audit.Channel, vm, "", "channel cut off: unexpected frame", logrus.Fields{"frame": fmt.Sprintf("%T", m)})
			return
		}
	}
}

// record is one accepted command from its acceptance until the VM
// acknowledges its result: everything it wrote and, once it ended, its
// result. A channel can break with frames sent and never handled, and the
// VM hands every unanswered command in again on its next channel; the
// record is then bound to that channel and sends the output again from its
// start (the VM skips what it has), the rest as it comes, and the result.
// Nothing a command wrote is lost to a channel that breaks or is replaced.
type record struct {
	id proto.ID

	mu sync.Mutex
	// s is the channel the command was last handed in on; nil once a send
	// on it failed.
	s *session
	// out is what the command wrote to stdout and stderr, all of it: the
	// executor bounds it (max_stdout, max_stderr), so running commands hold
	// at most max_concurrent times that; ended ones count against
	// outboxMaxBytes. Its bytes are never changed, so frames share them.
	out [2][]byte
	// dropped marks a stream given up for outboxMaxBytes.
	dropped [2]bool
	res     *proto.Result

	// Under Daemon.mu: set when the command ended.
	ended   bool
	expires time.Time
	size    int // of out, counted in Daemon.kept
}

var streams = [2]proto.Stream{proto.Stdout, proto.Stderr}

// write keeps p, a piece of stream i, and sends it on the record's channel.
func (r *record) write(i int, p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := len(r.out[i])
	r.out[i] = append(r.out[i], p...)
	if r.s != nil && !r.s.send(proto.Output{ID: r.id, Stream: streams[i], Data: r.out[i][start:len(r.out[i]):len(r.out[i])]}) {
		r.s = nil
	}
}

// attach binds the record to s, the channel the command was just handed in
// on, and sends on it everything the command wrote so far and its result if
// it has ended.
func (r *record) attach(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s = s
	for i, b := range r.out {
		for len(b) > 0 {
			k := min(len(b), proto.MaxChunk)
			if !s.send(proto.Output{ID: r.id, Stream: streams[i], Data: b[:k:k]}) {
				r.s = nil
				return
			}
			b = b[k:]
		}
	}
	if r.res == nil {
		return
	}
	res := *r.res
	if res.Status != proto.Refused {
		if r.dropped[0] {
			res.Flags |= proto.FlagStdoutTruncated
		}
		if r.dropped[1] {
			res.Flags |= proto.FlagStderrTruncated
		}
	}
	if !s.send(res) {
		r.s = nil
	}
}

// end records res, sends it on the record's channel if it has one, and
// keeps the record for a resubmission until the VM acknowledges it.
func (d *Daemon) end(vm string, r *record, res proto.Result) {
	now := d.now()
	r.mu.Lock()
	r.res = &res
	size := len(r.out[0]) + len(r.out[1])
	// Ended before the result is sent, so that its Ack finds it ended.
	d.mu.Lock()
	r.ended, r.expires, r.size = true, now.Add(2*d.cfg.TimeWindow+time.Minute), size
	d.kept += size
	victims := d.trimLocked(now)
	d.mu.Unlock()
	sent := r.s != nil && r.s.send(res)
	if !sent {
		r.s = nil
	}
	r.mu.Unlock()
	if !sent {
		d.log.WithField("vm", vm).WithField("id", r.id).Info("no channel: result kept for the VM's next channel")
	}
	for _, v := range victims {
		v.mu.Lock()
		for i := range v.out {
			if len(v.out[i]) > 0 {
				v.out[i], v.dropped[i] = nil, true
			}
		}
		v.mu.Unlock()
	}
}

// trimLocked forgets the expired ended records and the oldest beyond
// outboxMax, and returns the oldest whose output must go for
// outboxMaxBytes. The caller drops that output after releasing d.mu: a
// record's lock can be held by a send that waits for a slow VM, so d.mu is
// never held while waiting for one (record.mu may be held while taking
// d.mu, never the other way round).
func (d *Daemon) trimLocked(now time.Time) []*record {
	var ended []cmdKey
	for k, r := range d.records {
		if !r.ended {
			continue
		}
		if now.After(r.expires) {
			d.forgetLocked(k)
			continue
		}
		ended = append(ended, k)
	}
	if len(ended) <= outboxMax && d.kept <= outboxMaxBytes {
		return nil
	}
	slices.SortFunc(ended, func(a, b cmdKey) int { return d.records[a].expires.Compare(d.records[b].expires) })
	for len(ended) > outboxMax {
		d.forgetLocked(ended[0])
		ended = ended[1:]
	}
	var victims []*record
	for _, k := range ended {
		if d.kept <= outboxMaxBytes {
			break
		}
		if r := d.records[k]; r.size > 0 {
			d.kept -= r.size
			r.size = 0
			victims = append(victims, r)
		}
	}
	return victims
}

func (d *Daemon) forgetLocked(k cmdKey) {
	if r := d.records[k]; r != nil {
		d.kept -= r.size
		delete(d.records, k)
	}
}

// ack forgets an ended command whose result the VM has written. An Ack for
// anything else (still running, unknown: a confused or hostile VM) changes
// nothing.
func (d *Daemon) ack(vm string, id proto.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := cmdKey{vm, id}
	if r := d.records[k]; r != nil && r.ended {
		d.forgetLocked(k)
	}
}

// refuse answers a command it does not accept on the channel it came on.
// The answer is not kept: if the channel breaks first, the VM hands the
// command in again and gets it anew.
func (d *Daemon) refuse(s *session, id proto.ID, cat audit.Category, r proto.Reason, detail string) {
	if d.DryRun {
		d.report(s.vm, id, r.String(), nil)
		return
	}
	d.audit.Record(cat, s.vm, id, r.String(), logrus.Fields{"detail": detail})
	s.send(proto.Refusal(id, r, ""))
}

// fail ends an accepted command with a refusal.
func (d *Daemon) fail(vm string, r *record, cat audit.Category, reason proto.Reason, detail string) {
	d.audit.Record(cat, vm, r.id, reason.String(), logrus.Fields{"detail": detail})
	d.end(vm, r, proto.Refusal(r.id, reason, ""))
}

func (d *Daemon) report(vm string, id proto.ID, verdict string, body []byte) {
	if d.Report != nil {
		d.Report(DryRunEntry{VM: vm, ID: id, Verdict: verdict, Body: body})
	}
}

// handle checks one submission and queues it; every path ends in exactly
// one Result (now, or when the command ends), sent again if the VM hands the
// command in again before acknowledging it.
func (d *Daemon) handle(ctx context.Context, s *session, sub proto.Submit) {
	vm := s.vm
	k := cmdKey{vm, sub.ID}
	d.mu.Lock()
	rec := d.records[k]
	ended := rec != nil && rec.ended
	d.mu.Unlock()
	if rec != nil && !ended {
		// Handed in again by a new channel while still queued or running
		// here: its output so far, the rest and its result go to this one.
		rec.attach(s)
		return
	}
	key, err := d.keys.Get(vm)
	if err != nil {
		d.refuse(s, sub.ID, audit.AuthFail, proto.ReasonNoKey, err.Error())
		return
	}
	claims := proto.Claims{VM: vm, ID: sub.ID, Time: sub.Time, Timeout: sub.Timeout, BodySHA256: sha256.Sum256(sub.Body)}
	if !proto.Verify(key[:], claims, sub.MAC) {
		d.refuse(s, sub.ID, audit.AuthFail, proto.ReasonAuth, "token does not match (key "+key.Fingerprint()+")")
		return
	}
	// Before the clock check: the answer may be long overdue.
	if ended && !d.DryRun {
		d.audit.Record(audit.Done, vm, sub.ID, "result sent again (the VM handed the command in again before acknowledging it)", nil)
		rec.attach(s)
		return
	}
	if !proto.CheckTime(sub.Time, d.now(), d.cfg.TimeWindow) {
		d.refuse(s, sub.ID, audit.AuthFail, proto.ReasonStale, fmt.Sprintf("client time %d", sub.Time))
		return
	}
	d.audit.Record(audit.AuthOK, vm, sub.ID, "token verified", logrus.Fields{"key_fingerprint": key.Fingerprint()})
	if err := proto.ValidateBody(sub.Body, d.cfg.MaxCommandSize); err != nil {
		r := proto.ReasonBinary
		switch {
		case errors.Is(err, proto.ErrEmpty):
			r = proto.ReasonEmpty
		case errors.Is(err, proto.ErrTooLarge):
			r = proto.ReasonTooLarge
		}
		d.refuse(s, sub.ID, audit.Reject, r, err.Error())
		return
	}
	switch d.ledger.Lookup(vm, sub.ID) {
	case ledger.Interrupted:
		d.refuse(s, sub.ID, audit.Reject, proto.ReasonInterrupted, "")
		return
	case ledger.Done, ledger.Running:
		d.refuse(s, sub.ID, audit.Reject, proto.ReasonReplay, "")
		return
	}
	pol := d.policy[vm]
	if pol.Mode == "restricted" && !allowed(sub.Body, pol.Allow) {
		d.refuse(s, sub.ID, audit.Deny, proto.ReasonDenied, "")
		return
	}
	timeout := d.cfg.DefaultTimeout
	if sub.Timeout > 0 {
		timeout = time.Duration(sub.Timeout) * time.Second
	}
	maxT := d.cfg.MaxTimeout
	if pol.MaxTimeout > 0 {
		maxT = pol.MaxTimeout
	}
	timeout = min(timeout, maxT)
	if d.DryRun {
		d.report(vm, sub.ID, "would run (timeout "+timeout.String()+")", sub.Body)
		return
	}

	d.mu.Lock()
	if other := d.records[k]; other != nil {
		// Accepted meanwhile (a VM's channels are served one at a time, so
		// this is defensive): answered like a resubmission.
		d.mu.Unlock()
		other.attach(s)
		return
	}
	rec = &record{id: sub.ID, s: s}
	d.records[k] = rec
	d.mu.Unlock()
	d.jobs.Add(1)
	s.jobs.Add(1)
	ok := d.sched.submit(vm, func() {
		defer d.jobs.Done()
		defer s.jobs.Done()
		d.execute(ctx, vm, pol, rec, sub, timeout)
	})
	if !ok {
		d.jobs.Done()
		s.jobs.Done()
		d.mu.Lock()
		delete(d.records, k)
		d.mu.Unlock()
		d.refuse(s, sub.ID, audit.Reject, proto.ReasonBusy, "")
	}
}

func (d *Daemon) execute(ctx context.Context, vm string, pol VM, rec *record, sub proto.Submit, timeout time.Duration) {
	if ctx.Err() != nil {
		// Shutting down: never begun, so the next daemon may run it.
		d.mu.Lock()
		d.forgetLocked(cmdKey{vm, sub.ID})
		d.mu.Unlock()
		return
	}
	if err := d.ledger.Begin(vm, sub.ID, sub.Time); err != nil {
		if errors.Is(err, ledger.ErrSeen) {
			d.fail(vm, rec, audit.Reject, proto.ReasonReplay, "")
		} else {
			d.log.WithError(err).Error("ledger")
			d.fail(vm, rec, audit.Reject, proto.ReasonInternal, "")
		}
		return
	}
	fields := audit.Command(sub.Body)
	fields["timeout"] = timeout.String()
	d.audit.Record(audit.Exec, vm, sub.ID, "command started", fields)
	out, err := d.run(ctx, executor.Config{
		RuntimeDir: string(d.cfg.RuntimeDir),
		Bash:       d.cfg.Exec.Bash,
		Path:       d.cfg.Exec.Path,
		Lang:       d.cfg.Exec.Lang,
		Home:       string(d.cfg.Exec.Home),
		PassEnv:    d.cfg.Exec.PassEnv,
		Grace:      d.cfg.KillGrace,
		MaxStdout:  d.cfg.MaxStdout,
		MaxStderr:  d.cfg.MaxStderr,
	}, executor.Job{
		VM: vm, ID: sub.ID, Body: sub.Body, Timeout: timeout, User: pol.User,
		Stdout: &streamWriter{r: rec, stream: 0},
		Stderr: &streamWriter{r: rec, stream: 1},
	})
	if err != nil && ctx.Err() != nil {
		// Stopped by shutdown: left unfinished in the ledger, so the
		// resubmission after restart is answered "interrupted".
		d.audit.Record(audit.Reject, vm, sub.ID, "interrupted by shutdown", nil)
		d.end(vm, rec, proto.Refusal(sub.ID, proto.ReasonInterrupted, ""))
		return
	}
	if ferr := d.ledger.Finish(vm, sub.ID); ferr != nil {
		d.log.WithError(ferr).Error("ledger")
	}
	if err != nil {
		d.log.WithError(err).WithField("vm", vm).WithField("id", sub.ID).Error("run")
		d.fail(vm, rec, audit.DoneFail, proto.ReasonInternal, err.Error())
		return
	}
	res := proto.Result{ID: sub.ID, Status: proto.Exited, Code: uint8(out.ExitCode), DurationMS: uint32(min(out.Duration.Milliseconds(), 1<<32-1))}
	if out.StdoutTruncated {
		res.Flags |= proto.FlagStdoutTruncated
	}
	if out.StderrTruncated {
		res.Flags |= proto.FlagStderrTruncated
	}
	done := logrus.Fields{"exit": out.ExitCode, "duration_ms": res.DurationMS}
	switch {
	case out.TimedOut:
		res.Status, res.Code = proto.TimedOut, executor.ExitTimeout
		d.audit.Record(audit.Timeout, vm, sub.ID, "command timed out", logrus.Fields{"timeout": timeout.String()})
	case out.ExitCode == 0:
		d.audit.Record(audit.Done, vm, sub.ID, "command done", done)
	default:
		d.audit.Record(audit.DoneFail, vm, sub.ID, "command failed", done)
	}
	if res.Flags != 0 {
		d.audit.Record(audit.Trunc, vm, sub.ID, "output truncated", logrus.Fields{"stdout": out.StdoutTruncated, "stderr": out.StderrTruncated})
	}
	d.end(vm, rec, res)
}

// streamWriter turns a command's output into Output frames.
type streamWriter struct {
	r      *record
	stream int
}

func (w *streamWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), proto.MaxChunk)
		w.r.write(w.stream, p[:k]) // copied: the executor reuses its buffer
		p = p[k:]
	}
	return n, nil
}

package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/splice"
)

// bufSize is the copy buffer per direction: big enough that a bulk transfer
// costs few system calls per pipe refill.
const bufSize = 256 << 10

// bufs recycles copy buffers: a fresh 256 KiB per direction and connection
// costs page faults and zeroing on the request's path, and GC work after.
var bufs = sync.Pool{New: func() any { return new([bufSize]byte) }}

// refillDelay bounds how long a connection keeps the pool one channel short.
const refillDelay = 100 * time.Millisecond

// Starter starts a halted VM (qvm-start), for autostart.
type Starter func(ctx context.Context, vm string) error

// Prober tells whether a VM runs (qvm-check --running in dom0), so a tunnel
// whose VM is down waits for it without opening doomed channels.
type Prober func(ctx context.Context, vm string) (bool, error)

// Daemon runs every configured tunnel.
type Daemon struct {
	cfg   Config
	open  Opener
	start Starter
	// Probe, if set, is asked before a down tunnel tries channels again
	// (dom0); without it (a client VM) a channel is the probe.
	Probe   Prober
	log     *logrus.Entry
	tunnels []*tunnel
	started time.Time
	// chanCtx bounds the lives of channels: it outlasts the serving ctx by
	// shutdown_grace, so open connections can finish.
	chanCtx context.Context
}

// New prepares a daemon; start may be nil when cfg.Autostart is off.
func New(cfg Config, open Opener, start Starter, log *logrus.Entry) (*Daemon, error) {
	if err := cfg.CheckTunnels(); err != nil {
		return nil, err
	}
	if cfg.Autostart && start == nil {
		return nil, errors.New("autostart needs a way to start VMs")
	}
	d := &Daemon{cfg: cfg, open: open, start: start, log: log}
	for _, tc := range cfg.Tunnels {
		d.tunnels = append(d.tunnels, &tunnel{
			d: d, cfg: tc,
			log:   log.WithField("tunnel", tc.Name),
			kick:  make(chan struct{}, 1),
			conns: map[*connection]struct{}{},
		})
	}
	return d, nil
}

// Listen binds every tunnel's address; nothing is accepted before Serve.
// Binding first lets a daemon report readiness only once all ports are its.
func (d *Daemon) Listen() error {
	for _, t := range d.tunnels {
		// TCP keepalive finds dead peers across a network; on loopback
		// there are none, and it costs four setsockopt calls per accept.
		var lc net.ListenConfig
		if ap, err := config.ParseListen(t.cfg.Listen); err == nil && ap.Addr().IsLoopback() {
			lc.KeepAlive = -1
		}
		ln, err := lc.Listen(context.Background(), "tcp", t.cfg.Listen)
		if err != nil {
			d.Close()
			return fmt.Errorf("tunnel %s: %w", t.cfg.Name, err)
		}
		t.ln = ln
	}
	return nil
}

// Addr returns the bound address of the named tunnel (nil if unknown or not
// listening), for callers that listen on port 0.
func (d *Daemon) Addr(name string) net.Addr {
	for _, t := range d.tunnels {
		if t.cfg.Name == name && t.ln != nil {
			return t.ln.Addr()
		}
	}
	return nil
}

// Close closes the listeners (Serve does it itself when ctx ends).
func (d *Daemon) Close() {
	for _, t := range d.tunnels {
		if t.ln != nil {
			t.ln.Close()
		}
	}
}

// Serve accepts connections until ctx ends, then stops accepting, lets open
// connections finish for shutdown_grace, and closes the rest. Listen must
// have succeeded.
func (d *Daemon) Serve(ctx context.Context) error {
	d.started = time.Now()
	chanCtx, cancelChans := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelChans()
	d.chanCtx = chanCtx
	var wg sync.WaitGroup
	for _, t := range d.tunnels {
		if t.ln == nil {
			return fmt.Errorf("tunnel %s: not listening", t.cfg.Name)
		}
		t.log.WithField("listen", t.ln.Addr().String()).WithField("vm", t.cfg.VM).
			WithField("port", t.cfg.Port).WithField("service", t.cfg.Service).Info("listening")
		wg.Add(1)
		go func() { defer wg.Done(); t.keep(ctx) }()
		t.accepting.Add(1)
		go t.accept(ctx)
	}
	<-ctx.Done()
	d.Close()
	wg.Wait()
	for _, t := range d.tunnels {
		t.accepting.Wait()
	}
	for _, t := range d.tunnels {
		t.drain(d.cfg.ShutdownGrace)
	}
	return nil
}

// tunnel is one listening port.
type tunnel struct {
	d    *Daemon
	cfg  Tunnel
	log  *logrus.Entry
	ln   net.Listener
	kick chan struct{} // wakes the pool keeper

	mu         sync.Mutex
	idle       []*pooled
	conns      map[*connection]struct{}
	wg         sync.WaitGroup // connections being served
	accepting  sync.WaitGroup // the goroutine accepting (one, or two at a hand-over)
	down       bool
	probing    bool // up again on trust, until a channel proves it
	downSince  time.Time
	downReason string
	retryAt    time.Time
	stats      counters
	lastErr    string
	lastErrAt  time.Time
}

type counters struct {
	total, refused, failed int64
	bytesIn, bytesOut      int64
}

// pooled is a channel opened ahead of use.
type pooled struct {
	ch    Channel
	taken chan struct{} // closed when a connection takes it
}

func (t *tunnel) arg() string { return strconv.Itoa(t.cfg.Port) }

func (t *tunnel) wake() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// keep keeps the pool full while the VM is reachable, and probes it every
// retry_interval while it is not.
func (t *tunnel) keep(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	defer t.closeIdle()
	for {
		t.mu.Lock()
		want := t.d.cfg.Pool - len(t.idle)
		down, retryAt := t.down, t.retryAt
		t.mu.Unlock()
		if down && !time.Now().Before(retryAt) {
			if t.d.Probe != nil {
				running, err := t.d.Probe(ctx, t.cfg.VM)
				if ctx.Err() != nil {
					return
				}
				if err != nil || !running {
					t.mu.Lock()
					t.retryAt = time.Now().Add(t.d.cfg.RetryInterval)
					t.mu.Unlock()
					continue
				}
				t.setUp(false)
			} else {
				// A channel that fails at once marks the tunnel down
				// again, quietly; one that works ends the probing.
				t.setUp(true)
			}
			down = false
			want = max(want, 1)
		}
		if !down && want > 0 {
			if ctx.Err() != nil {
				return
			}
			ch, err := t.d.open.Open(t.d.chanCtx, t.cfg.VM, t.cfg.Service, t.arg())
			if err != nil {
				if ctx.Err() == nil {
					t.setDown(err.Error())
				}
				continue
			}
			t.addIdle(ctx, ch)
			continue
		}
		wait := time.Hour
		if down {
			wait = time.Until(retryAt)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// addIdle pools ch and watches it: a pooled channel that exits before use
// tells that the VM (or its service) went away.
func (t *tunnel) addIdle(ctx context.Context, ch Channel) {
	p := &pooled{ch: ch, taken: make(chan struct{})}
	t.mu.Lock()
	t.idle = append(t.idle, p)
	t.mu.Unlock()
	go func() {
		select {
		case <-p.taken:
		case <-ch.Done():
			if !t.removeIdle(p) {
				return // taken meanwhile: the connection reports it
			}
			err := ch.Close()
			if err == nil {
				err = errors.New("channel closed before use")
			}
			if ctx.Err() == nil {
				t.channelFailed(err, ch.Stderr())
			}
			t.wake() // refill; a VM that is gone shows up then as 125
		}
	}()
}

func (t *tunnel) removeIdle(p *pooled) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, q := range t.idle {
		if q == p {
			t.idle = append(t.idle[:i], t.idle[i+1:]...)
			return true
		}
	}
	return false
}

// takeIdle hands out the oldest pooled channel, or nil.
func (t *tunnel) takeIdle() Channel {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.idle) == 0 {
		return nil
	}
	p := t.idle[0]
	t.idle = t.idle[1:]
	close(p.taken)
	return p.ch
}

func (t *tunnel) closeIdle() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, p := range idle {
		close(p.taken)
		p.ch.Close()
	}
}

// channelFailed records a channel that ended with err; an unreachable VM or
// service marks the tunnel down.
func (t *tunnel) channelFailed(err error, stderr string) {
	msg := describeExit(err) + ": " + oneLine(err.Error(), stderr)
	if unreachable(err) {
		t.setDown(msg)
		return
	}
	t.noteErr(msg)
}

func (t *tunnel) setDown(reason string) {
	t.mu.Lock()
	was := t.down || t.probing
	t.down, t.probing = true, false
	if !was {
		t.downSince = time.Now()
	}
	t.downReason = reason
	t.retryAt = time.Now().Add(t.d.cfg.RetryInterval)
	t.lastErr, t.lastErrAt = reason, time.Now()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	// Pooled channels to a VM that is gone are useless; fresh ones are
	// opened once it is back.
	for _, p := range idle {
		close(p.taken)
		go p.ch.Close()
	}
	if !was {
		t.log.WithField("vm", t.cfg.VM).WithField("reason", reason).Warn("vm unreachable; refusing connections until it is back")
	}
	t.wake()
}

// setUp lets connections through again; probing means the VM is only
// presumed back (see reachable).
func (t *tunnel) setUp(probing bool) {
	t.mu.Lock()
	t.down, t.probing = false, probing
	t.mu.Unlock()
	if !probing {
		t.log.WithField("vm", t.cfg.VM).Info("vm reachable again")
	}
}

// reachable ends probing once a connection got an answer through.
func (t *tunnel) reachable() {
	t.mu.Lock()
	was := t.probing
	t.probing = false
	t.mu.Unlock()
	if was {
		t.log.WithField("vm", t.cfg.VM).Info("vm reachable again")
	}
}

func (t *tunnel) noteErr(msg string) {
	t.mu.Lock()
	t.lastErr, t.lastErrAt = msg, time.Now()
	t.mu.Unlock()
}

// oneLine is err plus the last line of stderr, if it adds anything.
func oneLine(err, stderr string) string {
	s := strings.TrimSpace(stderr)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" || strings.Contains(err, s) {
		return err
	}
	return err + ": " + s
}

// accept serves the listener until it is closed; t.accepting counts it.
// The goroutine that accepts a connection serves it itself and hands the
// listener to a new goroutine: the client's first bytes are copied without
// waiting for another goroutine to be scheduled (a wake-up of another thread,
// often on another CPU, on the request's path).
func (t *tunnel) accept(ctx context.Context) {
	var delay time.Duration
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				t.accepting.Done()
				return
			}
			// Out of file descriptors and the like: back off, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.log.WithError(err).Warn("accept")
			time.Sleep(delay)
			continue
		}
		t.wg.Add(1)
		t.accepting.Add(1)
		go t.accept(ctx)
		t.accepting.Done()
		defer t.wg.Done()
		t.serve(ctx, c.(*net.TCPConn))
		return
	}
}

// drain waits up to grace for the connections, then aborts the rest.
func (t *tunnel) drain(grace time.Duration) {
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	t.mu.Lock()
	for c := range t.conns {
		c.abort("daemon stopped")
	}
	t.mu.Unlock()
	<-done
}

// connection is one accepted client and its channel.
type connection struct {
	conn      *net.TCPConn
	ch        Channel
	in, out   atomic.Int64
	last      atomic.Int64 // unix nanoseconds of the last byte either way
	abortOnce sync.Once
	reason    atomic.Pointer[string]
}

// abort ends the connection for reason (idle timeout, shutdown).
func (c *connection) abort(reason string) {
	c.abortOnce.Do(func() {
		c.reason.Store(&reason)
		c.conn.Close()
		if c.ch != nil {
			go c.ch.Close()
		}
	})
}

// serve runs one connection and writes its log line.
func (t *tunnel) serve(ctx context.Context, conn *net.TCPConn) {
	start := time.Now()
	log := t.log.WithField("client", conn.RemoteAddr().String())
	refuse := func(reason string) {
		conn.Close()
		t.mu.Lock()
		t.stats.refused++
		t.lastErr, t.lastErrAt = reason, time.Now()
		t.mu.Unlock()
		log.WithField("duration", time.Since(start).Round(time.Microsecond)).
			WithField("end", "refused").WithField("reason", reason).Warn("connection refused")
	}
	c := &connection{conn: conn}
	t.mu.Lock()
	t.stats.total++
	switch {
	case ctx.Err() != nil:
		t.mu.Unlock()
		refuse("daemon stopping")
		return
	case len(t.conns) >= t.d.cfg.MaxConnections:
		t.mu.Unlock()
		refuse(fmt.Sprintf("limit of %d connections reached (max_connections)", t.d.cfg.MaxConnections))
		return
	case t.down && !t.d.cfg.Autostart:
		reason := fmt.Sprintf("vm %s unreachable since %s: %s", t.cfg.VM, t.downSince.Format(time.TimeOnly), t.downReason)
		t.mu.Unlock()
		refuse(reason)
		return
	}
	t.conns[c] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
	}()

	ch, pooled, err := t.channel(ctx)
	if err != nil {
		refuse(err.Error())
		return
	}
	c.ch = ch
	// Refill the pool once this connection is over, or after refillDelay
	// if it lasts: opening a channel starts two processes (qrexec-client
	// here, the handler in the VM), and started at once they would compete
	// for the CPU with the very request they were taken for.
	refill := time.AfterFunc(refillDelay, t.wake)
	end, exitErr := t.pipe(c)
	if refill.Stop() {
		t.wake()
	}
	if exitErr != nil && c.in.Load()+c.out.Load() == 0 || unreachable(exitErr) {
		t.channelFailed(exitErr, ch.Stderr())
	}
	if exitErr == nil && c.out.Load() > 0 {
		t.reachable()
	}
	t.mu.Lock()
	t.stats.bytesIn += c.in.Load()
	t.stats.bytesOut += c.out.Load()
	if exitErr != nil {
		t.stats.failed++
	}
	t.mu.Unlock()
	e := log.WithField("duration", time.Since(start).Round(time.Microsecond)).
		WithField("bytes_in", c.in.Load()).WithField("bytes_out", c.out.Load()).
		WithField("end", end).WithField("pooled", pooled)
	if exitErr != nil {
		e.WithField("reason", describeExit(exitErr)+": "+oneLine(exitErr.Error(), ch.Stderr())).Warn("connection failed")
		return
	}
	e.Info("connection closed")
}

// channel returns a pooled channel or opens one, starting the VM first if
// it is down and autostart is set; the whole is bounded by connect_timeout.
func (t *tunnel) channel(ctx context.Context) (Channel, bool, error) {
	if ch := t.takeIdle(); ch != nil {
		return ch, true, nil
	}
	t.mu.Lock()
	down := t.down
	t.mu.Unlock()
	if down && t.d.cfg.Autostart {
		sctx, cancel := context.WithTimeout(ctx, t.d.cfg.ConnectTimeout)
		err := t.d.start(sctx, t.cfg.VM)
		cancel()
		if err != nil {
			return nil, false, fmt.Errorf("start vm %s: %w", t.cfg.VM, err)
		}
		t.setUp(false)
	}
	// The channel lives as long as the daemon (ctx): connections end it
	// themselves; connect_timeout bounds only the start of the process.
	type opened struct {
		ch  Channel
		err error
	}
	res := make(chan opened, 1)
	go func() {
		ch, err := t.d.open.Open(t.d.chanCtx, t.cfg.VM, t.cfg.Service, t.arg())
		res <- opened{ch, err}
	}()
	timer := time.NewTimer(t.d.cfg.ConnectTimeout)
	defer timer.Stop()
	select {
	case o := <-res:
		if o.err != nil {
			t.setDown(o.err.Error())
			return nil, false, o.err
		}
		return o.ch, false, nil
	case <-timer.C:
		go func() {
			if o := <-res; o.ch != nil {
				o.ch.Close()
			}
		}()
		return nil, false, fmt.Errorf("no channel to %s within connect_timeout (%s)", t.cfg.VM, t.d.cfg.ConnectTimeout)
	}
}

// pipe copies both ways until the VM side has ended, and returns how the
// connection ended and the channel's exit status.
func (t *tunnel) pipe(c *connection) (string, error) {
	c.last.Store(time.Now().UnixNano())
	if idle := t.d.cfg.IdleTimeout; idle > 0 {
		var timer *time.Timer
		timer = time.AfterFunc(idle, func() {
			since := time.Since(time.Unix(0, c.last.Load()))
			if since >= idle {
				c.abort("idle timeout")
				return
			}
			timer.Reset(idle - since)
		})
		defer timer.Stop()
	}
	// The bytes move by splice(2) between the socket and a qrexec
	// client's pipes: the daemon stays a byte copier that never sees them.
	var toVM io.Writer = c.ch
	var fromVM io.Reader = c.ch
	if p, ok := c.ch.(piped); ok {
		toVM, fromVM = p.Pipes()
	}
	// VM → client, in a new goroutine: its end is the end of the
	// connection, as with qubes.ConnectTCP's exit-on-service-eof. It then
	// closes the client's socket, which ends the upstream copy too.
	type ending struct {
		exitErr, copyErr error
		clientFirst      bool
	}
	var upEnded atomic.Bool // the client's EOF reached the channel
	down := make(chan ending, 1)
	go func() {
		buf := bufs.Get().(*[bufSize]byte)
		_, err := splice.Copy(c.conn, fromVM, buf[:], c.counter(&c.out))
		bufs.Put(buf)
		c.conn.CloseWrite()
		first := upEnded.Load()
		exitErr := c.ch.Close()
		c.conn.Close() // unblocks the upstream copy's read
		down <- ending{exitErr, err, first}
	}()
	// client → VM, here: the request's first bytes go at once. The
	// client's EOF half-closes the channel.
	buf := bufs.Get().(*[bufSize]byte)
	_, upErr := splice.Copy(toVM, c.conn, buf[:], c.counter(&c.in))
	bufs.Put(buf)
	if upErr == nil {
		upEnded.Store(true)
		c.ch.CloseWrite()
	}
	e := <-down
	exitErr, downErr := e.exitErr, e.copyErr
	if r := c.reason.Load(); r != nil {
		// We ended it (and may have killed the channel): not a failure.
		return *r, nil
	}
	switch {
	case exitErr != nil:
		return "channel failed", exitErr
	case downErr != nil:
		return "client gone", nil
	case e.clientFirst:
		return "client closed first", nil
	}
	return "vm closed first", nil
}

// counter returns a progress function that counts into n and notes the
// time, for the log line and the idle timeout.
func (c *connection) counter(n *atomic.Int64) func(int64) {
	return func(k int64) {
		n.Add(k)
		c.last.Store(time.Now().UnixNano())
	}
}

// piped is a channel whose bytes flow through pipes (*qubes.Stream).
type piped interface {
	Pipes() (stdin, stdout *os.File)
}

package tunnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/connect"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/qubes"
)

// fakeOpener opens in-process channels whose VM side is the real handler
// (connect.Handle) over pipes, as qrexec would run it. While down is set,
// channels fail at once the way qrexec-client -d does for a halted VM.
type fakeOpener struct {
	ports  []int
	down   atomic.Bool
	opened atomic.Int32
	mu     sync.Mutex
	live   map[*fakeChan]bool
}

func newFakeOpener(ports ...int) *fakeOpener {
	return &fakeOpener{ports: ports, live: map[*fakeChan]bool{}}
}

func (o *fakeOpener) Open(ctx context.Context, vm, service, arg string) (Channel, error) {
	o.opened.Add(1)
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c := &fakeChan{inW: inW, outR: outR, done: make(chan struct{})}
	o.mu.Lock()
	o.live[c] = true
	o.mu.Unlock()
	exit := func(err error) {
		c.err = err
		outW.Close()
		inR.Close()
		o.mu.Lock()
		delete(o.live, c)
		o.mu.Unlock()
		close(c.done)
	}
	downErr := fmt.Errorf("%w: %w", qubes.ErrNotRunning, fmt.Errorf("%w: %w", qubes.ErrQrexec,
		&qubes.CommandError{Argv: []string{"qrexec-client", "-d", vm}, ExitCode: 125, Stderr: "connect: No such file or directory"}))
	if o.down.Load() {
		go exit(downErr)
		return c, nil
	}
	cfg := connect.Defaults()
	cfg.Ports = o.ports
	go func() {
		hctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-c.killed():
				cancel()
			case <-hctx.Done():
			}
		}()
		_, err := connect.Handle(hctx, cfg, arg, inR, outW, logging.Discard())
		select {
		case <-c.killed():
			err = downErr // the VM went away under the handler
		default:
			if err != nil {
				err = &qubes.CommandError{Argv: []string{"qrexec-client"}, ExitCode: 1, Stderr: err.Error()}
			}
		}
		exit(err)
	}()
	return c, nil
}

// halt makes every open channel fail as if the VM stopped, and new ones too.
func (o *fakeOpener) halt() {
	o.down.Store(true)
	o.mu.Lock()
	defer o.mu.Unlock()
	for c := range o.live {
		c.kill()
	}
}

func (o *fakeOpener) liveCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.live)
}

type fakeChan struct {
	inW, outR *os.File
	done      chan struct{}
	err       error
	wOnce     sync.Once
	cOnce     sync.Once
	kOnce     sync.Once
	kill_     chan struct{}
	kmu       sync.Mutex
}

func (c *fakeChan) killed() chan struct{} {
	c.kmu.Lock()
	defer c.kmu.Unlock()
	if c.kill_ == nil {
		c.kill_ = make(chan struct{})
	}
	return c.kill_
}

func (c *fakeChan) kill() {
	ch := c.killed()
	c.kOnce.Do(func() { close(ch) })
}

func (c *fakeChan) Read(p []byte) (int, error)  { return c.outR.Read(p) }
func (c *fakeChan) Write(p []byte) (int, error) { return c.inW.Write(p) }
func (c *fakeChan) CloseWrite() error {
	c.wOnce.Do(func() { c.inW.Close() })
	return nil
}
func (c *fakeChan) Close() error {
	c.cOnce.Do(func() {
		c.CloseWrite()
		select {
		case <-c.done:
		case <-time.After(time.Second): // as qubes.Client.CloseTimeout in the daemon
			c.kill()
			<-c.done
		}
		c.outR.Close()
	})
	<-c.done
	return c.err
}
func (c *fakeChan) Done() <-chan struct{} { return c.done }
func (c *fakeChan) Wait() error           { <-c.done; return c.err }
func (c *fakeChan) Stderr() string {
	var ce *qubes.CommandError
	if errors.As(c.err, &ce) {
		return ce.Stderr
	}
	return ""
}

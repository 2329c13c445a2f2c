package qubes

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Stream is a bidirectional byte stream over a long-lived child's stdin and
// stdout (qvm-run --pass-io, qrexec-client, qrexec-client-vm), modelled on a
// net.Conn: Read reads the child's stdout, Write writes its stdin, CloseWrite
// half-closes, Close tears everything down. Stderr is kept, bounded.
//
// Read and Write may be called concurrently with each other and with Close.
type Stream struct {
	proc   Process
	stdin  *os.File // our write end of the child's stdin
	stdout *os.File // our read end of the child's stdout
	stderr *boundedBuffer

	classify     func(error) error
	closeTimeout time.Duration

	writeOnce sync.Once
	writeErr  error
	readOnce  sync.Once
	closeOnce sync.Once
	closeErr  error

	done    chan struct{} // closed when the waiter goroutine has the exit status
	waitErr error
}

// start wires pipes to a child and starts the single waiter goroutine.
func (c *Client) start(ctx context.Context, argv []string, classify func(error) error) (*Stream, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	growPipe(inW)
	growPipe(outR)
	s := &Stream{
		stdin:        inW,
		stdout:       outR,
		stderr:       &boundedBuffer{max: MaxStderr},
		classify:     classify,
		closeTimeout: c.CloseTimeout,
		done:         make(chan struct{}),
	}
	if s.closeTimeout == 0 {
		s.closeTimeout = 5 * time.Second
	}
	// Start owns (and closes) the child's ends.
	proc, err := c.runner().Start(ctx, argv, inR, outW, s.stderr)
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	s.proc = proc
	go func() {
		// Wait returns once the child has exited and its stderr is
		// drained; stdout stays readable since we own its read end.
		err := proc.Wait()
		if err != nil {
			err = classify(err)
		}
		s.waitErr = err
		close(s.done)
	}()
	return s, nil
}

// pipeSize is asked for a stream's pipes: a bulk transfer then wakes the
// other side once per megabyte rather than per 64 KiB (the default).
const pipeSize = 1 << 20

// growPipe enlarges a pipe, best effort (fs.pipe-max-size may refuse);
// through SyscallConn, since Fd would make the file blocking.
func growPipe(f *os.File) {
	if sc, err := f.SyscallConn(); err == nil {
		_ = sc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
	}
}

// Read reads the child's standard output.
func (s *Stream) Read(p []byte) (int, error) { return s.stdout.Read(p) }

// Write writes to the child's standard input.
func (s *Stream) Write(p []byte) (int, error) { return s.stdin.Write(p) }

// CloseWrite closes the child's standard input (half-close), telling the
// remote side that no more data follows. It is safe to call more than once.
func (s *Stream) CloseWrite() error {
	s.writeOnce.Do(func() { s.writeErr = s.stdin.Close() })
	return s.writeErr
}

func (s *Stream) closeRead() {
	s.readOnce.Do(func() { s.stdout.Close() })
}

// Close half-closes stdin, waits up to Client.CloseTimeout for the child to
// exit, kills it otherwise, and releases the pipes. It returns the child's
// exit status as Wait does (nil for a clean exit). It is safe to call more
// than once and concurrently with Read and Write.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		s.CloseWrite()
		t := time.NewTimer(s.closeTimeout)
		defer t.Stop()
		select {
		case <-s.done:
		case <-t.C:
			s.proc.Kill()
			<-s.done // bounded by the runner's WaitDelay
		}
		s.closeRead()
		s.closeErr = s.waitErr
	})
	return s.closeErr
}

// Wait waits for the child to exit and returns its status mapped to the
// package sentinels (ErrQrexec, ErrRefused, ErrNoService, ErrNoSuchVM, ...).
// Reading stdout to EOF is not required first.
func (s *Stream) Wait() error {
	<-s.done
	return s.waitErr
}

// Done is closed when the child has exited.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Pipes returns the pipe ends behind Write (the child's stdin) and Read (its
// stdout), for zero-copy relays (splice); they stay the Stream's to close.
func (s *Stream) Pipes() (stdin, stdout *os.File) { return s.stdin, s.stdout }

// Stderr returns what the child wrote to standard error so far (bounded).
func (s *Stream) Stderr() string { return s.stderr.String() }

// OpenRun starts `qvm-run --pass-io [opts] VM COMMAND` as a stream; ctx
// governs the child's lifetime, as for every Open function. With
// opts.NoAutostart the power state is checked first (ErrNotRunning,
// ErrPaused). opts.PassIO and opts.Stdin are ignored: the stream is the I/O.
func (c *Client) OpenRun(ctx context.Context, vm, command string, opts RunOptions) (*Stream, error) {
	if command == "" || command[0] == '-' || containsNUL(command) {
		return nil, invalid("command", command)
	}
	opts.PassIO = true
	argv, err := opts.argv(vm)
	if err != nil {
		return nil, err
	}
	if opts.NoAutostart {
		if err := c.requireRunning(ctx, vm); err != nil {
			return nil, err
		}
	}
	return c.start(ctx, append(argv, command), classifyAdmin)
}

// OpenQrexec starts `qrexec-client -d VM 'USER:QUBESRPC SERVICE+ARG dom0'` as
// a stream (dom0 only; policy is not consulted and vm is not started). A
// halted vm makes Wait return ErrQrexec, and ErrNotRunning if qvm-check then
// confirms the vm is not running.
func (c *Client) OpenQrexec(ctx context.Context, vm, user, service, arg string) (*Stream, error) {
	argv, err := qrexecDom0Argv(vm, user, service, arg)
	if err != nil {
		return nil, err
	}
	return c.start(ctx, argv, func(err error) error {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return c.classifyDom0(cctx, vm, err)
	})
}

// OpenQrexecVM starts `qrexec-client-vm TARGET SERVICE+ARG` as a stream (in
// a VM). Wait maps exit 125/126/127 to ErrQrexec, ErrRefused, ErrNoService.
func (c *Client) OpenQrexecVM(ctx context.Context, target, service, arg string) (*Stream, error) {
	argv, err := qrexecVMArgv(target, service, arg)
	if err != nil {
		return nil, err
	}
	return c.start(ctx, argv, classifyQrexec)
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrHalted is returned for a domain whose supervisor is not running.
var ErrHalted = errors.New("domain is not running")

// ErrNoDomain is returned for a domain missing from the qubes state.
var ErrNoDomain = errors.New("no such domain")

// SpawnRequest describes a process to run in a domain.
type SpawnRequest struct {
	Argv []string
	// Env is added to the domain environment (DomainEnv), replacing keys.
	Env []string
	// Dir is the working directory inside the domain; "" = the user's home.
	Dir string
	// User is the user to run as; "" = the domain's default_user.
	User string
	// Stdin, Stdout, Stderr are passed to the process; nil = /dev/null.
	Stdin, Stdout, Stderr *os.File
	// Tag labels the process for Processes and SignalTag.
	Tag string
	// Autostart starts the domain first if it is halted.
	Autostart bool
}

func (r SpawnRequest) wire() request {
	return request{Op: opSpawn, Argv: r.Argv, Env: r.Env, Dir: r.Dir, User: r.User, Tag: r.Tag}
}

// Process is a process running in a domain, owned by its supervisor.
type Process struct {
	pid   int
	c     *net.UnixConn // remote: the spawn connection
	local *supProc      // started inside the supervisor itself

	once sync.Once
	code int
	err  error
}

// Pid is the host pid of the process.
func (p *Process) Pid() int { return p.pid }

// Wait waits for the process to exit and returns its exit status (128+N
// when killed by signal N).
func (p *Process) Wait() (int, error) {
	p.once.Do(func() {
		if p.local != nil {
			p.code, p.err = p.local.waitCtx(context.Background())
			return
		}
		defer p.c.Close()
		for {
			var r reply
			files, err := conn{p.c}.recv(&r)
			closeAll(files)
			if err != nil {
				p.code, p.err = -1, fmt.Errorf("wait for pid %d: supervisor gone: %w", p.pid, err)
				return
			}
			if r.Type == repExit {
				p.code = r.Code
				return
			}
		}
	})
	return p.code, p.err
}

// Signal sends sig to the process's process group.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.local != nil {
		if err := unix.Kill(-p.pid, sig); err != nil {
			return unix.Kill(p.pid, sig)
		}
		return nil
	}
	return conn{p.c}.send(request{Op: opSignal, Sig: int(sig)})
}

// Release forgets the process without waiting; it keeps running in its
// domain (list it with Processes, stop it with SignalTag).
func (p *Process) Release() {
	if p.c != nil {
		p.c.Close()
	}
}

// Spawn runs a process in domain through the domain's supervisor.
func (m *Machine) Spawn(domain string, req SpawnRequest) (*Process, error) {
	if req.Autostart {
		if err := m.EnsureRunning(domain); err != nil {
			return nil, err
		}
	}
	c, err := m.dial(domain)
	if err != nil {
		return nil, err
	}
	files := []*os.File{req.Stdin, req.Stdout, req.Stderr}
	var devnull *os.File
	for i, f := range files {
		if f == nil {
			if devnull == nil {
				if devnull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
					c.Close()
					return nil, err
				}
				defer devnull.Close()
			}
			files[i] = devnull
		}
	}
	w := req.wire()
	w.NFDs = 3
	if err := (conn{c}).send(w, files...); err != nil {
		c.Close()
		return nil, fmt.Errorf("spawn in %s: %w", domain, err)
	}
	var r reply
	fs, err := conn{c}.recv(&r)
	closeAll(fs)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("spawn in %s: %w", domain, err)
	}
	if r.Type != repStarted {
		c.Close()
		return nil, fmt.Errorf("spawn %q in %s: %s", req.Argv, domain, r.Msg)
	}
	return &Process{pid: r.Pid, c: c}, nil
}

// Processes lists the processes the domain's supervisor started that still run.
func (m *Machine) Processes(domain string) ([]ProcessInfo, error) {
	r, err := m.ask(domain, request{Op: opList})
	return r.Procs, err
}

// SignalTag sends sig to every process of domain tagged tag and reports how
// many there were.
func (m *Machine) SignalTag(domain, tag string, sig syscall.Signal) (int, error) {
	r, err := m.ask(domain, request{Op: opSignal, Tag: tag, Sig: int(sig)})
	return r.Code, err
}

// ask sends a request that has a single reply.
func (m *Machine) ask(domain string, req request) (reply, error) {
	c, err := m.dial(domain)
	if err != nil {
		return reply{}, err
	}
	defer c.Close()
	if err := (conn{c}).send(req); err != nil {
		return reply{}, err
	}
	var r reply
	fs, err := conn{c}.recv(&r)
	closeAll(fs)
	if err != nil {
		return r, fmt.Errorf("%s %s: %w", req.Op, domain, err)
	}
	if r.Type == repError {
		return r, fmt.Errorf("%s %s: %s", req.Op, domain, r.Msg)
	}
	return r, nil
}

// dial connects to domain's supervisor; a missing or dead one is ErrHalted.
func (m *Machine) dial(domain string) (*net.UnixConn, error) {
	c, err := dialUnix("unixpacket", m.sockPath(domain))
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
			return nil, fmt.Errorf("%s: %w", domain, ErrHalted)
		}
		return nil, fmt.Errorf("connect to %s: %w", domain, err)
	}
	return c, nil
}

// ioOpts says how a remote call's streams are connected.
type ioOpts struct {
	// passIO connects the caller's stdio; otherwise the remote gets /dev/null.
	passIO bool
	// prefix is sent before stdin (qrexec-client -p).
	prefix []byte
	// filterOut, filterErr replace problematic bytes (qrexec-client -t, -T).
	filterOut, filterErr bool
	// justExec returns once the process started (qrexec-client -e).
	justExec bool
	// local, when set, is started once the call is accepted, with the remote
	// stdout as its stdin and its stdout as the remote stdin (qrexec-client
	// -l, qrexec-client-vm LOCAL_PROG). Its stderr is the caller's.
	local *exec.Cmd
	// localStatus makes the local program's exit status the result.
	localStatus bool
}

// call sends req to domain's supervisor and runs the caller's side of the
// connection the way qrexec-client does: fresh pipes whose remote ends go to
// the process, copied to and from stdio here, so the remote process sees EOF
// or EPIPE when the caller dies. It returns after the remote exit status
// arrived and its stdout and stderr are drained.
func (m *Machine) call(ctx context.Context, domain string, req request, stdio Stdio, o ioOpts) (int, error) {
	// Like qrexec-client, which ignores SIGPIPE: a closed stdout ends the
	// copy, not this process. Notify rather than Ignore, so local programs
	// we start get the default disposition back at exec.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	c, err := m.dial(domain)
	if err != nil {
		return ExitProblem, err
	}
	defer c.Close()
	if o.local != nil {
		o.passIO = true
	}
	var inW, outR, errR *os.File
	var remote []*os.File
	if o.passIO && !o.justExec {
		var inR, outW, errW *os.File
		if inR, inW, err = os.Pipe(); err != nil {
			return ExitProblem, err
		}
		if outR, outW, err = os.Pipe(); err != nil {
			return ExitProblem, err
		}
		if errR, errW, err = os.Pipe(); err != nil {
			return ExitProblem, err
		}
		remote = []*os.File{inR, outW, errW}
		req.NFDs = 3
	}
	err = conn{c}.send(req, remote...)
	closeAll(remote)
	defer closeAll([]*os.File{inW, outR, errR})
	if err != nil {
		return ExitProblem, fmt.Errorf("request to %s: %w", domain, err)
	}

	replies := make(chan reply, 4)
	streams := make(chan *os.File, 1)
	go func() {
		defer close(replies)
		for {
			var r reply
			fs, err := conn{c}.recv(&r)
			if err != nil {
				return
			}
			if r.Type == repStream && len(fs) == 1 {
				streams <- fs[0]
			} else {
				closeAll(fs)
			}
			replies <- r
			if r.Type == repExit || r.Type == repError || r.Type == repStream {
				return
			}
		}
	}()

	var drained sync.WaitGroup
	// copyIO connects the remote stdin (in) and stdout (out) to the local
	// program or to stdio. For a socket service both are the socket.
	copyIO := func(in, out *os.File) {
		if o.local != nil {
			// The local program talks to the remote end directly.
			o.local.Stdin, o.local.Stdout = out, in
			if err := o.local.Start(); err != nil {
				fmt.Fprintf(stdio.Err, "local program: %v\n", err)
				o.local = nil
			}
			in.Close()
			if in != out {
				out.Close()
			}
			return
		}
		var w io.Writer = in
		var r io.Reader = out
		eof := func() { in.Close() }
		if in == out {
			// Copy through the poller, and half-close at stdin EOF so the
			// service still sends its answer.
			fc, err := net.FileConn(in)
			in.Close()
			if err != nil {
				fmt.Fprintf(stdio.Err, "service socket: %v\n", err)
				return
			}
			w, r = fc, fc
			eof = func() {
				if cw, ok := fc.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				}
			}
			defer func() { go func() { drained.Wait(); fc.Close() }() }()
		}
		go func() {
			defer eof()
			if len(o.prefix) > 0 {
				if _, err := w.Write(o.prefix); err != nil {
					return
				}
			}
			if stdio.In != nil {
				copyChunks(w, stdio.In)
			}
		}()
		drained.Add(1)
		go func() { defer drained.Done(); copyOut(stdio.Out, r, o.filterOut) }()
	}
	code := ExitProblem
loop:
	for {
		select {
		case <-ctx.Done():
			return 128 + int(syscall.SIGTERM), ctx.Err()
		case r, ok := <-replies:
			if !ok {
				err = fmt.Errorf("%s: connection to the domain lost", domain)
				break loop
			}
			switch r.Type {
			case repStarted:
				if o.justExec {
					return 0, nil
				}
				if inW != nil {
					copyIO(inW, outR)
					inW, outR = nil, nil
					drained.Add(1)
					go func(e *os.File) { defer drained.Done(); copyOut(stdio.Err, e, o.filterErr) }(errR)
					errR = nil
				}
			case repStream:
				// A socket or TCP service: the caller talks to the socket.
				s := <-streams
				code = 0
				if o.passIO {
					copyIO(s, s)
				} else {
					s.Close()
				}
				break loop
			case repExit:
				code = r.Code
				break loop
			case repError:
				code = r.Code
				if r.Msg != "" {
					err = errors.New(r.Msg)
				}
				break loop
			}
		}
	}
	drained.Wait()
	if o.local != nil {
		lerr := o.local.Wait()
		if o.localStatus {
			code = 0
			var ee *exec.ExitError
			if errors.As(lerr, &ee) {
				code = exitCode(unix.WaitStatus(ee.Sys().(syscall.WaitStatus)))
			}
		}
	}
	return code, err
}

// copyOut copies a remote output stream to w until EOF. When w fails (a
// closed stdout) it stops reading, so the remote writer gets EPIPE once the
// caller closes its end, as with qrexec-client.
func copyOut(w *os.File, r io.Reader, filter bool) {
	if c, ok := r.(io.Closer); ok {
		defer c.Close()
	}
	if w == nil {
		io.Copy(io.Discard, r)
		return
	}
	if !filter {
		copyChunks(w, r)
		return
	}
	buf := make([]byte, qrexecChunk)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			replaceChars(buf[:n])
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// qrexecChunk is qrexec's largest data message (MAX_DATA_CHUNK_V3): a real
// client moves at most this much per read and vchan write.
const qrexecChunk = 64 << 10

// copyChunks copies r to w in qrexec-sized chunks through a user buffer, as
// the real client does (no splice, no 32 KiB io.Copy default).
func copyChunks(w io.Writer, r io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{r}, make([]byte, qrexecChunk))
}

// replaceChars is libqrexec's do_replace_chars: everything but printable
// ASCII, tab, newline, return, backspace and bell becomes '_'.
func replaceChars(b []byte) {
	for i, c := range b {
		if (c < 0x20 || c > 0x7e) && c != '\t' && c != '\n' && c != '\r' && c != '\b' && c != '\a' {
			b[i] = '_'
		}
	}
}

// validServiceChars is qrexec's charset for service names and arguments.
func validRPCName(s string, allowPlus bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || (allowPlus && c == '+')
		if !ok {
			return false
		}
	}
	return true
}

// splitDescriptor splits "SERVICE+ARG" (the argument may be absent).
func splitDescriptor(d string) (service, arg string) {
	service, arg, _ = strings.Cut(d, "+")
	return service, arg
}

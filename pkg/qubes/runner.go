package qubes

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// MaxStderr bounds the standard error kept from any command.
const MaxStderr = 64 << 10

// Runner runs the Qubes tools. ExecRunner is the real implementation; tests may
// substitute their own.
type Runner interface {
	// Run runs argv to completion, feeding it stdin (nil means no input),
	// and returns its standard output. An unsuccessful run is a
	// *CommandError.
	Run(ctx context.Context, argv []string, stdin io.Reader) ([]byte, error)
	// Start starts argv as a long-lived child. It takes ownership of stdin
	// and stdout (pipe ends for the child) and closes its copies once the
	// child has them. Standard error is written to stderr. Cancelling ctx
	// kills the child.
	Start(ctx context.Context, argv []string, stdin, stdout *os.File, stderr io.Writer) (Process, error)
}

// Process is a started child.
type Process interface {
	// Wait waits for the child to exit and its stderr to be copied; a
	// non-zero exit is a *CommandError.
	Wait() error
	// Kill kills the child.
	Kill() error
}

// ExecRunner runs commands with os/exec in the C locale, so that messages
// matched by this package are not translated.
type ExecRunner struct {
	// WaitDelay bounds how long Wait waits for output pipes after the child
	// exits or is killed (grandchildren may hold them open); 0 means 5s.
	WaitDelay time.Duration
}

func (r ExecRunner) command(ctx context.Context, argv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	env := os.Environ()
	env = slices.DeleteFunc(env, func(kv string) bool {
		return strings.HasPrefix(kv, "LC_ALL=") || strings.HasPrefix(kv, "LANGUAGE=")
	})
	cmd.Env = append(env, "LC_ALL=C")
	cmd.WaitDelay = r.WaitDelay
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 5 * time.Second
	}
	return cmd
}

// Run implements Runner.
func (r ExecRunner) Run(ctx context.Context, argv []string, stdin io.Reader) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("run: empty argv")
	}
	cmd := r.command(ctx, argv)
	var stdout bytes.Buffer
	stderr := &boundedBuffer{max: MaxStderr}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, stderr
	err := cmd.Run()
	if err != nil {
		return stdout.Bytes(), commandError(ctx, argv, err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// Start implements Runner.
func (r ExecRunner) Start(ctx context.Context, argv []string, stdin, stdout *os.File, stderr io.Writer) (Process, error) {
	defer stdin.Close()
	defer stdout.Close()
	if len(argv) == 0 {
		return nil, errors.New("start: empty argv")
	}
	cmd := r.command(ctx, argv)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if err := cmd.Start(); err != nil {
		return nil, commandError(ctx, argv, err, "")
	}
	return &execProcess{ctx: ctx, cmd: cmd, argv: argv, stderr: stderr}, nil
}

type execProcess struct {
	ctx    context.Context
	cmd    *exec.Cmd
	argv   []string
	stderr io.Writer
}

func (p *execProcess) Wait() error {
	if err := p.cmd.Wait(); err != nil {
		s := ""
		if b, ok := p.stderr.(interface{ String() string }); ok {
			s = b.String()
		}
		return commandError(p.ctx, p.argv, err, s)
	}
	return nil
}

func (p *execProcess) Kill() error { return p.cmd.Process.Kill() }

func commandError(ctx context.Context, argv []string, err error, stderr string) *CommandError {
	ce := &CommandError{Argv: argv, ExitCode: -1, Stderr: stderr, Err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ce.ExitCode = ee.ExitCode()
	}
	if ce.ExitCode == -1 && ctx.Err() != nil {
		ce.Err = ctx.Err()
	}
	return ce
}

// boundedBuffer keeps the first max bytes written and discards the rest, so a
// chatty child cannot exhaust memory. It is safe for concurrent use.
type boundedBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

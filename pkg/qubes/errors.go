package qubes

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. They are wrapped together with the *CommandError that
// revealed them, so both errors.Is(err, ErrX) and errors.As(err, &cmdErr) work.
var (
	// ErrNoSuchVM: the named qube does not exist (qvm-* exit 2 "no such
	// domain", qubes.md §3).
	ErrNoSuchVM = errors.New("no such vm")
	// ErrNotRunning: the qube is not running, so a call that must not start
	// it was not made (qvm-run --no-autostart, qrexec-client -d; §1.6, §3.1).
	ErrNotRunning = errors.New("vm not running")
	// ErrPaused: the qube is paused. It wraps ErrNotRunning because for
	// --no-autostart purposes a paused qube is as unusable as a halted one,
	// although qvm-check --running reports it as running (§3.2).
	ErrPaused = fmt.Errorf("%w: paused", ErrNotRunning)
	// ErrQrexec: qrexec itself failed (exit 125: connection, timeout, target
	// not running; §1.7).
	ErrQrexec = errors.New("qrexec failure")
	// ErrRefused: the qrexec call was refused by policy (exit 126).
	ErrRefused = errors.New("qrexec call refused")
	// ErrNoService: the service does not exist in the target (exit 127).
	ErrNoService = errors.New("qrexec service not found")
	// ErrUnset: the feature or service flag asked for is not set.
	ErrUnset = errors.New("not set")
	// ErrInvalid: an argument failed validation; no command was run.
	ErrInvalid = errors.New("invalid argument")
)

// Exit codes of qrexec-client and qrexec-client-vm (libqrexec/qrexec.h, §1.7).
const (
	ExitQrexec    = 125
	ExitRefused   = 126
	ExitNoService = 127
)

// CommandError is a command that could not be run or exited unsuccessfully.
type CommandError struct {
	// Argv is the command line that was run.
	Argv []string
	// ExitCode is the exit status, or -1 if the command did not exit
	// normally (not started, killed by a signal, cancelled).
	ExitCode int
	// Stderr is the (bounded) standard error of the command.
	Stderr string
	// Err is the underlying error: *exec.ExitError, a start error, or the
	// context's error when the deadline or cancellation stopped it.
	Err error
}

func (e *CommandError) Error() string {
	var b strings.Builder
	b.WriteString(strings.Join(e.Argv, " "))
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		fmt.Fprintf(&b, "exit status %d", e.ExitCode)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		if i := strings.LastIndexByte(s, '\n'); i >= 0 {
			s = s[i+1:] // the last line is the one argparse and qrexec use
		}
		b.WriteString(": ")
		b.WriteString(s)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *CommandError) Unwrap() error { return e.Err }

// wrap adds a sentinel to err, keeping err reachable for errors.As.
func wrap(sentinel error, err error) error {
	return fmt.Errorf("%w: %w", sentinel, err)
}

// noSuchDomain reports whether err is qubesadmin's unknown-VM failure:
// argparse "error: no such domain" (exit 2) or qvm-check's exit 1 with the
// same message.
func noSuchDomain(ce *CommandError) bool {
	s := strings.ToLower(ce.Stderr)
	return (ce.ExitCode == 2 || ce.ExitCode == 1) &&
		(strings.Contains(s, "no such domain") || strings.Contains(s, "does not exist"))
}

// classifyAdmin maps a qvm-* tool failure.
func classifyAdmin(err error) error {
	var ce *CommandError
	if errors.As(err, &ce) && noSuchDomain(ce) {
		return wrap(ErrNoSuchVM, err)
	}
	return err
}

// classifyQrexec maps a qrexec-client(-vm) failure by exit code (§1.7).
func classifyQrexec(err error) error {
	var ce *CommandError
	if !errors.As(err, &ce) {
		return err
	}
	switch ce.ExitCode {
	case ExitQrexec:
		return wrap(ErrQrexec, err)
	case ExitRefused:
		return wrap(ErrRefused, err)
	case ExitNoService:
		return wrap(ErrNoService, err)
	}
	return err
}

func exitCode(err error) int {
	var ce *CommandError
	if errors.As(err, &ce) {
		return ce.ExitCode
	}
	return -1
}

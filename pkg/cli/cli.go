// Package cli is where errors become user messages and exit codes, for every
// qubes-claw command: commands return wrapped errors, and Run decides what the
// user reads and which status the process exits with.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/qubes-claw/qubes-claw/pkg/version"
)

// Exit statuses shared by every command; programs document their own on top.
const (
	ExitOK       = 0
	ExitFailure  = 1
	ExitUsage    = 2
	ExitCanceled = 130
)

// Error is an error with a user-facing message and an exit status. Msg may be
// empty when the command already told the user everything (e.g. it passed a
// remote command's exit status through).
type Error struct {
	Code int
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	switch {
	case e.Msg != "" && e.Err != nil:
		return e.Msg + ": " + e.Err.Error()
	case e.Msg != "":
		return e.Msg
	case e.Err != nil:
		return e.Err.Error()
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

func (e *Error) Unwrap() error { return e.Err }

// Exit returns an error that makes Run exit with code, printing msg.
func Exit(code int, format string, a ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, a...)}
}

// Status returns an error that makes Run exit with code silently.
func Status(code int) error { return &Error{Code: code} }

// UsageError marks a bad invocation (exit 2, with a hint to --help).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError.
func Usagef(format string, a ...any) error { return &UsageError{Err: fmt.Errorf(format, a...)} }

// Stdio is the streams a command reads and writes; tests swap them.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// OSStdio returns the process's streams.
func OSStdio() Stdio { return Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr} }

// Run executes root with args under a context cancelled by SIGINT/SIGTERM and
// returns the exit status. It is the one place that prints errors.
func Run(root *cobra.Command, args []string, stdio Stdio) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root.SilenceErrors = true
	root.SilenceUsage = true
	if root.Version == "" {
		root.Version = version.String()
	}
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Err: err} })
	err := root.ExecuteContext(ctx)
	return ExitCode(root.Name(), err, stdio.Err)
}

// ExitCode maps err to an exit status, printing its message to w.
func ExitCode(prog string, err error, w io.Writer) int {
	var ce *Error
	var ue *UsageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ce):
		if ce.Msg != "" || ce.Err != nil {
			fmt.Fprintf(w, "%s: %s\n", prog, ce.Error())
		}
		return ce.Code
	case errors.As(err, &ue):
		fmt.Fprintf(w, "%s: %s\nRun '%s --help' for usage.\n", prog, ue.Err, prog)
		return ExitUsage
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(w, "%s: interrupted\n", prog)
		return ExitCanceled
	}
	fmt.Fprintf(w, "%s: %s\n", prog, err)
	return ExitFailure
}

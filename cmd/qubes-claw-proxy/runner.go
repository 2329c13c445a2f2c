package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// runner runs a system tool (loginctl, systemctl, journalctl) and returns
// its stdout; tests replace it with a recording fake.
type runner func(ctx context.Context, argv ...string) (string, error)

// toolError is a failed tool run: argv, the cause and its stderr.
type toolError struct {
	Argv   []string
	Err    error
	Stderr string
}

func (e *toolError) Error() string {
	msg := fmt.Sprintf("%s: %v", strings.Join(e.Argv, " "), e.Err)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

func (e *toolError) Unwrap() error { return e.Err }

// execRunner runs argv with LC_ALL=C, so messages are parseable.
func execRunner(ctx context.Context, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), &toolError{Argv: argv, Err: err, Stderr: errb.String()}
	}
	return out.String(), nil
}

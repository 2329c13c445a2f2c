package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
)

// openPTY returns both ends of a new pseudo-terminal (what an admin's
// terminal is), without a dependency: /dev/ptmx, unlock, open the slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pty slave: %v", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

func TestEnable(t *testing.T) {
	tests := []struct {
		name    string
		pty     bool
		answer  string
		enabled bool
		wantMsg string
	}{
		{name: "no terminal", pty: false, answer: "yes\n", wantMsg: "must be confirmed on a terminal"},
		{name: "yes", pty: true, answer: "yes\n", enabled: true, wantMsg: "enabled and started"},
		{name: "no", pty: true, answer: "no\n", wantMsg: "not confirmed"},
		{name: "YES", pty: true, answer: "YES\n", wantMsg: "not confirmed"},
		{name: "y", pty: true, answer: "y\n", wantMsg: "not confirmed"},
		{name: "yes with a space", pty: true, answer: "yes \n", wantMsg: "not confirmed"},
		{name: "yes please", pty: true, answer: "yes please\n", wantMsg: "not confirmed"},
		{name: "empty line", pty: true, answer: "\n", wantMsg: "not confirmed"},
		{name: "end of input", pty: true, answer: "\x04", wantMsg: "no answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls [][]string
			var out bytes.Buffer
			opts := &EnableOptions{
				g: &globals{}, Out: &out, IsTerminal: readerIsTerminal,
				Systemctl: func(_ context.Context, args ...string) error { calls = append(calls, args); return nil },
			}
			if tt.pty {
				master, slave := openPTY(t)
				if _, err := master.WriteString(tt.answer); err != nil {
					t.Fatal(err)
				}
				opts.In = slave
			} else {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				w.WriteString(tt.answer)
				w.Close()
				opts.In = r
			}
			err := runEnable(context.Background(), opts)
			var errb bytes.Buffer
			code := cli.ExitCode("qvm-remote-dom0", err, &errb)
			msg := out.String() + errb.String()
			if !strings.Contains(out.String(), "controls dom0") {
				t.Errorf("the risk was not printed: %q", out.String())
			}
			if !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("output %q lacks %q", msg, tt.wantMsg)
			}
			if tt.enabled {
				if code != 0 || len(calls) != 1 || strings.Join(calls[0], " ") != "enable --now "+unitName {
					t.Errorf("code %d, systemctl calls %q", code, calls)
				}
			} else if code != 1 || len(calls) != 0 {
				t.Errorf("refusal: code %d, systemctl calls %q", code, calls)
			}
		})
	}
}

package qubes

import (
	"context"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestStreamEcho(t *testing.T) {
	c, calls := fakeTools(t, []fakeRule{{Argv: "qrexec-client-vm claw-server qubes.ConnectTCP+32125", Echo: true, Stdout: "<eof>"}})
	s, err := c.OpenQrexecVM(context.Background(), "claw-server", "qubes.ConnectTCP", "32125")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(s, "hello"); err != nil {
		t.Fatal(err)
	}
	// Half-close: the peer sees EOF on stdin and can still answer.
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Errorf("second CloseWrite: %v", err)
	}
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "hello<eof>" {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := s.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if argv := calls()[0].Argv; !reflect.DeepEqual(argv, []string{"qrexec-client-vm", "claw-server", "qubes.ConnectTCP+32125"}) {
		t.Errorf("argv %q", argv)
	}
}

func TestStreamExitMapping(t *testing.T) {
	tests := []struct {
		name    string
		rules   []fakeRule
		open    func(c *Client) (*Stream, error)
		wantErr error
		notErr  error
		stderr  string
	}{
		{name: "vm refused",
			rules: []fakeRule{{Argv: "qrexec-client-vm *", Exit: 126, Stderr: "Request refused\n"}},
			open: func(c *Client) (*Stream, error) {
				return c.OpenQrexecVM(context.Background(), "", "qubes.ConnectTCP", "1")
			},
			wantErr: ErrRefused, stderr: "Request refused"},
		{name: "vm no service",
			rules:   []fakeRule{{Argv: "qrexec-client-vm *", Exit: 127}},
			open:    func(c *Client) (*Stream, error) { return c.OpenQrexecVM(context.Background(), "x", "my.Svc", "") },
			wantErr: ErrNoService},
		{name: "dom0 halted",
			rules: []fakeRule{{Argv: "qrexec-client *", Exit: 125}, {Argv: "qvm-check --running work", Exit: 1}},
			open: func(c *Client) (*Stream, error) {
				return c.OpenQrexec(context.Background(), "work", "", "qubes.ConnectTCP", "1")
			},
			wantErr: ErrNotRunning},
		{name: "dom0 qrexec failure",
			rules: []fakeRule{{Argv: "qrexec-client *", Exit: 125}, {Argv: "qvm-check --running work"}},
			open: func(c *Client) (*Stream, error) {
				return c.OpenQrexec(context.Background(), "work", "", "qubes.ConnectTCP", "1")
			},
			wantErr: ErrQrexec, notErr: ErrNotRunning},
		{name: "qvm-run unknown vm",
			rules:   []fakeRule{{Argv: "qvm-run *", Exit: 2, Stderr: noSuchDomainStderr}},
			open:    func(c *Client) (*Stream, error) { return c.OpenRun(context.Background(), "ghost", "cat", RunOptions{}) },
			wantErr: ErrNoSuchVM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fakeTools(t, tt.rules)
			s, err := tt.open(c)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			werr := s.Wait()
			if !errors.Is(werr, tt.wantErr) {
				t.Fatalf("Wait = %v, want %v", werr, tt.wantErr)
			}
			if tt.notErr != nil && errors.Is(werr, tt.notErr) {
				t.Errorf("Wait = %v must not match %v", werr, tt.notErr)
			}
			var ce *CommandError
			if !errors.As(werr, &ce) {
				t.Errorf("Wait = %v: not a *CommandError", werr)
			}
			if !strings.Contains(s.Stderr(), tt.stderr) {
				t.Errorf("stderr %q lacks %q", s.Stderr(), tt.stderr)
			}
			if cerr := s.Close(); !errors.Is(cerr, tt.wantErr) {
				t.Errorf("Close = %v, want the exit status", cerr)
			}
		})
	}
}

func TestStreamCloseKillsHungChild(t *testing.T) {
	c, calls := fakeTools(t, []fakeRule{{Argv: "qvm-run *", Hang: true}})
	c.CloseTimeout = 200 * time.Millisecond
	s, err := c.OpenRun(context.Background(), "work", "sleep inf", RunOptions{User: "root", NoGUI: true})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.Close()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Close took %v", d)
	}
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != -1 {
		t.Errorf("Close = %v, want a killed *CommandError", err)
	}
	select {
	case <-s.Done():
	default:
		t.Error("child still running after Close")
	}
	want := []string{"qvm-run", "--pass-io", "--no-gui", "-u", "root", "work", "sleep inf"}
	if argv := calls()[0].Argv; !reflect.DeepEqual(argv, want) {
		t.Errorf("argv %q, want %q", argv, want)
	}
}

func TestStreamContextCancelKills(t *testing.T) {
	c, _ := fakeTools(t, []fakeRule{{Argv: "qrexec-client-vm *", Hang: true}})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.OpenQrexecVM(ctx, "@dispvm", "qubes.OpenInVM", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cancel()
	if err := s.Wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait after cancel = %v", err)
	}
}

func TestStreamNoAutostart(t *testing.T) {
	c, calls := fakeTools(t, []fakeRule{{Argv: "qvm-check --running work", Exit: 1}})
	_, err := c.OpenRun(context.Background(), "work", "cat", RunOptions{NoAutostart: true})
	if !errors.Is(err, ErrNotRunning) {
		t.Fatalf("OpenRun = %v, want ErrNotRunning", err)
	}
	for _, call := range calls() {
		if call.Argv[0] == "qvm-run" {
			t.Errorf("qvm-run was started: %q", call.Argv)
		}
	}
}

func TestStreamStderrBounded(t *testing.T) {
	c, _ := fakeTools(t, []fakeRule{{Argv: "qrexec-client-vm *", StderrBytes: 3 * MaxStderr, Exit: 1}})
	s, err := c.OpenQrexecVM(context.Background(), "x", "a.B", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Wait(); err == nil {
		t.Fatal("Wait succeeded")
	}
	if n := len(s.Stderr()); n != MaxStderr {
		t.Errorf("stderr kept %d bytes, want %d", n, MaxStderr)
	}
}

func TestStreamValidation(t *testing.T) {
	c := &Client{Runner: failRunner{t}}
	if _, err := c.OpenQrexec(context.Background(), "work", "", "bad service", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("OpenQrexec = %v", err)
	}
	if _, err := c.OpenQrexecVM(context.Background(), "@tag:x", "a.B", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("OpenQrexecVM = %v", err)
	}
	if _, err := c.OpenRun(context.Background(), "work", "", RunOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("OpenRun = %v", err)
	}
}

// failRunner fails the test if anything is run.
type failRunner struct{ t *testing.T }

func (f failRunner) Run(context.Context, []string, io.Reader) ([]byte, error) {
	f.t.Error("Run called")
	return nil, errors.New("no")
}

func (f failRunner) Start(_ context.Context, argv []string, stdin, stdout *os.File, _ io.Writer) (Process, error) {
	f.t.Errorf("Start called: %q", argv)
	stdin.Close()
	stdout.Close()
	return nil, errors.New("no")
}

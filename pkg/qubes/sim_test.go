package qubes_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/qubes"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

// TestMain serves both test files: the binary re-executed as a fake Qubes
// tool (fake_test.go), as a qrexec client inside a simulated VM, or as the
// test runner.
func TestMain(m *testing.M) {
	if os.Getenv("QUBES_FAKE_TOOLS") == "1" {
		os.Exit(qubes.FakeTool())
	}
	if os.Getenv("QUBES_TEST_CALLVM") != "" {
		os.Exit(CallVMHelper())
	}
	simtest.Main(m)
}

// These tests hold the typed API against the simulated Qubes tools, which
// reproduce the real ones' output and exit codes: the API must tell "not
// running" from "failed", "refused" and "no such service" the way a daemon
// in dom0 needs to.

// dom0 returns a client whose commands run as a dom0 daemon's would: with
// the machine's dom0 environment.
func dom0(t *testing.T, m *simtest.Machine) *qubes.Client {
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return &qubes.Client{Timeout: 30 * time.Second}
}

func TestSimAdmin(t *testing.T) {
	m := simtest.New(t)
	c := dom0(t, m)
	ctx := context.Background()
	m.Template("tpl")
	if err := c.Create(ctx, "work", qubes.CreateOptions{Template: "tpl", Label: "red", Properties: map[string]string{"memory": "800"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, "alone", qubes.CreateOptions{Class: "StandaloneVM", Template: "tpl", Label: "blue"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, "x", qubes.CreateOptions{Template: "tpl", Label: "no-such-label"}); err == nil {
		t.Error("bad label accepted")
	}

	t.Run("exists", func(t *testing.T) {
		for _, tt := range []struct {
			vm   string
			want bool
		}{{"dom0", true}, {"work", true}, {"nope", false}} {
			got, err := c.Exists(ctx, tt.vm)
			if err != nil || got != tt.want {
				t.Errorf("Exists(%s) = %v, %v; want %v", tt.vm, got, err, tt.want)
			}
		}
	})
	t.Run("prefs", func(t *testing.T) {
		if v, err := c.GetPref(ctx, "work", "memory"); err != nil || v != "800" {
			t.Errorf("memory = %q, %v", v, err)
		}
		if err := c.SetPref(ctx, "work", "autostart", "true"); err != nil {
			t.Fatal(err)
		}
		if v, _ := c.GetPref(ctx, "work", "autostart"); v != "True" {
			t.Errorf("autostart = %q", v)
		}
		if err := c.ResetPref(ctx, "work", "memory"); err != nil {
			t.Fatal(err)
		}
		if v, _ := c.GetPref(ctx, "work", "memory"); v == "800" {
			t.Error("reset kept the value")
		}
		if _, err := c.GetPref(ctx, "nope", "memory"); !errors.Is(err, qubes.ErrNoSuchVM) {
			t.Errorf("unknown VM: %v, want ErrNoSuchVM", err)
		}
		if err := c.SetPref(ctx, "work", "memory", "lots"); err == nil {
			t.Error("non-integer memory accepted")
		}
	})
	t.Run("tags features services", func(t *testing.T) {
		if err := c.AddTags(ctx, "work", "a", "b"); err != nil {
			t.Fatal(err)
		}
		if ok, err := c.HasTag(ctx, "work", "a"); !ok || err != nil {
			t.Errorf("HasTag a = %v, %v", ok, err)
		}
		if err := c.DelTag(ctx, "work", "a"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.HasTag(ctx, "work", "a"); ok {
			t.Error("tag still there")
		}
		if err := c.SetFeature(ctx, "work", "f", "v"); err != nil {
			t.Fatal(err)
		}
		if v, err := c.GetFeature(ctx, "work", "f"); v != "v" || err != nil {
			t.Errorf("feature = %q, %v", v, err)
		}
		if err := c.UnsetFeature(ctx, "work", "f"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetFeature(ctx, "work", "f"); !errors.Is(err, qubes.ErrUnset) {
			t.Errorf("unset feature: %v, want ErrUnset", err)
		}
		if err := c.EnableService(ctx, "work", "svc"); err != nil {
			t.Fatal(err)
		}
		if on, err := c.GetService(ctx, "work", "svc"); !on || err != nil {
			t.Errorf("service = %v, %v", on, err)
		}
		if v, _ := c.GetFeature(ctx, "work", "service.svc"); v != "1" {
			t.Errorf("qvm-service is sugar for service.* features; got %q", v)
		}
	})
}

func TestSimRunAndQrexec(t *testing.T) {
	m := simtest.New(t)
	c := dom0(t, m)
	ctx := context.Background()
	m.StandaloneVM("vm1")
	m.WriteFile("vm1", "/etc/qubes-rpc/test.Echo", []byte("#!/bin/sh\necho \"arg=$QREXEC_SERVICE_ARGUMENT from=$QREXEC_REMOTE_DOMAIN\"\ncat\n"), 0o755)

	// Halted VM: --no-autostart must not start it, and must say why.
	if _, err := c.Run(ctx, "vm1", "true", qubes.RunOptions{PassIO: true, NoAutostart: true}); !errors.Is(err, qubes.ErrNotRunning) {
		t.Fatalf("Run --no-autostart on halted VM: %v, want ErrNotRunning", err)
	}
	if m.Running("vm1") {
		t.Fatal("--no-autostart started the VM")
	}
	// qrexec-client -d never starts a VM either (exit 125).
	if _, err := c.Call(ctx, "vm1", "DEFAULT", "test.Echo", "1", nil); !errors.Is(err, qubes.ErrNotRunning) || !errors.Is(err, qubes.ErrQrexec) {
		t.Fatalf("Call to halted VM: %v, want ErrQrexec+ErrNotRunning", err)
	}
	// Without --no-autostart qvm-run starts it.
	out, err := c.Run(ctx, "vm1", "echo hi; echo err >&2", qubes.RunOptions{PassIO: true})
	if err != nil || string(out) != "hi\n" {
		t.Fatalf("Run = %q, %v", out, err)
	}
	if !m.Running("vm1") {
		t.Fatal("VM not started")
	}
	// A failing command is a CommandError with its exit code, not "not running".
	_, err = c.Run(ctx, "vm1", "exit 7", qubes.RunOptions{PassIO: true, NoAutostart: true})
	var ce *qubes.CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 7 || errors.Is(err, qubes.ErrNotRunning) {
		t.Fatalf("exit 7: %v", err)
	}
	// Arguments pass unchanged, however odd (no shell strings).
	odd := "a b; $(touch /tmp/nope) 'q'"
	out, err = c.Exec(ctx, "vm1", []string{"printf", "%s", odd}, qubes.RunOptions{PassIO: true})
	if err != nil || string(out) != odd {
		t.Fatalf("Exec = %q, %v", out, err)
	}

	tests := []struct {
		name    string
		service string
		arg     string
		stdin   string
		want    string
		wantErr error
	}{
		{name: "ok", service: "test.Echo", arg: "42", stdin: "body", want: "arg=42 from=dom0\nbody"},
		{name: "no argument", service: "test.Echo", want: "arg= from=dom0\n"},
		{name: "missing service", service: "test.Missing", wantErr: qubes.ErrNoService},
	}
	for _, tt := range tests {
		t.Run("call/"+tt.name, func(t *testing.T) {
			out, err := c.Call(ctx, "vm1", "DEFAULT", tt.service, tt.arg, strings.NewReader(tt.stdin))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(out) != tt.want {
				t.Fatalf("Call = %q, %v; want %q", out, err, tt.want)
			}
		})
	}

	t.Run("stream half-close", func(t *testing.T) {
		s, err := c.OpenQrexec(ctx, "vm1", "DEFAULT", "test.Echo", "s")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		payload := bytes.Repeat([]byte{0, 1, 2, 255, '\n'}, 50000)
		go func() {
			_, _ = s.Write(payload)
			_ = s.CloseWrite()
		}()
		got, err := io.ReadAll(s)
		if err != nil {
			t.Fatal(err)
		}
		if want := append([]byte("arg=s from=dom0\n"), payload...); !bytes.Equal(got, want) {
			t.Fatalf("stream returned %d bytes, want %d (byte-exact)", len(got), len(want))
		}
		if err := s.Wait(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSimCallVM runs CallVM where it runs for real: inside a VM, against
// dom0's policy.
func TestSimCallVM(t *testing.T) {
	m := simtest.New(t)
	m.StandaloneVM("client")
	m.StandaloneVM("other")
	m.StandaloneVM("server")
	m.Tag("client", "c")
	m.Tag("server", "s")
	m.WriteFile("server", "/etc/qubes-rpc/test.Ping", []byte("#!/bin/sh\necho pong from $QREXEC_REMOTE_DOMAIN\n"), 0o755)
	m.Policy("50-test.policy", "test.Ping +1 @tag:c @tag:s allow\ntest.Ping * @anyvm @anyvm deny\n")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, from, arg string
		want            string
	}{
		{"allowed", "client", "1", "ok: pong from client\n"},
		{"denied by argument", "client", "2", "refused\n"},
		{"untagged source", "other", "1", "refused\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := m.VM(tt.from, "env", "QUBES_TEST_CALLVM="+tt.arg, self)
			if r.Stdout != tt.want {
				t.Fatalf("in %s: %s", tt.from, r)
			}
		})
	}
}

// CallVMHelper is what the test binary does when TestMain finds
// QUBES_TEST_CALLVM set: it runs inside a VM as a qrexec client.
func CallVMHelper() int {
	c := &qubes.Client{Timeout: 30 * time.Second}
	out, err := c.CallVM(context.Background(), "server", "test.Ping", os.Getenv("QUBES_TEST_CALLVM"), nil)
	switch {
	case errors.Is(err, qubes.ErrRefused):
		fmt.Println("refused")
	case err != nil:
		fmt.Println("error:", err)
	default:
		fmt.Printf("ok: %s", out)
	}
	return 0
}

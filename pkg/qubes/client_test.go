package qubes

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const noSuchDomainStderr = "usage: qvm-x [-h] VMNAME\nqvm-x: error: no such domain: 'ghost'\n"

func TestClient(t *testing.T) {
	type tc struct {
		name     string
		rules    []fakeRule
		call     func(ctx context.Context, c *Client) (any, error)
		want     any // compared with reflect.DeepEqual when non-nil
		wantErr  error
		notErr   []error // sentinels the error must not match
		wantExit int     // CommandError exit code when non-zero
		wantArgv [][]string
	}
	tests := []tc{
		{name: "run pass-io user no-gui stdin",
			rules: []fakeRule{{Argv: "qvm-run --pass-io --no-gui -u root work echo hi", Echo: true, Stdout: "!"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				out, err := c.Run(ctx, "work", "echo hi", RunOptions{PassIO: true, NoGUI: true, User: "root", Stdin: strings.NewReader("in")})
				return string(out), err
			},
			want:     "in!",
			wantArgv: [][]string{{"qvm-run", "--pass-io", "--no-gui", "-u", "root", "work", "echo hi"}}},
		{name: "run without pass-io discards output",
			rules: []fakeRule{{Argv: "qvm-run work true", Stdout: "noise"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				out, err := c.Run(ctx, "work", "true", RunOptions{})
				return out == nil, err
			},
			want: true, wantArgv: [][]string{{"qvm-run", "work", "true"}}},
		// §3.1: qvm-run --no-autostart on a halted qube exits 1 like a failing
		// command, so the power state is checked first.
		{name: "run no-autostart halted",
			rules: []fakeRule{{Argv: "qvm-check --running work", Exit: 1}},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Run(ctx, "work", "true", RunOptions{NoAutostart: true})
			},
			wantErr: ErrNotRunning, wantArgv: [][]string{{"qvm-check", "--running", "work"}}},
		// §3.2: qvm-check --running succeeds for paused qubes.
		{name: "run no-autostart paused",
			rules: []fakeRule{{Argv: "qvm-check --running work"}, {Argv: "qvm-check --paused work"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Run(ctx, "work", "true", RunOptions{NoAutostart: true})
			},
			wantErr: ErrPaused, wantArgv: [][]string{{"qvm-check", "--running", "work"}, {"qvm-check", "--paused", "work"}}},
		{name: "run no-autostart running",
			rules: []fakeRule{{Argv: "qvm-check --running work"}, {Argv: "qvm-check --paused work", Exit: 1},
				{Argv: "qvm-run --pass-io --no-autostart work cat f", Stdout: "data"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				out, err := c.Run(ctx, "work", "cat f", RunOptions{NoAutostart: true, PassIO: true})
				return string(out), err
			},
			want: "data",
			wantArgv: [][]string{{"qvm-check", "--running", "work"}, {"qvm-check", "--paused", "work"},
				{"qvm-run", "--pass-io", "--no-autostart", "work", "cat f"}}},
		{name: "run no-autostart unknown vm",
			rules: []fakeRule{{Argv: "qvm-check --running ghost", Exit: 1, Stderr: "no such domain: 'ghost'\n"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Run(ctx, "ghost", "true", RunOptions{NoAutostart: true})
			},
			wantErr: ErrNoSuchVM, notErr: []error{ErrNotRunning}, wantExit: 1},
		// §3: unknown VM is argparse exit 2 "no such domain".
		{name: "run unknown vm",
			rules: []fakeRule{{Argv: "qvm-run ghost true", Exit: 2, Stderr: noSuchDomainStderr}},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Run(ctx, "ghost", "true", RunOptions{})
			},
			wantErr: ErrNoSuchVM, wantExit: 2},
		{name: "run remote failure",
			rules: []fakeRule{{Argv: "qvm-run work false", Exit: 1}},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Run(ctx, "work", "false", RunOptions{})
			},
			notErr: []error{ErrNoSuchVM, ErrNotRunning}, wantExit: 1},
		{name: "exec without shell",
			rules: []fakeRule{{Argv: "qvm-run --pass-io --no-shell work ls -l a b", Stdout: "x"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				out, err := c.Exec(ctx, "work", []string{"ls", "-l", "a b"}, RunOptions{PassIO: true})
				return string(out), err
			},
			want: "x", wantArgv: [][]string{{"qvm-run", "--pass-io", "--no-shell", "work", "ls", "-l", "a b"}}},
		{name: "invalid vm name", call: func(ctx context.Context, c *Client) (any, error) {
			return c.Run(ctx, "-rf", "true", RunOptions{})
		}, wantErr: ErrInvalid},
		{name: "command looks like option", call: func(ctx context.Context, c *Client) (any, error) {
			return c.Run(ctx, "work", "--help", RunOptions{})
		}, wantErr: ErrInvalid},
		{name: "invalid user", call: func(ctx context.Context, c *Client) (any, error) {
			return c.Run(ctx, "work", "id", RunOptions{User: "a b"})
		}, wantErr: ErrInvalid},

		// §3.2 qvm-check.
		{name: "exists", rules: []fakeRule{{Argv: "qvm-check work"}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.Exists(ctx, "work") },
			want: true, wantArgv: [][]string{{"qvm-check", "work"}}},
		{name: "exists unknown", rules: []fakeRule{{Argv: "qvm-check ghost", Exit: 1, Stderr: "qvm-check: error: no such domain: 'ghost'\n"}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.Exists(ctx, "ghost") },
			want: false},
		{name: "running unknown", rules: []fakeRule{{Argv: "qvm-check --running ghost", Exit: 2, Stderr: noSuchDomainStderr}},
			call:    func(ctx context.Context, c *Client) (any, error) { return c.IsRunning(ctx, "ghost") },
			wantErr: ErrNoSuchVM},
		{name: "not running", rules: []fakeRule{{Argv: "qvm-check --running work", Exit: 1}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.IsRunning(ctx, "work") },
			want: false},
		{name: "paused", rules: []fakeRule{{Argv: "qvm-check --paused work"}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.IsPaused(ctx, "work") },
			want: true},

		// §3.3 qvm-create.
		{name: "create",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.Create(ctx, "new", CreateOptions{Class: "StandaloneVM", Template: "fedora", Label: "red",
					Properties: map[string]string{"netvm": "", "maxmem": "0"}})
			},
			wantArgv: [][]string{{"qvm-create", "--class", "StandaloneVM", "--template", "fedora", "--label", "red",
				"--property", "maxmem=0", "--property", "netvm=", "new"}}},
		{name: "create needs label", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Create(ctx, "new", CreateOptions{})
		}, wantErr: ErrInvalid},
		{name: "create bad class", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Create(ctx, "new", CreateOptions{Class: "AdminVM", Label: "red"})
		}, wantErr: ErrInvalid},

		// §3.4 qvm-prefs.
		{name: "get pref", rules: []fakeRule{{Argv: "qvm-prefs work netvm", Stdout: "sys-firewall\n"}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.GetPref(ctx, "work", "netvm") },
			want: "sys-firewall"},
		{name: "get pref unknown vm", rules: []fakeRule{{Argv: "qvm-prefs ghost netvm", Exit: 2, Stderr: noSuchDomainStderr}},
			call:    func(ctx context.Context, c *Client) (any, error) { return c.GetPref(ctx, "ghost", "netvm") },
			wantErr: ErrNoSuchVM, wantExit: 2},
		{name: "set pref", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.SetPref(ctx, "work", "memory", "400")
		}, wantArgv: [][]string{{"qvm-prefs", "work", "memory", "400"}}},
		{name: "set pref option-like value", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.SetPref(ctx, "work", "qrexec_timeout", "-1")
		}, wantArgv: [][]string{{"qvm-prefs", "work", "qrexec_timeout", "--", "-1"}}},
		{name: "reset pref", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.ResetPref(ctx, "work", "netvm")
		}, wantArgv: [][]string{{"qvm-prefs", "work", "netvm", "--default"}}},

		// §3.5 qvm-tags.
		{name: "tags", rules: []fakeRule{{Argv: "qvm-tags work list", Stdout: "audiovm-dom0\nclaw-client\n"}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.Tags(ctx, "work") },
			want: []string{"audiovm-dom0", "claw-client"}},
		{name: "has tag", rules: []fakeRule{{Argv: "qvm-tags work list claw-client", Stdout: "claw-client\n"}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.HasTag(ctx, "work", "claw-client") },
			want: true},
		{name: "has tag absent", rules: []fakeRule{{Argv: "qvm-tags work list x", Exit: 1}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.HasTag(ctx, "work", "x") },
			want: false},
		{name: "add tags", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.AddTags(ctx, "work", "a", "b_c")
		}, wantArgv: [][]string{{"qvm-tags", "work", "add", "a", "b_c"}}},
		{name: "del tag", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.DelTag(ctx, "work", "a")
		}, wantArgv: [][]string{{"qvm-tags", "work", "del", "a"}}},
		{name: "bad tag", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.AddTags(ctx, "work", "a.b")
		}, wantErr: ErrInvalid},

		// §3.6 qvm-features.
		{name: "get feature", rules: []fakeRule{{Argv: "qvm-features work gui", Stdout: "1\n"}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.GetFeature(ctx, "work", "gui") },
			want: "1"},
		{name: "get feature unset", rules: []fakeRule{{Argv: "qvm-features work nope", Exit: 1}},
			call:    func(ctx context.Context, c *Client) (any, error) { return c.GetFeature(ctx, "work", "nope") },
			wantErr: ErrUnset},
		{name: "set feature", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.SetFeature(ctx, "work", "supported-service.claw", "1")
		}, wantArgv: [][]string{{"qvm-features", "work", "supported-service.claw", "1"}}},
		{name: "unset feature", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.UnsetFeature(ctx, "work", "gui")
		}, wantArgv: [][]string{{"qvm-features", "work", "gui", "--unset"}}},
		{name: "list features", rules: []fakeRule{{Argv: "qvm-features work", Stdout: "gui                     1\nservice.x\nos   Linux\n"}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.Features(ctx, "work") },
			want: map[string]string{"gui": "1", "service.x": "", "os": "Linux"}},

		// §3.7 qvm-service.
		{name: "enable service", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.EnableService(ctx, "work", "claw-gateway")
		}, wantArgv: [][]string{{"qvm-service", "--enable", "work", "claw-gateway"}}},
		{name: "disable service", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.DisableService(ctx, "work", "claw-gateway")
		}, wantArgv: [][]string{{"qvm-service", "--disable", "work", "claw-gateway"}}},
		{name: "unset service", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.UnsetService(ctx, "work", "claw-gateway")
		}, wantArgv: [][]string{{"qvm-service", "--unset", "work", "claw-gateway"}}},
		{name: "get service on", rules: []fakeRule{{Argv: "qvm-service work s", Stdout: "on\n"}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.GetService(ctx, "work", "s") },
			want: true},
		{name: "get service off", rules: []fakeRule{{Argv: "qvm-service work s", Stdout: "off\n"}},
			call: func(ctx context.Context, c *Client) (any, error) { return c.GetService(ctx, "work", "s") },
			want: false},
		{name: "get service unset", rules: []fakeRule{{Argv: "qvm-service work s", Exit: 1}},
			call:    func(ctx context.Context, c *Client) (any, error) { return c.GetService(ctx, "work", "s") },
			wantErr: ErrUnset},
		{name: "bad service flag", call: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.EnableService(ctx, "work", "a/b")
		}, wantErr: ErrInvalid},

		{name: "start", call: func(ctx context.Context, c *Client) (any, error) { return nil, c.Start(ctx, "work") },
			wantArgv: [][]string{{"qvm-start", "--skip-if-running", "work"}}},
		{name: "shutdown wait", call: func(ctx context.Context, c *Client) (any, error) { return nil, c.Shutdown(ctx, "work", true) },
			wantArgv: [][]string{{"qvm-shutdown", "--wait", "work"}}},
		{name: "shutdown", call: func(ctx context.Context, c *Client) (any, error) { return nil, c.Shutdown(ctx, "work", false) },
			wantArgv: [][]string{{"qvm-shutdown", "work"}}},

		// §1.7 qrexec-client (dom0).
		{name: "dom0 call",
			rules: []fakeRule{{Argv: "qrexec-client -d work DEFAULT:QUBESRPC qubes.ConnectTCP+32125 dom0", Echo: true}},
			call: func(ctx context.Context, c *Client) (any, error) {
				out, err := c.Call(ctx, "work", "", "qubes.ConnectTCP", "32125", strings.NewReader("ping"))
				return string(out), err
			},
			want:     "ping",
			wantArgv: [][]string{{"qrexec-client", "-d", "work", "DEFAULT:QUBESRPC qubes.ConnectTCP+32125 dom0"}}},
		{name: "dom0 call user no argument", call: func(ctx context.Context, c *Client) (any, error) {
			return c.Call(ctx, "work", "root", "qubes.VMShell", "", nil)
		}, wantArgv: [][]string{{"qrexec-client", "-d", "work", "root:QUBESRPC qubes.VMShell+ dom0"}}},
		// §1.6: a halted VM makes qrexec-client -d exit 125.
		{name: "dom0 call vm halted",
			rules: []fakeRule{{Argv: "qrexec-client *", Exit: 125}, {Argv: "qvm-check --running work", Exit: 1}},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Call(ctx, "work", "", "qubes.ConnectTCP", "22", nil)
			},
			wantErr: ErrNotRunning, wantExit: 125},
		{name: "dom0 call qrexec failure while running",
			rules: []fakeRule{{Argv: "qrexec-client *", Exit: 125}, {Argv: "qvm-check --running work"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Call(ctx, "work", "", "qubes.ConnectTCP", "22", nil)
			},
			wantErr: ErrQrexec, notErr: []error{ErrNotRunning}, wantExit: 125},
		{name: "dom0 call refused", rules: []fakeRule{{Argv: "qrexec-client *", Exit: 126}},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Call(ctx, "work", "", "qubes.ConnectTCP", "22", nil)
			},
			wantErr: ErrRefused, wantExit: 126},
		{name: "dom0 call no service", rules: []fakeRule{{Argv: "qrexec-client *", Exit: 127}},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Call(ctx, "work", "", "my.Service", "", nil)
			},
			wantErr: ErrNoService, wantExit: 127},
		{name: "dom0 call bad service", call: func(ctx context.Context, c *Client) (any, error) {
			return c.Call(ctx, "work", "", "a+b", "", nil)
		}, wantErr: ErrInvalid},
		{name: "dom0 call bad argument", call: func(ctx context.Context, c *Client) (any, error) {
			return c.Call(ctx, "work", "", "qubes.ConnectTCP", "1 dom0", nil)
		}, wantErr: ErrInvalid},

		// §1.7 qrexec-client-vm.
		{name: "vm call default target",
			rules: []fakeRule{{Argv: "qrexec-client-vm @default qubes.ConnectTCP+32125", Stdout: "pong"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				out, err := c.CallVM(ctx, "", "qubes.ConnectTCP", "32125", nil)
				return string(out), err
			},
			want: "pong", wantArgv: [][]string{{"qrexec-client-vm", "@default", "qubes.ConnectTCP+32125"}}},
		{name: "vm call dispvm", call: func(ctx context.Context, c *Client) (any, error) {
			return c.CallVM(ctx, "@dispvm:default-dvm", "qubes.OpenInVM", "", nil)
		}, wantArgv: [][]string{{"qrexec-client-vm", "@dispvm:default-dvm", "qubes.OpenInVM+"}}},
		{name: "vm call refused", rules: []fakeRule{{Argv: "qrexec-client-vm *", Exit: 126, Stderr: "Request refused\n"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CallVM(ctx, "claw-server", "qubes.ConnectTCP", "22", nil)
			},
			wantErr: ErrRefused, wantExit: 126},
		{name: "vm call failure", rules: []fakeRule{{Argv: "qrexec-client-vm *", Exit: 125}},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CallVM(ctx, "claw-server", "qubes.ConnectTCP", "22", nil)
			},
			wantErr: ErrQrexec, notErr: []error{ErrNotRunning}, wantExit: 125},
		{name: "vm call keyword target", call: func(ctx context.Context, c *Client) (any, error) {
			return c.CallVM(ctx, "@anyvm", "qubes.ConnectTCP", "22", nil)
		}, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, calls := fakeTools(t, tt.rules)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, err := tt.call(ctx, c)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
			} else if err != nil && tt.wantExit == 0 {
				t.Fatalf("unexpected error: %v", err)
			}
			for _, ne := range tt.notErr {
				if errors.Is(err, ne) {
					t.Errorf("error %v must not match %v", err, ne)
				}
			}
			if tt.wantExit != 0 {
				var ce *CommandError
				if !errors.As(err, &ce) || ce.ExitCode != tt.wantExit || len(ce.Argv) == 0 {
					t.Fatalf("error %v: want *CommandError with exit %d", err, tt.wantExit)
				}
			}
			if tt.want != nil && err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			logged := calls()
			if tt.wantArgv != nil {
				var argvs [][]string
				for _, c := range logged {
					argvs = append(argvs, c.Argv)
				}
				if !reflect.DeepEqual(argvs, tt.wantArgv) {
					t.Errorf("argv:\n got %q\nwant %q", argvs, tt.wantArgv)
				}
			}
			if errors.Is(tt.wantErr, ErrInvalid) && len(logged) != 0 {
				t.Errorf("invalid input still ran %q", logged)
			}
			for _, c := range logged {
				if c.LCAll != "C" {
					t.Errorf("%v ran with LC_ALL=%q", c.Argv, c.LCAll)
				}
			}
		})
	}
}

func TestCommandErrorAndTimeout(t *testing.T) {
	c, _ := fakeTools(t, []fakeRule{{Argv: "qvm-start *", Hang: true}, {Argv: "qvm-prefs *", Exit: 1, Stderr: "Traceback\nqvm-prefs: error: bad value\n"}})
	c.Timeout = 300 * time.Millisecond
	start := time.Now()
	err := c.Start(context.Background(), "work")
	var ce *CommandError
	if !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) || ce.ExitCode != -1 {
		t.Fatalf("Start with hanging qvm-start: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timeout took %v", d)
	}

	err = c.SetPref(context.Background(), "work", "memory", "x")
	if !errors.As(err, &ce) {
		t.Fatalf("not a CommandError: %v", err)
	}
	want := "set work property memory: qvm-prefs work memory x: exit status 1: qvm-prefs: error: bad value"
	if err.Error() != want {
		t.Errorf("error text %q\nwant %q", err, want)
	}
	if !strings.Contains(ce.Stderr, "Traceback") || !reflect.DeepEqual(ce.Argv, []string{"qvm-prefs", "work", "memory", "x"}) {
		t.Errorf("CommandError = %+v", ce)
	}
}

func TestValidate(t *testing.T) {
	for _, ok := range []string{"work", "sys-net", "a", "Fedora-41.x_y", strings.Repeat("a", 31)} {
		if err := ValidateVMName(ok); err != nil {
			t.Errorf("ValidateVMName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", "1vm", "a b", "a/b", "a;b", "@dispvm", strings.Repeat("a", 32), "é"} {
		if err := ValidateVMName(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateVMName(%q) = %v", bad, err)
		}
	}
	for _, bad := range []string{"", "a+b", "a b", "-x", "a/b"} {
		if err := ValidateService(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateService(%q) = %v", bad, err)
		}
	}
	for _, bad := range []string{"a b", "a/b", "x\n"} {
		if err := ValidateArgument(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateArgument(%q) = %v", bad, err)
		}
	}
	if err := ValidateArgument(""); err != nil {
		t.Errorf("empty argument: %v", err)
	}
	cmd, err := QrexecCommand("", "qubes.ConnectTCP", "22")
	if err != nil || cmd != "DEFAULT:QUBESRPC qubes.ConnectTCP+22 dom0" {
		t.Errorf("QrexecCommand = %q, %v", cmd, err)
	}
}

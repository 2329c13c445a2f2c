package sim

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// boundedRun runs the qubes-sim binary with args and fails the test if it
// has not returned within limit: the bug it guards against is a hang.
func (s *sdMachine) boundedRun(limit time.Duration, args ...string) result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		s.t.Fatalf("qubes-sim %q did not return within %v", args, limit)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatal(err)
	}
	return result{out: out.String(), err: errb.String(), code: code}
}

// asRoot runs a shell command as root in vm, as `qvm-run -u root --pass-io`.
func (s *sdMachine) asRoot(vm, cmd string) result {
	s.t.Helper()
	return s.boundedRun(2*time.Minute, "dom0", s.dir, "--", "qvm-run", "-u", "root", "--pass-io", vm, cmd)
}

// TestRCLocalHooksE2E: an AppVM's /rw/config hooks run at every boot, as
// root, in Qubes' order relative to each other and to the units; a
// non-executable hook or a file without .rc does not run; a hook that
// enables linger brings the user's enabled units up at that boot.
func TestRCLocalHooksE2E(t *testing.T) {
	s := newSDMachine(t)
	s.must(Dom0, "qvm-create", "-C", "TemplateVM", "-l", "black", "tpl")
	s.must(Dom0, "qubes-prefs", "default_template", "tpl")
	// Units from the template record when they ran relative to the hooks.
	s.install("tpl", "/usr/bin/claw-mark", "#!/bin/sh\necho \"$1\" >> \"$QUBES_CLAW_ROOT/rw/order\"\n")
	s.install("tpl", "/etc/systemd/system/claw-sysinit.service",
		"[Unit]\nDefaultDependencies=no\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/usr/bin/claw-mark sysinit-unit\n[Install]\nWantedBy=sysinit.target\n")
	s.install("tpl", "/etc/systemd/system/claw-multi.service",
		"[Unit]\nAfter=qubes-misc-post.service\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/usr/bin/claw-mark multi-user-unit\n[Install]\nWantedBy=multi-user.target\n")
	s.must("tpl", "systemctl", "enable", "claw-sysinit", "claw-multi")
	s.must(Dom0, "qvm-shutdown", "--wait", "tpl")

	s.must(Dom0, "qvm-create", "-l", "red", "app")
	s.must(Dom0, "qvm-prefs", "app", "autostart", "True")
	mark := func(what string) string {
		return "#!/bin/sh\necho \"" + what + " $USER\" >> \"$QUBES_CLAW_ROOT/rw/order\"\n"
	}
	s.install("app", "/rw/config/rc.local.d/00-probe.rc", "#!/bin/sh\n: > \"$QUBES_CLAW_ROOT/rw/probe-ran\"\n")
	s.install("app", "/rw/config/rc.local.d/10-second.rc", mark("rc.local.d/10"))
	s.install("app", "/rw/config/rc.local.d/05-noexec.rc", mark("noexec"))
	if err := os.Chmod(s.m.Path("app", "/rw/config/rc.local.d/05-noexec.rc"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.install("app", "/rw/config/rc.local.d/20-not-rc.sh", mark("not-rc"))
	s.install("app", "/rw/config/rc.local.d/30-fails.rc", "#!/bin/sh\nexit 3\n")
	s.install("app", "/rw/config/rc.local", mark("rc.local"))
	s.install("app", "/rw/config/rc.local-early.d/00-early.rc", mark("rc.local-early.d"))
	s.install("app", "/rw/config/rc.local-early", mark("rc.local-early"))
	// The qubes-claw AppVM setup: linger from a hook, user units in /home.
	s.install("app", "/home/user/.config/systemd/user/claw-user.service", unitText("user unit", "default.target"))
	s.install("app", "/rw/config/rc.local.d/50-linger.rc", "#!/bin/sh\nexec loginctl enable-linger user\n")
	s.must("app", "systemctl", "--user", "enable", "claw-user")
	// Starting app for that ran the hooks once already: start afresh.
	for _, f := range []string{"/rw/order", "/rw/probe-ran"} {
		if err := os.Remove(s.m.Path("app", f)); err != nil {
			t.Fatalf("first boot did not run the hooks: %v", err)
		}
	}

	s.sim("reboot", s.dir)

	if _, err := os.Stat(s.m.Path("app", "/rw/probe-ran")); err != nil {
		t.Fatalf("rc.local.d hook did not run at boot: %v", err)
	}
	b, err := os.ReadFile(s.m.Path("app", "/rw/order"))
	if err != nil {
		t.Fatal(err)
	}
	want := "rc.local-early.d root\nrc.local-early root\nsysinit-unit\nrc.local.d/10 root\nrc.local root\nmulti-user-unit\n"
	if string(b) != want {
		t.Fatalf("boot order:\n%s\nwant:\n%s", b, want)
	}
	if out := s.must("app", "journalctl", "-u", "qubes-misc-post", "--no-pager"); !strings.Contains(out, "30-fails.rc exited with status 3") {
		t.Errorf("failing hook not in the journal:\n%s", out)
	}
	waitFor(t, "user unit started by the linger hook", func() bool { return s.hasTag("app", "unit:user@claw-user.service") })
	s.expect("app", []string{"loginctl", "show-user", "user", "-p", "Linger"}, 0, "Linger=yes\n")

	// Every boot: the probe comes back after it is removed.
	if err := os.Remove(s.m.Path("app", "/rw/probe-ran")); err != nil {
		t.Fatal(err)
	}
	s.must(Dom0, "qvm-shutdown", "--wait", "app")
	s.must(Dom0, "qvm-start", "app")
	if _, err := os.Stat(s.m.Path("app", "/rw/probe-ran")); err != nil {
		t.Fatalf("hook did not run at the second boot: %v", err)
	}
}

// TestLingerCrashLoopE2E: a user unit that never gets ready (a notify
// unit exiting 127, Restart=on-failure with a RestartSec that never hits
// the start limit) neither holds loginctl enable-linger nor a stop or the
// machine's shutdown; one that crashes fast hits the start limit and
// fails. The units are reached from root with systemctl --user -M user@.
func TestLingerCrashLoopE2E(t *testing.T) {
	s := newSDMachine(t)
	s.must(Dom0, "qvm-create", "-C", "TemplateVM", "-l", "black", "vm")
	unit := func(restartSec string) string {
		return "[Service]\nType=notify\nExecStart=/bin/sh -c 'exit 127'\nRestart=on-failure\nRestartSec=" + restartSec +
			"\n[Install]\nWantedBy=default.target\n"
	}
	dir := "/home/user/.config/systemd/user/"
	s.install("vm", dir+"burst.service", unit("0.1"))
	s.install("vm", dir+"loop.service", unit("5"))
	for _, n := range []string{"burst.service", "loop.service"} {
		if err := os.MkdirAll(s.m.Path("vm", dir+"default.target.wants"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(dir+n, s.m.Path("vm", dir+"default.target.wants/"+n)); err != nil {
			t.Fatal(err)
		}
	}
	// No session of user yet: the machine transport finds no manager.
	if r := s.asRoot("vm", "systemctl --user -M user@ is-active loop"); r.code != 1 ||
		!strings.Contains(r.err, "Failed to connect to user scope bus via machine transport") {
		t.Fatalf("-M user@ without a manager: %+v", r)
	}
	if r := s.asRoot("vm", "loginctl enable-linger user"); r.code != 0 {
		t.Fatalf("enable-linger: %+v", r)
	}
	show := func(form, prop, name string) string {
		r := s.asRoot("vm", "systemctl --user "+form+" show -p "+prop+" --value "+name)
		if r.code != 0 {
			t.Fatalf("show %s %s: %+v", form, name, r)
		}
		return strings.TrimSpace(r.out)
	}
	waitFor(t, "burst to hit the start limit", func() bool { return show("--machine=user@", "Result", "burst") == "start-limit-hit" })
	if r := s.asRoot("vm", "systemctl --user -M user@.host is-active burst"); r.code != 3 || r.out != "failed\n" {
		t.Fatalf("is-active burst: %+v", r)
	}
	waitFor(t, "loop to restart", func() bool { return show("-M user@", "NRestarts", "loop") != "0" })
	if r := s.asRoot("vm", "systemctl --user --machine user@ stop loop"); r.code != 0 {
		t.Fatalf("stop loop: %+v", r)
	}
	if r := s.asRoot("vm", "systemctl --user -Muser@ is-active loop"); r.code != 3 || r.out != "inactive\n" {
		t.Fatalf("is-active loop after stop: %+v", r)
	}
	waitFor(t, "loop's runner to be reaped", func() bool { return !s.hasTag("vm", "unit:user@loop.service") })
	if r := s.asRoot("vm", "systemctl --user -M user@elsewhere is-active loop"); r.code != 1 || !strings.Contains(r.err, "Host is down") {
		t.Fatalf("-M user@elsewhere: %+v", r)
	}

	// Linger persists in a TemplateVM: the next boot starts the loop again,
	// and the machine still shuts down.
	s.must(Dom0, "qvm-shutdown", "--wait", "vm")
	s.must(Dom0, "qvm-start", "vm")
	waitFor(t, "loop to restart after boot", func() bool {
		return s.hasTag("vm", "unit:user@loop.service") && show("-M user@", "SubState", "loop") == "auto-restart"
	})
	if r := s.boundedRun(3*time.Minute, "shutdown", s.dir); r.code != 0 {
		t.Fatalf("shutdown: %+v", r)
	}
	if s.m.Alive("vm") {
		t.Fatal("vm still running after shutdown")
	}
}

package sim

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/testwait"
)

// sdMachine is a machine driven through the real qubes-sim binary, as the
// project's tests drive it.
type sdMachine struct {
	t   *testing.T
	dir string
	bin string // the built qubes-sim
	m   *Machine
}

// newSDMachine builds cmd/qubes-sim and runs `qubes-sim init`.
func newSDMachine(t *testing.T) *sdMachine {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: builds and runs qubes-sim")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "qubes-sim")
	build := exec.Command("go", "build", "-o", bin, "github.com/qubes-claw/qubes-claw/cmd/qubes-sim")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build qubes-sim: %v\n%s", err, out)
	}
	s := &sdMachine{t: t, dir: filepath.Join(tmp, "m"), bin: bin}
	s.sim("init", s.dir)
	t.Cleanup(func() { exec.Command(bin, "shutdown", s.dir).Run() })
	m, err := Open(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	s.m = m
	return s
}

// sim runs a qubes-sim subcommand and fails the test unless it exits 0.
func (s *sdMachine) sim(args ...string) string {
	s.t.Helper()
	out, err := exec.Command(s.bin, args...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("qubes-sim %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// run runs a command as a dom0 terminal would (`qubes-sim dom0`), or inside
// VM vm as qvm-run --pass-io would (`qubes-sim vm`).
func (s *sdMachine) run(vm string, argv ...string) result {
	s.t.Helper()
	args := []string{"dom0", s.dir, "--"}
	if vm != Dom0 {
		args = []string{"vm", s.dir, vm, "--"}
	}
	cmd := exec.Command(s.bin, append(args, argv...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatal(err)
	}
	return result{out: out.String(), err: errb.String(), code: code}
}

func (s *sdMachine) must(vm string, argv ...string) string {
	s.t.Helper()
	r := s.run(vm, argv...)
	if r.code != 0 {
		s.t.Fatalf("%s: %q: exit %d\nstdout: %s\nstderr: %s", vm, argv, r.code, r.out, r.err)
	}
	return r.out
}

func (s *sdMachine) expect(vm string, argv []string, code int, out string) {
	s.t.Helper()
	r := s.run(vm, argv...)
	if r.code != code || (out != "" && r.out != out) {
		s.t.Fatalf("%s: %q: exit %d, stdout %q, stderr %q; want exit %d, stdout %q", vm, argv, r.code, r.out, r.err, code, out)
	}
}

// install writes a file into a domain, as `qubes-sim install` does.
func (s *sdMachine) install(domain, path, content string) {
	s.t.Helper()
	src := filepath.Join(s.t.TempDir(), "f")
	if err := os.WriteFile(src, []byte(content), 0o755); err != nil {
		s.t.Fatal(err)
	}
	s.sim("install", s.dir, domain, src+":"+path)
}

// hasTag reports whether a process tagged tag runs in domain.
func (s *sdMachine) hasTag(domain, tag string) bool {
	s.t.Helper()
	ps, err := s.m.Processes(domain)
	if err != nil {
		s.t.Fatalf("processes of %s: %v", domain, err)
	}
	for _, p := range ps {
		if p.Tag == tag {
			return true
		}
	}
	return false
}

// waitFor waits for cond, bounded (testwait.For).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, 20*time.Second, what, cond)
}

const sleeperUnit = `[Unit]
Description=%s
[Service]
ExecStart=/bin/sleep infinity
[Install]
WantedBy=%s
`

func unitText(desc, wantedBy string) string {
	return strings.Replace(strings.Replace(sleeperUnit, "%s", desc, 1), "%s", wantedBy, 1)
}

// TestSystemdRebootE2E is the foundation acceptance: a reboot brings back
// the enabled dom0 unit and the autostart VMs, not the started-but-disabled
// unit; linger set inside an AppVM is lost, linger set in a StandaloneVM is
// kept, and user units come back only there.
func TestSystemdRebootE2E(t *testing.T) {
	s := newSDMachine(t)
	s.install(Dom0, "/etc/systemd/system/claw-enabled.service", unitText("enabled", "multi-user.target"))
	s.install(Dom0, "/etc/systemd/system/claw-disabled.service", unitText("disabled", "multi-user.target"))
	r := s.run(Dom0, "systemctl", "enable", "--now", "claw-enabled")
	if r.code != 0 || !strings.Contains(r.err, "Created symlink '/etc/systemd/system/multi-user.target.wants/claw-enabled.service' → '/etc/systemd/system/claw-enabled.service'.") {
		t.Fatalf("enable --now: %+v", r)
	}
	s.must(Dom0, "systemctl", "start", "claw-disabled")
	s.expect(Dom0, []string{"systemctl", "is-active", "claw-enabled", "claw-disabled"}, 0, "active\nactive\n")

	s.must(Dom0, "qvm-create", "-C", "TemplateVM", "-l", "black", "fedora-41")
	s.must(Dom0, "qubes-prefs", "default_template", "fedora-41")
	s.must(Dom0, "qvm-create", "-l", "red", "app")
	s.must(Dom0, "qvm-create", "--standalone", "-t", "fedora-41", "-l", "blue", "solo")
	s.must(Dom0, "qvm-create", "-l", "green", "idle")
	for _, vm := range []string{"app", "solo"} {
		s.must(Dom0, "qvm-prefs", vm, "autostart", "True")
		s.install(vm, "/home/user/.config/systemd/user/claw-user.service", unitText("user unit", "default.target"))
		// Both keep /home; only where linger lives differs.
		s.must(vm, "systemctl", "--user", "enable", "--now", "claw-user")
		s.must(vm, "loginctl", "enable-linger", "user")
		waitFor(t, vm+" user unit", func() bool { return s.hasTag(vm, "unit:user@claw-user.service") })
		s.expect(vm, []string{"loginctl", "show-user", "user", "-p", "Linger"}, 0, "Linger=yes\n")
	}

	s.sim("reboot", s.dir)

	s.expect(Dom0, []string{"systemctl", "is-active", "claw-enabled"}, 0, "active\n")
	s.expect(Dom0, []string{"systemctl", "is-active", "claw-disabled"}, 3, "inactive\n")
	if !s.hasTag(Dom0, "unit:claw-enabled.service") || s.hasTag(Dom0, "unit:claw-disabled.service") {
		t.Fatal("dom0 processes after reboot do not match the enabled units")
	}
	// qubes-vm@app.service and qubes-vm@solo.service started them.
	s.expect(Dom0, []string{"systemctl", "is-active", "qubes-vm@app", "qubes-vm@solo"}, 0, "active\nactive\n")
	s.expect(Dom0, []string{"qvm-check", "--running", "app"}, 0, "")
	s.expect(Dom0, []string{"qvm-check", "--running", "solo"}, 0, "")
	if s.m.Alive("idle") {
		t.Fatal("a VM without autostart is running after reboot")
	}
	// The AppVM's /var came from its template: linger is gone, so is the
	// user unit; the StandaloneVM kept both. (Look at the processes: a
	// systemctl --user call would open the user manager, as a session does.)
	if s.hasTag("app", "unit:user@claw-user.service") {
		t.Error("app: user unit running without linger")
	}
	s.expect("app", []string{"loginctl", "show-user", "user", "-p", "Linger"}, 0, "Linger=no\n")
	// logind starts a lingering user's manager in the background: the boot
	// (and qvm-start) does not wait for user units.
	waitFor(t, "solo: lingering user unit started at boot", func() bool { return s.hasTag("solo", "unit:user@claw-user.service") })
	s.expect("solo", []string{"loginctl", "show-user", "user", "--property=Linger", "--value"}, 0, "yes\n")
	// The unit itself is still enabled in the AppVM (it lives in /home): the
	// next session starts it.
	s.expect("app", []string{"systemctl", "--user", "is-enabled", "claw-user"}, 0, "enabled\n")
}

// TestSystemdQubesServiceE2E: a unit gated on /run/qubes-service/foo starts
// only if the service was on when the VM started; a live change waits for
// the next start.
func TestSystemdQubesServiceE2E(t *testing.T) {
	s := newSDMachine(t)
	s.must(Dom0, "qvm-create", "-C", "TemplateVM", "-l", "black", "tpl")
	s.must(Dom0, "qubes-prefs", "default_template", "tpl")
	s.install("tpl", "/etc/systemd/system/claw-gated.service", unitText("gated", "multi-user.target"))
	// The official pattern: a drop-in with the condition (qubes.md §3.7).
	s.install("tpl", "/etc/systemd/system/claw-gated.service.d/30_qubes.conf",
		"[Unit]\nConditionPathExists=/var/run/qubes-service/foo\nAfter=qubes-sysinit.service\n")
	s.must("tpl", "systemctl", "enable", "claw-gated")
	s.must(Dom0, "qvm-shutdown", "--wait", "tpl")

	s.must(Dom0, "qvm-create", "-l", "red", "on")
	s.must(Dom0, "qvm-create", "-l", "red", "off")
	s.must(Dom0, "qvm-service", "on", "foo", "on")
	s.must(Dom0, "qvm-start", "on")
	s.must(Dom0, "qvm-start", "off")
	s.expect("on", []string{"systemctl", "is-active", "claw-gated"}, 0, "active\n")
	s.expect("off", []string{"systemctl", "is-active", "claw-gated"}, 3, "inactive\n")
	if r := s.run("off", "systemctl", "status", "claw-gated"); r.code != 3 ||
		!strings.Contains(r.out, "ConditionPathExists=/var/run/qubes-service/foo was not met") {
		t.Fatalf("status: %+v", r)
	}

	// Live change: QubesDB changes, the flag file does not.
	s.must(Dom0, "qvm-service", "off", "foo", "on")
	s.expect("off", []string{"test", "-e", s.m.Path("off", "/run/qubes-service/foo")}, 1, "")
	s.must("off", "systemctl", "start", "claw-gated")
	s.expect("off", []string{"systemctl", "is-active", "claw-gated"}, 3, "inactive\n")

	s.must(Dom0, "qvm-shutdown", "--wait", "off")
	s.must(Dom0, "qvm-start", "off")
	s.expect("off", []string{"systemctl", "is-active", "claw-gated"}, 0, "active\n")
}

// TestSystemdLifecycleE2E: Restart=on-failure, stop, and systemctl's
// outputs and exit codes.
func TestSystemdLifecycleE2E(t *testing.T) {
	s := newSDMachine(t)
	// Crashes twice, then stays up; the count survives restarts in /run.
	s.install(Dom0, "/usr/local/bin/flaky", `#!/bin/sh
f="$RUNTIME_DIRECTORY/../flaky-count"
n=$(cat "$f" 2>/dev/null || echo 0)
n=$((n+1))
echo "$n" > "$f"
echo "attempt $n"
[ "$n" -ge 3 ] && exec sleep infinity
exit 1
`)
	s.install(Dom0, "/etc/systemd/system/flaky.service", `[Unit]
Description=Flaky
[Service]
ExecStart=/usr/local/bin/flaky
Restart=on-failure
RestartSec=0.1
RuntimeDirectory=flaky
[Install]
WantedBy=multi-user.target
`)
	s.install(Dom0, "/etc/systemd/system/static.service", "[Service]\nExecStart=/bin/sleep infinity\n")
	s.install(Dom0, "/etc/systemd/system/broken.service", "[Service]\nType=oneshot\nExecStart=/bin/false\n")

	s.must(Dom0, "systemctl", "start", "flaky")
	waitFor(t, "flaky to stay up", func() bool {
		return s.run(Dom0, "systemctl", "show", "-p", "NRestarts", "--value", "flaky").out == "2\n" &&
			s.run(Dom0, "systemctl", "is-active", "flaky").code == 0
	})
	if out := s.must(Dom0, "journalctl", "-u", "flaky", "--no-pager"); !strings.Contains(out, "attempt 3") ||
		!strings.Contains(out, "Scheduled restart job, restart counter is at 2.") {
		t.Fatalf("journal:\n%s", out)
	}
	pid := s.run(Dom0, "systemctl", "show", "-p", "MainPID", "--value", "flaky").out
	s.must(Dom0, "systemctl", "stop", "flaky")
	s.expect(Dom0, []string{"systemctl", "is-active", "flaky"}, 3, "inactive\n")
	if _, err := os.Stat("/proc/" + strings.TrimSpace(pid)); err == nil {
		t.Fatalf("main process %s survived stop", pid)
	}
	if s.hasTag(Dom0, "unit:flaky.service") {
		t.Fatal("runner survived stop")
	}
	if _, err := os.Stat(s.m.Path(Dom0, "/run/flaky")); err == nil {
		t.Fatal("RuntimeDirectory survived stop")
	}

	for _, tt := range []struct {
		argv   []string
		code   int
		out    string
		stderr string
	}{
		{[]string{"is-enabled", "flaky"}, 1, "disabled\n", ""},
		{[]string{"is-enabled", "static"}, 0, "static\n", ""},
		{[]string{"is-enabled", "nope"}, 1, "", "Failed to get unit file state for nope.service: No such file or directory\n"},
		{[]string{"enable", "flaky"}, 0, "", "Created symlink '/etc/systemd/system/multi-user.target.wants/flaky.service' → '/etc/systemd/system/flaky.service'.\n"},
		{[]string{"is-enabled", "flaky"}, 0, "enabled\n", ""},
		{[]string{"disable", "flaky"}, 0, "", "Removed '/etc/systemd/system/multi-user.target.wants/flaky.service'.\n"},
		{[]string{"is-enabled", "-q", "flaky"}, 1, "", ""},
		{[]string{"start", "nope"}, 5, "", "Failed to start nope.service: Unit nope.service not found.\n"},
		{[]string{"stop", "nope"}, 5, "", "Failed to stop nope.service: Unit nope.service not loaded.\n"},
		{[]string{"status", "nope"}, 4, "", "Unit nope.service could not be found.\n"},
		{[]string{"is-active", "nope"}, 3, "inactive\n", ""},
		{[]string{"start", "broken"}, 1, "", "Job for broken.service failed because the control process exited with error code.\nSee \"systemctl status broken.service\" and \"journalctl -xeu broken.service\" for details.\n"},
		{[]string{"is-active", "broken"}, 3, "failed\n", ""},
		{[]string{"is-failed", "broken"}, 0, "failed\n", ""},
		{[]string{"reset-failed", "broken"}, 0, "", ""},
		{[]string{"is-failed", "broken"}, 1, "inactive\n", ""},
		{[]string{"frobnicate"}, 1, "", "Unknown command verb 'frobnicate'.\n"},
	} {
		t.Run(strings.Join(tt.argv, " "), func(t *testing.T) {
			r := s.run(Dom0, append([]string{"systemctl"}, tt.argv...)...)
			if r.code != tt.code || r.out != tt.out || r.err != tt.stderr {
				t.Fatalf("exit %d stdout %q stderr %q; want %d %q %q", r.code, r.out, r.err, tt.code, tt.out, tt.stderr)
			}
		})
	}

	// An edited unit is used only after daemon-reload.
	s.must(Dom0, "systemctl", "start", "static")
	s.install(Dom0, "/etc/systemd/system/static.service", "[Unit]\nDescription=edited\n[Service]\nExecStart=/bin/sleep infinity\n")
	r := s.run(Dom0, "systemctl", "show", "-p", "Description,NeedDaemonReload", "static")
	if r.out != "Description=static.service\nNeedDaemonReload=yes\n" {
		t.Fatalf("before daemon-reload: %q", r.out)
	}
	s.must(Dom0, "systemctl", "daemon-reload")
	s.expect(Dom0, []string{"systemctl", "show", "-p", "Description,NeedDaemonReload", "static"}, 0, "Description=edited\nNeedDaemonReload=no\n")
}

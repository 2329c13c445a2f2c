package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

// TestWizardCustom: custom answers, invalid ones asked again, and the agent
// VM authorized for qvm-remote only after the warning, in restricted mode.
func TestWizardCustom(t *testing.T) {
	m := newMachine(t)
	// The wizard's defaults come from the system answers file: the provider,
	// no dom0 tunnel (the one port is typed below).
	m.WriteFile(sim.Dom0, "/etc/qubes/qubes-claw-install.yaml", []byte(systemAnswers(newPorts(t), false)), 0o644)
	port := fmt.Sprint(freePort(t))
	s := startOnPTY(t, m)
	s.answer("Agent VM name", "Bad Name!")
	s.answer("not a VM name", "my-agent")
	s.answer("class", "AppVM")
	s.answer("Template", "nope")
	s.answer("no template named", "fedora")
	s.answer("Label", "pink")
	s.answer("one of", "blue")
	s.answer("NetVM", "none")
	s.answer("Memory", "1000")
	s.answer("Maximum memory", "0")
	s.answer("Virtual CPUs", "1")
	s.answer("Start the agent VM at boot", "n")
	s.answer("Client VMs", "work")
	s.answer("Ports", "99999")
	s.answer("not a TCP port", port)
	s.answer("Authorize a VM for qvm-remote", "y")
	s.answer("VM authorized for qvm-remote", "my-agent")
	s.expect("WARNING: my-agent is the agent VM")
	s.answer("Authorize the agent VM anyway [y/N]", "y")
	s.answer("Allowed commands", "qvm-ls*")
	s.answer("Type yes", "")
	s.answer("Apply these", "y")
	s.expect("steps changed")
	if code := s.wait(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, s.output())
	}
	for _, c := range []struct{ argv, want string }{
		{"qvm-prefs my-agent klass", "AppVM"},
		{"qvm-prefs my-agent template", "fedora"},
		{"qvm-prefs my-agent label", "blue"},
		{"qvm-prefs my-agent netvm", ""},
		{"qvm-prefs my-agent memory", "1000"},
		{"qvm-prefs my-agent maxmem", "0"},
		{"qvm-prefs my-agent autostart", "False"},
		{"qvm-features my-agent qubes-claw.ports", port},
	} {
		r := m.Host(strings.Fields(c.argv)...)
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != c.want {
			t.Errorf("%s: want %q, got %v", c.argv, c.want, r)
		}
	}
	if r := m.Host("qvm-check", "claw-admin"); r.Code == 0 {
		t.Errorf("the admin VM was created although the agent VM was chosen")
	}
	if _, err := os.Stat(m.Sim.Path(sim.Dom0, "/etc/qubes/remote.d/my-agent.key")); err != nil {
		t.Errorf("agent VM not authorized: %v", err)
	}
	conf, _ := os.ReadFile(m.Sim.Path(sim.Dom0, "/etc/qubes/qvm-remote-dom0.yaml"))
	for _, want := range []string{"name: my-agent", "mode: restricted", "qvm-ls*", "the simulator's adaptation", "reopen_min: 100ms"} {
		contains(t, "daemon config", string(conf), want)
	}
	if enabled(m) {
		t.Error("qvm-remote-dom0 enabled without yes")
	}
}

// TestAgentNeverSilentlyAuthorized: answers naming the agent VM for
// qvm-remote without the explicit choice are refused before any change.
func TestAgentNeverSilentlyAuthorized(t *testing.T) {
	m := newMachine(t)
	writeAnswers(m, newPorts(t).answers()+"remote:\n  vm: claw-agent\n")
	r := install(m, "--config", answersPath, "--yes")
	if r.Code != 2 || !strings.Contains(r.Stderr, "explicit remote.authorize_agent") {
		t.Fatalf("want a refusal: %v", r)
	}
	if m.Host("qvm-check", "claw-agent").Code == 0 {
		t.Error("the refused run created the agent VM")
	}
}

// TestRebootPersistentEnable: without a terminal only the answers file's
// acceptance enables qvm-remote-dom0 at boot (--yes does not, the
// environment variable is refused); after a reboot the agent VM runs, and
// the daemon runs only where it was enabled.
func TestRebootPersistentEnable(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		want        bool
	}{
		{"accepted in answers", "remote:\n  persistent_enable: \"yes\"\n", true},
		{"yes flag only", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t)
			writeAnswers(m, newPorts(t).answers()+tc.extra)
			r := m.Run(simtest.Cmd{Argv: []string{"qubes-claw-install", "--config", answersPath, "--yes"},
				Env: []string{"QCI_REMOTE_PERSISTENT_ENABLE=yes"}})
			if r.Code != 2 || !strings.Contains(r.Stderr, "is refused") {
				t.Fatalf("environment acceptance not refused: %v", r)
			}
			mustInstall(t, m, "--config", answersPath, "--yes")
			m.MustRun("qubes-sim", "reboot", m.Dir)
			if !m.Running("claw-agent") {
				t.Error("the agent VM (autostart) is not running after reboot")
			}
			active := m.Dom0("systemctl is-active qvm-remote-dom0.service").Code == 0
			if active != tc.want || enabled(m) != tc.want {
				t.Errorf("qvm-remote-dom0 active %v enabled %v, want %v", active, enabled(m), tc.want)
			}
		})
	}
}

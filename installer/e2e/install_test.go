package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

// TestInstallFromAnswers: a fresh machine, the answers file, no terminal:
// every item as planned, a second run changes nothing and says so, and
// uninstall --remove-vms gives back the machine as it was.
func TestInstallFromAnswers(t *testing.T) {
	m := newMachine(t)
	p := newPorts(t)
	writeAnswers(m, p.answers())
	before := snapshot(t, m)

	dry := mustInstall(t, m, "--config", answersPath, "--dry-run")
	contains(t, "dry run", dry, "[1/14] VM claw-agent: will change")
	contains(t, "dry run", dry, "dry run: nothing changed")
	if after := snapshot(t, m); after != before {
		t.Fatalf("--dry-run changed the machine:\n%s", diffLines(before, after))
	}

	out := mustInstall(t, m, "--config", answersPath)
	contains(t, "install", out, "[3/14] tags on claw-agent ... changed")
	contains(t, "install", out, "[9/14] enable and start qubes-claw-tunnel.service ... changed")
	contains(t, "install", out, "[12/14] qvm-remote key of claw-admin ... changed")
	contains(t, "install", out, "[14/14] qubes-claw-proxy setup in claw-agent ... changed")
	checkInstalled(t, m, []string{"work"}, false)
	if r := m.Host("qvm-features", "claw-agent", "qubes-claw.ports"); strings.TrimSpace(r.Stdout) != fmt.Sprintf("%d,%d", p.proxy, p.gateway) {
		t.Errorf("ports feature: %v", r)
	}
	installed := snapshot(t, m)

	again := mustInstall(t, m, "--config", answersPath)
	for _, l := range strings.Split(strings.TrimSpace(again), "\n") {
		if strings.HasPrefix(l, "[") && !strings.HasSuffix(l, "... unchanged") {
			t.Errorf("second run changed a step: %s", l)
		}
	}
	contains(t, "second run", again, "nothing to change: every step is unchanged")
	if now := snapshot(t, m); now != installed {
		t.Fatalf("the second run changed the machine:\n%s", diffLines(installed, now))
	}

	un := mustInstall(t, m, "uninstall", "--remove-vms", "--config", answersPath)
	contains(t, "uninstall", un, "remove VM claw-agent ... changed")
	if after := snapshot(t, m); after != before {
		t.Fatalf("uninstall left the machine different:\n%s", diffLines(before, after))
	}
}

// checkInstalled checks the default plan through the simulated tools.
func checkInstalled(t *testing.T, m *simtest.Machine, clients []string, persistent bool) {
	t.Helper()
	for _, c := range []struct{ argv, want string }{
		{"qvm-prefs claw-agent klass", "StandaloneVM"},
		{"qvm-prefs claw-agent label", "purple"},
		{"qvm-prefs claw-agent memory", "800"},
		{"qvm-prefs claw-agent maxmem", "4000"},
		{"qvm-prefs claw-agent vcpus", "2"},
		{"qvm-prefs claw-agent autostart", "True"},
		{"qvm-features claw-agent qubes-claw.role", "server"},
		{"qvm-features claw-agent supported-service.qubes-claw-proxy", "1"},
		{"qvm-service claw-agent qubes-claw-proxy", "on"},
		{"qvm-service claw-agent qubes-claw-gateway", "on"},
		{"qvm-prefs claw-admin klass", "AppVM"},
		{"qvm-prefs claw-admin label", "black"},
		{"qvm-prefs claw-admin netvm", ""},
	} {
		r := m.Host(strings.Fields(c.argv)...)
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != c.want {
			t.Errorf("%s: want %q, got %v", c.argv, c.want, r)
		}
	}
	tags := [][2]string{{"claw-agent", "openclaw-server"}}
	for _, c := range clients {
		tags = append(tags, [2]string{c, "openclaw-client"})
	}
	for _, c := range tags {
		if r := m.Host("qvm-tags", c[0], "list", c[1]); r.Code != 0 {
			t.Errorf("%s lacks tag %s: %v", c[0], c[1], r)
		}
	}
	// The policy is the tunnel daemon's rendering of the tunnel config the
	// installer wrote: one source for both.
	policy, err := os.ReadFile(m.Sim.Path(sim.Dom0, "/etc/qubes/policy.d/40-qubes-claw-install.policy"))
	if r := m.Dom0("qubes-claw-tunnel", "policy", "render"); err != nil || r.Code != 0 || r.Stdout != string(policy) {
		t.Errorf("policy file (%v):\n%s\nqubes-claw-tunnel policy render: %v", err, policy, r)
	}
	if r := m.Dom0("systemctl", "is-enabled", "qubes-claw-tunnel.service"); r.Code != 0 {
		t.Errorf("tunnel unit not enabled: %v", r)
	}
	// The key dom0 stored is the one the admin VM made (pull model).
	vmKey := m.VM("claw-admin", "qvm-remote key show")
	stored, err := os.ReadFile(m.Sim.Path(sim.Dom0, "/etc/qubes/remote.d/claw-admin.key"))
	if vmKey.Code != 0 || err != nil || strings.TrimSpace(vmKey.Stdout) != strings.TrimSpace(string(stored)) {
		t.Errorf("stored key %q (%v), the VM's %v", stored, err, vmKey)
	}
	if got := enabled(m); got != persistent {
		t.Errorf("qvm-remote-dom0 enabled: %v, want %v", got, persistent)
	}
}

// TestUninstallKeepsVMs: without --remove-vms the created VMs stay, without
// our tags, features and services; other VMs lose the client tag.
func TestUninstallKeepsVMs(t *testing.T) {
	m := newMachine(t)
	writeAnswers(m, newPorts(t).answers())
	mustInstall(t, m, "--config", answersPath)
	out := mustInstall(t, m, "uninstall", "--config", answersPath)
	contains(t, "uninstall", out, "keeping VM claw-agent")
	if r := m.Host("qvm-check", "claw-agent"); r.Code != 0 {
		t.Errorf("claw-agent removed: %v", r)
	}
	for _, c := range [][2]string{{"claw-agent", "openclaw-server"}, {"work", "openclaw-client"}} {
		if r := m.Host("qvm-tags", c[0], "list", c[1]); r.Code == 0 {
			t.Errorf("%s still tagged %s", c[0], c[1])
		}
	}
	if r := m.Host("qvm-features", "claw-agent", "service.qubes-claw-proxy"); r.Code == 0 {
		t.Errorf("service flag left: %v", r)
	}
	if _, err := os.Stat(m.Sim.Path(sim.Dom0, "/etc/qubes/policy.d/40-qubes-claw-install.policy")); !os.IsNotExist(err) {
		t.Errorf("policy file left: %v", err)
	}
}

// TestUninstallRestoresPriorValues: an existing agent VM's properties and
// features go back to what they were, and the VM stays even with
// --remove-vms (the installer did not create it).
func TestUninstallRestoresPriorValues(t *testing.T) {
	m := newMachine(t)
	m.CreateVM("agent", "--class", "StandaloneVM", "-l", "green")
	m.MustRun("qvm-prefs", "agent", "memory", "600")
	m.MustRun("qvm-features", "agent", "qubes-claw.role", "old")
	// The VM has no qubes-claw package: no VM side; no tunnel either.
	writeAnswers(m, "agent:\n  name: agent\nremote:\n  enabled: false\nsetup:\n  enabled: false\ntunnel:\n  enabled: false\n")
	before := snapshot(t, m)
	mustInstall(t, m, "--config", answersPath)
	if r := m.Host("qvm-prefs", "agent", "memory"); strings.TrimSpace(r.Stdout) != "800" {
		t.Fatalf("memory not set: %v", r)
	}
	mustInstall(t, m, "uninstall", "--remove-vms", "--config", answersPath)
	if after := snapshot(t, m); after != before {
		t.Fatalf("uninstall did not restore the prior values:\n%s", diffLines(before, after))
	}
}

// TestFailureReport: a step that fails names the step, the command, its
// stderr and what to do, and exits 1.
func TestFailureReport(t *testing.T) {
	m := newMachine(t)
	// The admin VM's template lacks qvm-remote: the key step fails.
	m.Template("bare")
	writeAnswers(m, newPorts(t).answers()+"remote:\n  template: bare\n")
	r := install(m, "--config", answersPath)
	if r.Code != 1 {
		t.Fatalf("want exit 1: %v", r)
	}
	contains(t, "report", r.Stderr, "step 12/14 failed: qvm-remote key of claw-admin")
	contains(t, "report", r.Stderr, "command: qvm-run --pass-io --no-gui claw-admin qvm-remote key")
	contains(t, "report", r.Stderr, "stderr:")
	contains(t, "report", r.Stderr, "what to do: a program is missing in the VM")
	// Answers that name a template that does not exist fail before any change.
	writeAnswers(m, "agent:\n  name: other\n  template: nope\n")
	before := snapshot(t, m)
	r = install(m, "--config", answersPath)
	if r.Code != 2 || !strings.Contains(r.Stderr, "agent.template nope does not exist") {
		t.Fatalf("missing template: %v", r)
	}
	if after := snapshot(t, m); after != before {
		t.Fatalf("invalid answers changed the machine:\n%s", diffLines(before, after))
	}
}

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

func TestMain(m *testing.M) { simtest.Main(m) }

// repoRoot is three levels up from this package.
const repoRoot = "../../.."

// env is a machine with qvm-remote installed in a template, AppVMs on it,
// and the daemon's unit, binary and config in dom0.
type env struct {
	t   testing.TB
	m   *simtest.Machine
	vms []string
}

// dom0Config adapts the daemon to the simulator: commands need the
// simulator's variables and tools (the PATH of a dom0 root shell), and a
// short reopen backoff keeps restarts quick. Everything else is the default.
func dom0Config(m *simtest.Machine, extra string) string {
	path := ""
	for _, kv := range m.Sim.DomainEnv(sim.Dom0, "root") {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	if !strings.Contains(extra, "reopen_") {
		extra = "reopen_min: 100ms\nreopen_max: 2s\n" + extra
	}
	return fmt.Sprintf(`exec:
  path: %q
  home: /root
  pass_env: [%s, %s, %s, TMPDIR]
%s`, path, sim.DirEnv, sim.DomainEnv, sim.RootEnv, extra)
}

// newEnv builds the machine; the daemon is not started.
func newEnv(t testing.TB, extraConfig string, vms ...string) *env {
	t.Helper()
	m := simtest.New(t)
	e := &env{t: t, m: m, vms: vms}
	m.Template("tpl")
	m.Install("tpl", filepath.Join(m.Bin, "qvm-remote"), "/usr/bin/qvm-remote", 0o755)
	for _, vm := range vms {
		m.AppVM(vm, "tpl")
	}
	m.Install(sim.Dom0, filepath.Join(m.Bin, "qvm-remote-dom0"), "/usr/bin/qvm-remote-dom0", 0o755)
	m.Install(sim.Dom0, filepath.Join(repoRoot, "rpm", "qvm-remote-dom0.service"), "/usr/lib/systemd/system/qvm-remote-dom0.service", 0o644)
	m.WriteFile(sim.Dom0, "/etc/qubes/qvm-remote-dom0.yaml", []byte(dom0Config(m, extraConfig)), 0o644)
	return e
}

// authorize does the pull-model key exchange: the key is made in the VM
// and read by dom0 over qvm-run --pass-io (authorize without KEY).
func (e *env) authorize(vm string) {
	e.t.Helper()
	if r := e.m.VM(vm, "qvm-remote key gen"); r.Code != 0 {
		e.t.Fatalf("key gen in %s: %v", vm, r)
	}
	if r := e.m.Dom0("qvm-remote-dom0 authorize " + vm); r.Code != 0 || !strings.Contains(r.Stdout, "authorized "+vm) {
		e.t.Fatalf("authorize %s: %v", vm, r)
	}
}

// start authorizes every VM and starts the daemon with systemctl, then
// waits until each VM's channel is open.
func (e *env) start() {
	e.t.Helper()
	for _, vm := range e.vms {
		e.authorize(vm)
	}
	e.systemctl("start", "qvm-remote-dom0")
	for _, vm := range e.vms {
		e.waitChannel(vm)
	}
}

func (e *env) systemctl(args ...string) {
	e.t.Helper()
	if r := e.m.Dom0(append([]string{"systemctl"}, args...)...); r.Code != 0 {
		e.t.Fatalf("systemctl %q: %v\n%s", args, r, e.journal())
	}
}

func (e *env) journal() string {
	return e.m.Dom0("journalctl", "-u", "qvm-remote-dom0", "--no-pager").Stdout
}

// waitChannel is a bounded wait for dom0's channel to vm (the agent holds
// its lock while serving).
func (e *env) waitChannel(vm string) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if r := e.m.VM(vm, "qvm-remote status"); strings.Contains(r.Stdout, "channel: open") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("no channel to %s\n%s", vm, e.journal())
}

// vmPath is the host path of a file inside a domain.
func (e *env) vmPath(domain, p string) string { return e.m.Sim.Path(domain, p) }

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

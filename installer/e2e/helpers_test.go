package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/pkgspec"
	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

func TestMain(m *testing.M) { simtest.Main(m) }

// repoRoot is two levels up from this package.
const repoRoot = "../.."

// answersPath is where tests put the answers file, as dom0 sees it.
const answersPath = "/home/user/answers.yaml"

// newMachine is a machine as a user has it before installing: a template
// with the qubes-claw VM packages (qvm-remote, qubes-claw-vm) and an
// OpenClaw stand-in, a client AppVM, and dom0 with qubes-claw-dom0 and
// qvm-remote-dom0, the latter's config fit for the simulator.
func newMachine(t *testing.T, opts ...simtest.Option) *simtest.Machine {
	t.Helper()
	m := simtest.New(t, opts...)
	m.Template("fedora")
	installPackage(t, m, "fedora", "qvm-remote")
	installPackage(t, m, "fedora", "qubes-claw-vm")
	m.Install("fedora", filepath.Join(m.Bin, "qubes-claw-standin"), "/usr/bin/qubes-claw-standin", 0o755)
	m.WriteFile("fedora", "/usr/bin/openclaw", []byte(fakeOpenclaw), 0o755)
	m.AppVM("work", "fedora")
	installPackage(t, m, sim.Dom0, "qvm-remote-dom0")
	installPackage(t, m, sim.Dom0, "qubes-claw-dom0")
	m.WriteFile(sim.Dom0, "/etc/qubes/qvm-remote-dom0.yaml", []byte(daemonConfig(m)), 0o644)
	m.WriteFile(sim.Dom0, keyPath, []byte(providerKey+"\n"), 0o600)
	return m
}

// fakeOpenclaw stands in for the OpenClaw CLI the gateway unit runs:
// `openclaw gateway --port N ...` serves HTTP on N.
const fakeOpenclaw = `#!/bin/sh
[ "$1" = gateway ] && [ "$2" = --port ] || exit 64
exec qubes-claw-standin --listen "127.0.0.1:$3"
`

// installPackage installs what pkgspec says package name holds, as rpm
// would: so the tests find every file where the package puts it.
func installPackage(t *testing.T, m *simtest.Machine, domain, name string) {
	t.Helper()
	p, ok := pkgspec.Find(name)
	if !ok {
		t.Fatalf("no package %s", name)
	}
	for _, e := range p.For(pkgspec.RPM, pkgspec.InTree(repoRoot)) {
		switch e.Kind {
		case pkgspec.Binary:
			m.Install(domain, filepath.Join(m.Bin, e.Source), e.Dest, e.Mode)
		case pkgspec.File, pkgspec.Config:
			m.Install(domain, filepath.Join(repoRoot, e.Source), e.Dest, e.Mode)
		case pkgspec.Symlink:
			m.Symlink(domain, e.Source, e.Dest)
		case pkgspec.Dir:
			if err := os.MkdirAll(m.Sim.Path(domain, e.Dest), e.Mode); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// The provider key the answers name (setup.api_key_file), in dom0.
const (
	keyPath     = "/home/user/provider.key"
	providerKey = "sk-standin-key-0123"
)

// freePort returns a loopback port nobody listens on now: outside
// isolation mode every domain shares the host's loopback, so each machine
// needs its own ports for the VM's proxy and gateway and dom0's tunnels.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ports are one machine's ports: the VM's (proxy, gateway), dom0's tunnel
// ends, and the stand-in provider's.
type ports struct{ proxy, gateway, tproxy, tgateway, provider int }

func newPorts(t *testing.T) ports {
	return ports{freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)}
}

// answers are the base answers: the template, a client, the machine's
// ports, the provider (the stand-in; unreachable until a test starts it).
func (p ports) answers() string {
	return fmt.Sprintf(`agent:
  template: fedora
clients:
  vms: [work]
ports: [%d, %d]
tunnel:
  listen: ["127.0.0.1:%d", "127.0.0.1:%d"]
setup:
  provider: openai
  base_url: http://127.0.0.1:%d/openai/v1
  api_key_file: %s
`, p.proxy, p.gateway, p.tproxy, p.tgateway, p.provider, keyPath)
}

// daemonConfig adapts qvm-remote-dom0 to the simulator: commands need the
// simulator's variables and dom0 tools on PATH.
func daemonConfig(m *simtest.Machine) string {
	path := ""
	for _, kv := range m.Sim.DomainEnv(sim.Dom0, "root") {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	return fmt.Sprintf(`# the simulator's adaptation (kept by the installer's edits)
exec:
  path: %q
  home: /root
  pass_env: [%s, %s, %s, TMPDIR]
reopen_min: 100ms
reopen_max: 2s
`, path, sim.DirEnv, sim.DomainEnv, sim.RootEnv)
}

func writeAnswers(m *simtest.Machine, yaml string) {
	m.WriteFile(sim.Dom0, answersPath, []byte(yaml), 0o644)
}

// install runs the installer without a terminal (stdin is not one).
func install(m *simtest.Machine, args ...string) simtest.Result {
	return m.Run(simtest.Cmd{Argv: append([]string{"qubes-claw-install"}, args...)})
}

func mustInstall(t *testing.T, m *simtest.Machine, args ...string) string {
	t.Helper()
	r := install(m, args...)
	if r.Code != 0 {
		t.Fatalf("qubes-claw-install %q: %v", args, r)
	}
	return r.Stdout
}

// volatile are domain paths a snapshot leaves out: runtime state that the
// simulator rebuilds at every boot, logs, and the installer's own undo
// record (Salt keeps no such record; see salt_test.go).
var volatile = []string{"/run", "/tmp", "/var/tmp", "/var/log", "/var/lib/systemd", "/var/lib/qubes-claw"}

// snapshot is the machine's state as a comparable text: every domain with
// class, properties, tags and features (power and qid left out: they are
// not configuration), and every file of every domain with its mode and a
// hash of its content.
func snapshot(t *testing.T, m *simtest.Machine) string {
	t.Helper()
	st, err := m.Sim.Load()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, name := range st.Names() {
		d := st.Domain(name)
		view := struct {
			Class    string
			Props    map[string]string
			Tags     []string
			Features map[string]string
		}{d.Class, d.Props, d.Tags, d.Features}
		js, _ := json.Marshal(view)
		fmt.Fprintf(&b, "domain %s %s\n", name, js)
		root := m.Sim.Root(name)
		var lines []string
		filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			rel, _ := m.Sim.Unmap(name, p)
			for _, v := range volatile {
				if rel == v || strings.HasPrefix(rel, v+"/") {
					if e.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
			}
			info, err := e.Info()
			if err != nil {
				return nil
			}
			line := fmt.Sprintf("  %s %v", rel, info.Mode())
			switch {
			case info.Mode().IsRegular() && strings.HasSuffix(rel, ".key"):
				// Keys are random per machine: compared by presence and mode.
				line += " (key)"
			case info.Mode().IsRegular() && strings.HasSuffix(rel, ".qubes-claw.sha256"):
				// openclaw.json's edit stamp hashes its random gateway token.
				line += " (stamp)"
			case info.Mode().IsRegular():
				data, _ := os.ReadFile(p)
				// Tokens setup generates (the proxy's client token, OpenClaw's
				// gateway token) are random per machine; the rest must match.
				data = proxyToken.ReplaceAll(data, []byte("qcp-(token)"))
				data = gatewayToken.ReplaceAll(data, []byte(`"token": "(token)"`))
				// The simulator's own paths (in its adapted configs) differ per machine.
				data = bytes.ReplaceAll(data, []byte(m.Dir), []byte("$DIR"))
				line += fmt.Sprintf(" %x", sha256.Sum256(data))
			case info.Mode()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				line += " -> " + target
			}
			lines = append(lines, line)
			return nil
		})
		sort.Strings(lines)
		b.WriteString(strings.Join(lines, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}

var (
	proxyToken   = regexp.MustCompile(`qcp-[0-9a-f]{48}`)
	gatewayToken = regexp.MustCompile(`"token": "[0-9a-f]{64}"`)
)

// diffLines returns the lines only in a and only in b.
func diffLines(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

func contains(t *testing.T, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%s: %q not found in:\n%s", what, sub, s)
	}
}

package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

func TestMain(m *testing.M) { simtest.Main(m) }

// repoRoot is two levels up from this package.
const repoRoot = "../.."

// answersPath is where tests put the answers file, as dom0 sees it.
const answersPath = "/home/user/answers.yaml"

// newMachine is a machine as a user has it before installing: a template
// with qvm-remote (the qubes-claw template package), a client AppVM, and
// qvm-remote-dom0 with its unit and a config fit for the simulator in dom0.
func newMachine(t *testing.T) *simtest.Machine {
	t.Helper()
	m := simtest.New(t)
	m.Template("fedora")
	m.Install("fedora", filepath.Join(m.Bin, "qvm-remote"), "/usr/bin/qvm-remote", 0o755)
	m.AppVM("work", "fedora")
	m.Install(sim.Dom0, filepath.Join(m.Bin, "qvm-remote-dom0"), "/usr/bin/qvm-remote-dom0", 0o755)
	m.Install(sim.Dom0, filepath.Join(repoRoot, "rpm", "qvm-remote-dom0.service"), "/usr/lib/systemd/system/qvm-remote-dom0.service", 0o644)
	m.WriteFile(sim.Dom0, "/etc/qubes/qvm-remote-dom0.yaml", []byte(daemonConfig(m)), 0o644)
	return m
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
			case info.Mode().IsRegular():
				data, _ := os.ReadFile(p)
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

package simtest_test

import (
	"os"
	"strings"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/pkgspec"
	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

// TestInstallPackage installs every package where dnf would put it and runs
// each installed binary from its packaged path inside its domain.
func TestInstallPackage(t *testing.T) {
	m := simtest.New(t)
	m.StandaloneVM("vm")
	for _, p := range pkgspec.All() {
		domain := "vm"
		if p.Side == pkgspec.Dom0 {
			domain = sim.Dom0
		}
		t.Run(p.Name, func(t *testing.T) {
			m.InstallPackage(domain, p.Name)
			for _, e := range p.For(pkgspec.RPM, pkgspec.InTree("../../..")) {
				if e.Kind == pkgspec.Ghost {
					continue
				}
				fi, err := os.Lstat(m.Sim.Path(domain, e.Dest))
				if err != nil {
					t.Errorf("%s: %v", e.Dest, err)
					continue
				}
				if e.Kind != pkgspec.Symlink && fi.Mode().Perm() != e.Mode.Perm() {
					t.Errorf("%s: mode %o, want %o", e.Dest, fi.Mode().Perm(), e.Mode.Perm())
				}
				if e.Kind == pkgspec.Binary {
					// Run it from its packaged path, inside its domain.
					argv := []string{"qubes-sim", "vm", m.Dir, domain, "--", e.Dest, "--version"}
					if domain == sim.Dom0 {
						argv = []string{"qubes-sim", "dom0", m.Dir, "--", e.Dest, "--version"}
					}
					r := m.Run(simtest.Cmd{Argv: argv})
					if r.Code != 0 || !strings.Contains(r.Stdout+r.Stderr, "version") {
						t.Errorf("%s --version in %s: %v", e.Dest, domain, r)
					}
				}
			}
		})
	}
	// An edited config survives a reinstall; the new one lands beside it.
	p, _ := pkgspec.Find("qvm-remote-dom0")
	for _, e := range p.For(pkgspec.RPM, pkgspec.InTree("../../..")) {
		if e.Kind != pkgspec.Config {
			continue
		}
		host := m.Sim.Path(sim.Dom0, e.Dest)
		if err := os.WriteFile(host, []byte("# edited\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		m.InstallPackage(sim.Dom0, "qvm-remote-dom0")
		if b, _ := os.ReadFile(host); string(b) != "# edited\n" {
			t.Errorf("%s: reinstall replaced the edited config", e.Dest)
		}
		if _, err := os.Stat(host + ".rpmnew"); err != nil {
			t.Errorf("%s.rpmnew: %v", e.Dest, err)
		}
		break
	}
}
